"""``ladts calibrate``: a readable k8s-edge scenario from the extender's trace log.

``ladts train --from-traces`` calibrates the same way and trains on the result
(``ladts_policy/train/from_traces.py``).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the calibrate options."""
    parser.add_argument("traces", type=Path, nargs="+", metavar="TRACES.jsonl",
                        help="trace file(s) of `ladts serve --trace`, oldest first; a file's "
                             "rotated PATH.1..PATH.9 are read before it")
    parser.add_argument("--out", type=Path, required=True, help="scenario YAML to write")
    parser.add_argument("--base", default="k8s-edge",
                        help="preset or scenario file giving what the trace does not measure "
                             "(horizon, churn, input sizes, pod requests, GPU profiles; "
                             "default: %(default)s)")
    parser.add_argument("--name", default=None, help="scenario name (default: OUT's stem)")
    parser.add_argument("--window", type=float, default=30.0, metavar="S",
                        help="window for the burstiness test, s (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    """Read the trace, calibrate, write and re-validate the scenario."""
    from ladts_policy.calibrate import CalibrationConfig, calibrate, read_trace, trace_paths
    from ladts_policy.sim.config.scenario import load_scenario

    paths = [p for t in args.traces for p in trace_paths(t)]
    data = read_trace(paths)
    cal = calibrate(data, load_scenario(args.base), name=args.name or args.out.stem,
                    config=CalibrationConfig(window_s=args.window))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(cal.to_yaml())
    load_scenario(str(args.out))  # what was written loads back
    for line in cal.header[2:]:
        print(line)
    for note in cal.notes:
        print(f"note: {note}")
    print(f"wrote {args.out} (check it: ladts scenarios {args.out})")
    return 0
