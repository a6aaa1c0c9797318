"""``ladts scenarios``: list the shipped presets, or validate scenario files."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the scenarios options."""
    parser.add_argument("files", nargs="*", metavar="FILE",
                        help="scenario YAML files to validate (none: list the presets)")


def run(args: argparse.Namespace) -> int:
    """Print presets, or validate each file and report the first error of each."""
    from ladts_policy.sim.config.errors import ScenarioError
    from ladts_policy.sim.config.scenario import list_presets, load_scenario

    if not args.files:
        for name in list_presets():
            spec = load_scenario(name)
            print(f"{name:<20} {spec.kind:<9} {spec.description}")
        return 0
    status = 0
    for path in args.files:
        try:
            spec = load_scenario(path)
        except (ScenarioError, FileNotFoundError) as err:
            print(f"{path}: INVALID: {err}")
            status = 1
        else:
            print(f"{path}: ok ({spec.kind} scenario {spec.name!r})")
    return status
