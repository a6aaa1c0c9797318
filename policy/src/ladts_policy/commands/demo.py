"""``ladts demo``: the embedded default job, runnable without a cluster.

It evaluates every scheduler that applies to the ``k8s-edge`` preset (a heterogeneous
Jetson / RTX edge cluster), the bundled LAD-TS policy (``lad-ts``,
``ladts_policy/bundled/lad-ts.onnx``) beside the heuristic baselines, on five held-out seeds,
prints the table, and writes a JSON report and a PNG figure.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEMO_SCENARIO = "k8s-edge"
"""The preset the demo runs."""

DEMO_EPISODES = 1
"""Episodes per held-out seed: 5 seeds x 1 one-hour episode of every heuristic take about
50 s on 2 quiet cores (the v2 simulator projects each node's queue for the scheduler's view);
``lad-ts`` adds its ~18,000 decisions through feature encoding and onnxruntime, 20-30 s at
the 700-850 decisions/s measured on the shared machine; ``--episodes 4`` narrows the
intervals in about 4x the time."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the demo options."""
    parser.add_argument("--out", type=Path, default=Path("ladts-demo"),
                        help="folder for demo.json and demo.png (default: %(default)s)")
    parser.add_argument("--scenario", default=DEMO_SCENARIO,
                        help="scenario preset or file (default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=DEMO_EPISODES,
                        help="episodes per seed (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    """Evaluate the baselines on the demo scenario and write the report files."""
    from ladts_policy.evaluate import evaluate, format_table
    from ladts_policy.plots import plot_report

    report = evaluate(args.scenario, episodes=args.episodes, show_progress=not args.no_progress)
    print(format_table(report))
    report.write_json(args.out / "demo.json")
    plot = plot_report(report, args.out / "demo.png")
    print(f"wrote {args.out / 'demo.json'} and {plot}")
    return 0
