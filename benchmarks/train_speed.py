"""Training speed of ``ladts train`` on the ``paper`` preset, per algorithm.

Trains each algorithm for ``--episodes`` episodes (``--lanes`` in lockstep) and prints the
wall-clock per episode and the projected time of the paper's 60-episode LAD-TS budget.
The published LAD-TS code needs about 45 min for those 60 episodes on 2 cores
(docs/training.md); our target is 2 min. Example (the figure in docs/results.md):
``python benchmarks/train_speed.py --episodes 60 --algos lad-ts``.
``--cluster-decisions N`` adds the cluster trainer's figure (``ladts train --scenario
k8s-edge``): one imitation + SAC run of N decisions each, printed as environment decisions/s
and gradient updates/s of the whole run (validation included) and of the SAC update alone.
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
    parser.add_argument("--cluster-decisions", type=int, default=0,
                        help="also time the cluster trainer on this many decisions per phase")
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
    if args.cluster_decisions > 0:
        status |= cluster_speed(args.cluster_decisions)
    return status


def cluster_speed(decisions: int) -> int:
    """Time one small cluster run (imitation then SAC) and the SAC update alone."""
    import json

    import numpy as np
    import torch

    from ladts_policy.train.cluster_config import ClusterTrainConfig
    from ladts_policy.train.cluster_trainer import ClusterTrainer

    config = ClusterTrainConfig(bc_decisions=decisions, bc_updates=decisions // 8,
                                sac_decisions=decisions, validate_every=10 * decisions,
                                validation_clusters=1, buffer_size=max(decisions * 2, 512))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = ClusterTrainer(config, Path(tmp) / "run", show_progress=False)
        start = time.perf_counter()
        trainer.run()
        wall = time.perf_counter() - start
        summary = json.loads((Path(tmp) / "run" / "summary.json").read_text())
        rng = np.random.default_rng(0)
        batches = [trainer.replay.sample(config.batch_size, rng) for _ in range(20)]
        trainer.sac.updates = config.critic_warmup  # time full updates (critics + actor + α)
        start = time.perf_counter()
        for batch in batches:
            out = trainer.sac.update(batch)
        sac_rate = len(batches) / (time.perf_counter() - start)
    steps = summary["decisions"]
    valid = summary["updates"] > 0 and math.isfinite(summary["best_val_ratio"]) and all(
        math.isfinite(v) for v in out.values())
    print(f"cluster lad-ts: {steps} decisions and {summary['updates']} updates in {wall:.1f} s "
          f"= {steps / wall:.0f} decisions/s, {summary['updates'] / wall:.1f} updates/s "
          f"(whole run, {torch.get_num_threads()} thread); SAC update alone "
          f"{sac_rate:.1f} updates/s at batch {config.batch_size}, up to "
          f"{config.max_nodes} nodes" + ("" if valid else "  INVALID"))
    return 0 if valid else 1


if __name__ == "__main__":
    sys.exit(main())
