"""Decisions per second of the paper simulator driven by the greedy (Opt-TS) heuristic.

Each round resets ``--envs`` environments in lockstep (one episode each, about 30 k
decisions per episode) and plays them to the end; the figure counts placed tasks only.
Example: ``python benchmarks/sim_throughput.py --envs 256 --episodes 2``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ladts_policy.baselines import make_policy
from ladts_policy.sim.base import DecisionView
from ladts_policy.sim.paper import PaperConfig, PaperSimulator


def run_round(sim: PaperSimulator, policy_name: str, seeds: list[int]) -> tuple[int, float]:
    """Play one lockstep round; return (decisions, mean service delay in seconds)."""
    policy = make_policy(policy_name)
    policy.reset(num_envs=sim.num_envs, num_nodes=sim.num_nodes, seed=seeds[0])
    view: DecisionView | None = sim.reset(seeds)
    total, decisions = 0.0, 0
    while view is not None:
        delay_E, view = sim.step(policy.act(view))
        placed_E = ~np.isnan(delay_E)
        decisions += int(placed_E.sum())
        total += float(delay_E[placed_E].sum())
    return decisions, total / max(decisions, 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=128, help="environments in lockstep")
    parser.add_argument(
        "--episodes", type=int, default=1, help="rounds; each plays --envs episodes"
    )
    parser.add_argument("--policy", default="greedy", help="heuristic to drive the simulator")
    parser.add_argument(
        "--stream", default="native", choices=("native", "published"), help="arrival stream"
    )
    args = parser.parse_args(argv)
    sim = PaperSimulator(PaperConfig(arrival_stream=args.stream), num_envs=args.envs)
    decisions, elapsed = 0, 0.0
    for rnd in range(args.episodes):
        seeds = [rnd * args.envs + i for i in range(args.envs)]
        start = time.perf_counter()
        n, mean_delay = run_round(sim, args.policy, seeds)
        elapsed += time.perf_counter() - start
        decisions += n
        print(f"round {rnd}: {n} decisions, mean delay {mean_delay:.3f} s")
    rate = decisions / elapsed
    print(
        f"{args.policy} on paper ({args.stream}), {args.envs} envs x {args.episodes} rounds: "
        f"{decisions} decisions in {elapsed:.2f} s = {rate:,.0f} decisions/s"
    )


if __name__ == "__main__":
    main()
