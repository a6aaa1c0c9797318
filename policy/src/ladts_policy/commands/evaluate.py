"""``ladts evaluate``: compare schedulers on a scenario over held-out seeds."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ladts_policy.commands.arg_types import csv_list, seed_list

if TYPE_CHECKING:
    from ladts_policy.baselines import SchedulingPolicy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the evaluate options."""
    from ladts_policy.evaluate import DEFAULT_EVAL_SEEDS

    parser.add_argument("--scenario", required=True,
                        help="preset name (see `ladts scenarios`) or a scenario YAML file")
    parser.add_argument("--policies", type=csv_list, default=None,
                        help="comma-separated heuristic names, lad-ts (the bundled cluster "
                             "policy), ONNX policy files (*.onnx) or "
                             "trained checkpoints (a path such as runs/x/final.pt: argmax "
                             "actions; add @sample to sample them; needs the train extra) "
                             "(default: all heuristics that apply and, on k8s-edge "
                             "scenarios, lad-ts)")
    parser.add_argument("--seeds", type=seed_list, default=list(DEFAULT_EVAL_SEEDS),
                        help="held-out seeds, list or range (default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=1,
                        help="episodes per seed (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT",
                        help="write the report as JSON to OUT")
    parser.add_argument("--plot", type=Path, default=None, metavar="PNG",
                        help="write a PNG figure of the report")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--rollout-horizon-s", type=float, default=None,
                        help="rollout: seconds of sampled future per candidate (default 60)")
    parser.add_argument("--rollout-top-k", type=int, default=None,
                        help="rollout: candidate nodes tried (default 3)")


def _checkpoint_factories(names: list[str]) -> dict[str, Callable[[], SchedulingPolicy]]:
    """Loaders for the ``--policies`` entries that are checkpoint paths (torch imported here)."""
    # ONNX files are the evaluator's own (ladts_policy.onnx_eval); anything else that names
    # a file is a torch checkpoint.
    paths = [n for n in names if not n.endswith(".onnx")
             and (n.endswith((".pt", "@sample")) or "/" in n or Path(n).is_file())]
    if not paths:
        return {}
    try:
        from ladts_policy.train.eval_policy import SAMPLE_SUFFIX, CheckpointPolicy
    except ImportError as err:
        raise ValueError(f"evaluating checkpoints needs torch: pip install 'ladts[train]' "
                         f"({err})") from err
    from ladts_policy.train.cluster_eval_policy import (
        is_cluster_checkpoint,
        load_checkpoint_policy,
    )

    factories: dict[str, Callable[[], SchedulingPolicy]] = {}
    for p in paths:
        path = Path(p.removesuffix(SAMPLE_SUFFIX))
        if path.is_file() and is_cluster_checkpoint(path):  # the cluster actor (k8s-edge)
            if p.endswith(SAMPLE_SUFFIX):
                raise ValueError(f"{p}: {SAMPLE_SUFFIX} applies to paper checkpoints only; a "
                                 f"cluster checkpoint is evaluated as it serves (argmax)")
            factories[p] = functools.partial(load_checkpoint_policy, path)
        else:
            factories[p] = functools.partial(CheckpointPolicy, path,
                                             sample=p.endswith(SAMPLE_SUFFIX))
    return factories


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table, write the requested files."""
    from ladts_policy.evaluate import evaluate, format_table

    rollout: dict[str, float] = {}
    if args.rollout_horizon_s is not None:
        rollout["horizon_s"] = args.rollout_horizon_s
    if args.rollout_top_k is not None:
        rollout["top_k"] = args.rollout_top_k
    report = evaluate(args.scenario, policies=args.policies, seeds=args.seeds,
                      episodes=args.episodes, show_progress=not args.no_progress,
                      policy_options={"rollout": rollout},
                      custom=_checkpoint_factories(args.policies or []))
    print(format_table(report))
    for name, result in report.policies.items():
        print(f"{name}: {result.decisions_per_s:,.0f} decisions/s (shared machine)")
    if args.json is not None:
        report.write_json(args.json)
        print(f"wrote {args.json}")
    if args.plot is not None:
        from ladts_policy.plots import plot_report

        print(f"wrote {plot_report(report, args.plot)}")
    return 0
