"""Tune the one weight of the ``size-greedy`` heuristic on training seeds only.

Plays every candidate weight on the same training episodes (user seeds below the held-out
10000.., so the evaluation never sees them) and prints the mean delay, p95 and the largest
quintile's mean delay per weight, then the best weight by mean delay. Example:
``python benchmarks/tune_size_greedy.py --seeds 0-3 --weights 0,0.5,1,2,4``.
Exits non-zero if a run is invalid (no task placed).
"""

from __future__ import annotations

import argparse
import sys

from ladts_policy.evaluate import evaluate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="paper")
    parser.add_argument("--seeds", default="0-3", help="training seeds, a range lo-hi")
    parser.add_argument("--weights", default="0,0.25,0.5,1,2,4")
    args = parser.parse_args(argv)
    lo, hi = (int(v) for v in args.seeds.split("-"))
    if hi >= 10_000:
        parser.error("tuning seeds must be below 10000 (the held-out evaluation seeds)")
    weights = [float(w) for w in args.weights.split(",")]
    names = ["greedy"] + [f"size-greedy:{w:g}" for w in weights]
    report = evaluate(args.scenario, policies=names, seeds=list(range(lo, hi + 1)),
                      show_progress=False)
    print(f"{'policy':<20}{'mean s':>9}{'vs greedy':>11}{'p95 s':>9}{'top-20% s':>11}")
    best, best_mean = None, float("inf")
    for name, r in report.policies.items():
        if r.tasks == 0:
            print(f"invalid run: {name} placed no task", file=sys.stderr)
            return 1
        top = r.size_quintile_mean_s[-1] if r.size_quintile_mean_s else float("nan")
        print(f"{name:<20}{r.mean_delay_s:>9.3f}{r.vs_greedy or float('nan'):>11.3f}"
              f"{r.p95_s:>9.3f}{top:>11.3f}")
        if name != "greedy" and r.mean_delay_s < best_mean:
            best, best_mean = name, r.mean_delay_s
    print(f"best on training seeds {lo}..{hi}: {best} ({best_mean:.3f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
