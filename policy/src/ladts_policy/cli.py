"""The ``ladts`` command line: one entry point, subcommands imported only when used.

Subcommands are looked up by dotted path, so a torch-free install can run every command
that does not train, and a command whose optional dependency is missing says which extra
to install instead of failing at start-up.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Subcommand:
    """A subcommand whose argument parser and handler live in a module imported on use."""

    help: str
    """One line shown by ``ladts --help``."""
    module: str
    """Dotted module path exposing ``add_arguments(parser)`` and ``run(args) -> int``."""


SUBCOMMANDS: dict[str, Subcommand] = {
    "demo": Subcommand("run the embedded default: k8s-edge preset, every baseline, a plot",
                       "ladts_policy.commands.demo"),
    "evaluate": Subcommand("evaluate schedulers on a scenario over held-out seeds",
                           "ladts_policy.commands.evaluate"),
    "train": Subcommand("train LAD-TS or a DRL baseline (needs the train extra: torch)",
                        "ladts_policy.commands.train"),
    "export": Subcommand("export a cluster actor checkpoint to a serving-contract ONNX policy "
                         "(needs the train extra)", "ladts_policy.commands.export"),
    "scenarios": Subcommand("list scenario presets or validate a scenario file",
                            "ladts_policy.commands.scenarios"),
    "calibrate": Subcommand("calibrate a k8s-edge scenario YAML from the extender's trace log",
                            "ladts_policy.commands.calibrate"),
    "serve": Subcommand("run the scheduler extender (kopf state, Prometheus, policy runtime)",
                        "ladts_operator.commands.serve"),
    "rollout": Subcommand("gate a new ONNX policy against the running one, then update the "
                          "policy ConfigMap", "ladts_operator.commands.rollout"),
    "rollback": Subcommand("restore the previous policy kept in the policy ConfigMap",
                           "ladts_operator.commands.rollback"),
    "bench": Subcommand("benchmark a serving component (extender: latency and req/s)",
                        "ladts_operator.commands.bench"),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand's arguments."""
    parser = argparse.ArgumentParser(
        prog="ladts",
        description="LAD-TS scheduling of AIGC inference pods on Kubernetes edge clusters.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, spec in SUBCOMMANDS.items():
        module = importlib.import_module(spec.module)
        sub_parser = sub.add_parser(name, help=spec.help, description=spec.help)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; returns the process exit status."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args._handler
    try:
        return handler(args)
    except (ValueError, KeyError, FileNotFoundError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"ladts {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
