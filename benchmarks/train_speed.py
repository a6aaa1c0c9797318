"""Training speed of ``ladts train`` on the ``paper`` preset, per algorithm.

Trains each algorithm for ``--episodes`` episodes (``--lanes`` in lockstep) and prints the
wall-clock per episode and the projected time of the paper's 60-episode LAD-TS budget.
The published LAD-TS code needs about 45 min for those 60 episodes on 2 cores
(docs/training.md); our target is 2 min. Example (the figure in docs/results.md):
``python benchmarks/train_speed.py --episodes 60 --algos lad-ts``.
Exits non-zero when a run is invalid (no update made, or a non-finite delay).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from ladts_policy.train.config import ALGORITHMS, TrainConfig
from ladts_policy.train.trainer import Trainer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--lanes", type=int, default=TrainConfig.lanes)
    parser.add_argument("--algos", default=",".join(ALGORITHMS))
    parser.add_argument("--scenario", default="paper")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} CPUs visible (shared machine: figures vary with load)")
    status = 0
    for algo in args.algos.split(","):
        config = TrainConfig(scenario=args.scenario, algo=algo, episodes=args.episodes,
                             lanes=args.lanes, device="cpu")
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            Trainer(config, Path(tmp), show_progress=False).run()
            wall = time.perf_counter() - start
            rows = list(csv.DictReader((Path(tmp) / "log.csv").open()))
        delays = [float(r["mean_delay_s"]) for r in rows]
        updates = sum(int(r["updates"]) for r in rows[:: max(config.lanes, 1)])
        valid = updates > 0 and all(math.isfinite(d) for d in delays)
        per_ep = wall / args.episodes
        print(f"{algo:<7} {args.episodes} episodes in {wall:6.1f} s = {per_ep:5.2f} s/episode "
              f"(60 episodes: {60 * per_ep / 60:4.1f} min); last delay {delays[-1]:.3f} s"
              + ("" if valid else "  INVALID"))
        if not valid:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
