"""Sweep the arrival rate of a k8s-edge scenario: mean, p95, utilisation, cold starts/hour.

This is how the presets' loads were chosen (docs/scenarios.md), e.g.::

    python benchmarks/load_sweep.py --scenario k8s-edge --rates 0.5,1,2,3,4 \
        --policies greedy,residency-greedy,spread,least-queue --seeds 10000-10002

Every policy sees the same episodes (common random numbers). Prints a Markdown table: one
row per rate and policy with the mean delay and its Student-t 95% interval over episodes,
the pooled p95, the utilisation (busy node-seconds over nodes x horizon) and cold starts
per hour. Pods wait unscheduled when kube-scheduler's filters (NodeResourcesFit) pass no
node, for every policy; their wait is in the delay.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from ladts_policy.baselines import make_policy
from ladts_policy.commands.arg_types import seed_list
from ladts_policy.evaluate import episode_seed, policy_seed, summarise
from ladts_policy.sim.base import DecisionView
from ladts_policy.sim.config.scenario import load_scenario
from ladts_policy.sim.dynamics.cluster import ClusterSimulator


def run(config: object, name: str, seeds: list[int]) -> tuple[list[np.ndarray], float, float]:
    """Delays per episode, mean utilisation, mean cold starts per hour."""
    sim = ClusterSimulator(config, num_envs=len(seeds))  # type: ignore[arg-type]
    policy = make_policy(name)
    attach = getattr(policy, "attach", None)
    if attach is not None:
        attach(sim)
    policy.reset(num_envs=len(seeds), num_nodes=sim.num_nodes, seed=policy_seed(name))
    view: DecisionView | None = sim.reset(seeds)
    rows = []
    while view is not None:
        delay_E, view = sim.step(policy.act(view))
        rows.append(delay_E)
    delay_TE = np.stack(rows)
    stats = sim.episode_stats()
    hours = sim.config.horizon_s / 3600.0
    return ([c[~np.isnan(c)] for c in delay_TE.T], float(stats["utilisation"].mean()),
            float(stats["cold_starts"].mean() / hours))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="k8s-edge")
    parser.add_argument("--rates", default="0.5,1,2,3,4", help="requests/s, comma-separated")
    parser.add_argument("--policies", default="greedy,residency-greedy,spread,least-queue")
    parser.add_argument("--seeds", type=seed_list, default=[10000, 10001, 10002],
                        help="held-out seeds, list or range")
    args = parser.parse_args()
    base = load_scenario(args.scenario)
    if base.kind != "k8s-edge":
        parser.error("the sweep needs a k8s-edge scenario")
    seeds = [episode_seed(s, 0) for s in args.seeds]
    print(f"{args.scenario}, seeds {args.seeds[0]}..{args.seeds[-1]}")
    print("| rate/s | policy | mean s [95% CI] | p95 s | utilisation | cold starts/h |")
    print("|---|---|---|---|---|---|")
    for rate in (float(r) for r in args.rates.split(",")):
        config = dataclasses.replace(
            base.config, arrivals=dataclasses.replace(base.config.arrivals, rate_per_s=rate))
        for name in args.policies.split(","):
            delays, util, cold = run(config, name, seeds)
            r = summarise(delays)
            print(f"| {rate:g} | {name} | {r.mean_delay_s:.2f} [{r.ci95_s[0]:.2f}, "
                  f"{r.ci95_s[1]:.2f}] | {r.p95_s:.1f} | {util:.2f} | {cold:.0f} |", flush=True)


if __name__ == "__main__":
    main()
