"""The learner during training vs its frozen final policy, on the very same episodes.

``log.csv`` records each training episode's mean delay while the agents keep learning (one
update per agent per slot, sampled actions): the number the paper reports. This replays the
last ``--last`` training episodes (same arrivals: same episode seeds) with the frozen
``final.pt``, sampled and argmax, and prints both. Example:
``python benchmarks/frozen_vs_online.py runs/paper-results/lad-ts-s0``.
Exits non-zero when a run is invalid (no log rows or no task placed).
"""

from __future__ import annotations

import argparse
import csv
import functools
import sys
from pathlib import Path

import numpy as np

from ladts_policy.evaluate import episode_seed, run_policy
from ladts_policy.sim.dynamics.paper import PaperSimulator
from ladts_policy.train.eval_policy import CheckpointPolicy
from ladts_policy.train.trainer import paper_config_for


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (log.csv, final.pt)")
    parser.add_argument("--last", type=int, default=4, help="training episodes to replay")
    args = parser.parse_args(argv)
    print(f"{'run':<44}{'training (learning) s':>22}{'frozen sampled s':>18}"
          f"{'frozen argmax s':>17}")
    for run in args.runs:
        rows = list(csv.DictReader((run / "log.csv").open()))
        if not rows:
            print(f"invalid run: {run}/log.csv is empty", file=sys.stderr)
            return 1
        rows = rows[-args.last:]
        policy = CheckpointPolicy(run / "final.pt")
        config = paper_config_for(policy.config.scenario)
        seeds = [episode_seed(policy.config.seed, int(r["episode"])) for r in rows]
        frozen = []
        for sample in (True, False):
            delays = run_policy(functools.partial(PaperSimulator, config),
                                CheckpointPolicy(run / "final.pt", sample=sample), seeds,
                                policy_seed=1)
            if any(d.size == 0 for d in delays):
                print(f"invalid run: {run} placed no task", file=sys.stderr)
                return 1
            frozen.append(float(np.mean([d.mean() for d in delays])))
        online = float(np.mean([float(r["mean_delay_s"]) for r in rows]))
        print(f"{run!s:<44}{online:>22.3f}{frozen[0]:>18.3f}{frozen[1]:>17.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
