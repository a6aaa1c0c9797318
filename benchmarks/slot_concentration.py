"""How concentrated each policy's choices are within a slot of the ``paper`` preset.

For every slot of one held-out episode it takes the share of the slot's work sent to each
server and reports, averaged over slots, the largest share and the effective number of
servers used (``1 / Σ share²``), beside the capacity shares (the largest server has 50 of
656 GHz, 7.6%). A policy that sees only start-of-slot backlogs and picks the argmax sends
many of a slot's tasks to the same few servers. Example:
``python benchmarks/slot_concentration.py --policies greedy,runs/paper-results/lad-ts-s0/final.pt``.
Exits non-zero when a run is invalid (no decision recorded).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ladts_policy.baselines import SchedulingPolicy, make_policy
from ladts_policy.evaluate import episode_seed
from ladts_policy.sim.dynamics.paper import PaperConfig, PaperSimulator


def build(name: str) -> SchedulingPolicy:
    if name.endswith(("final.pt", "@sample")):
        from ladts_policy.train.eval_policy import SAMPLE_SUFFIX, CheckpointPolicy

        return CheckpointPolicy(Path(name.removesuffix(SAMPLE_SUFFIX)),
                                sample=name.endswith(SAMPLE_SUFFIX))
    return make_policy(name)


def concentration(policy: SchedulingPolicy, seed: int) -> tuple[float, float, float]:
    sim = PaperSimulator(PaperConfig(), num_envs=1)
    attach = getattr(policy, "attach", None)
    if callable(attach):
        attach(sim)
    policy.reset(num_envs=1, num_nodes=sim.num_nodes, seed=seed)
    view = sim.reset([seed])
    work_TN = np.zeros((sim.config.num_slots, sim.num_nodes))
    delays: list[float] = []
    while view is not None:
        slot = int(sim.decision_key()[0][0])
        size = float(view.task_size_E[0]) if view.task_size_E is not None else 1.0
        action = policy.act(view)
        work_TN[slot, int(action[0])] += size
        delay_E, view = sim.step(action)
        delays.append(float(delay_E[0]))
    used = work_TN[work_TN.sum(axis=1) > 0]
    if used.size == 0:
        raise SystemExit("invalid run: no decision recorded")
    share_TN = used / used.sum(axis=1, keepdims=True)
    return (float(share_TN.max(axis=1).mean()), float((1 / (share_TN**2).sum(axis=1)).mean()),
            float(np.mean(delays)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", default="greedy,capacity-weighted")
    parser.add_argument("--seed", type=int, default=10000, help="held-out user seed")
    args = parser.parse_args(argv)
    seed = episode_seed(args.seed, 0)
    cap = PaperSimulator(PaperConfig(), 1).constants.capacity_N
    share = cap / cap.sum()
    print(f"capacity shares: largest {share.max():.3f}, effective servers "
          f"{1 / (share**2).sum():.1f} of {cap.size}")
    print(f"{'policy':<48}{'largest share':>14}{'eff. servers':>14}{'mean delay s':>14}")
    for name in args.policies.split(","):
        top, eff, mean = concentration(build(name), seed)
        print(f"{name:<48}{top:>14.3f}{eff:>14.1f}{mean:>14.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
