"""Decisions per second of a simulator driven by a heuristic (default greedy).

Each round resets ``--envs`` environments in lockstep (one episode each; ``paper`` about
30 k decisions per episode, ``k8s-edge`` about 3,600, or ``--horizon-s`` seconds of it) and
plays them to the end; the figure counts placed tasks only and is printed as
``N decisions/s`` on the last line. Examples::

    python benchmarks/sim_throughput.py --scenario paper --envs 256 --episodes 2
    python benchmarks/sim_throughput.py --scenario k8s-edge --envs 64 --horizon-s 300
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ladts_policy.baselines import make_policy
from ladts_policy.sim.base import DecisionView, VecSimulator
from ladts_policy.sim.paper import PaperConfig, PaperSimulator
from ladts_policy.sim.scenario import load_scenario


def run_round(sim: VecSimulator, policy_name: str, seeds: list[int]) -> tuple[int, float]:
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


def encoded_steps(sim: VecSimulator, envs: int, rounds: int) -> None:
    """Drive the k8s-edge VectorEnv for ``rounds`` x one episode's decisions per env."""
    from ladts_policy.sim.cluster import ClusterSimulator
    from ladts_policy.sim.cluster_vector_env import ClusterVectorEnv

    if not isinstance(sim, ClusterSimulator):
        raise SystemExit("--encoded needs a k8s-edge scenario")
    env = ClusterVectorEnv(sim.config, num_envs=envs)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    steps = rounds * max(int(sim.config.arrivals.rate_per_s * sim.config.horizon_s), 1)
    start = time.perf_counter()
    for _ in range(steps):
        mask = env.action_masks()
        env.step(np.array([rng.choice(np.flatnonzero(m)) for m in mask]))
    elapsed = time.perf_counter() - start
    print(f"ClusterVectorEnv, {envs} envs x {steps} steps in {elapsed:.2f} s (encoded)")
    print(f"{steps * envs / elapsed:.0f} decisions/s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="paper", help="paper or a k8s-edge preset/file")
    parser.add_argument("--envs", type=int, default=128, help="environments in lockstep")
    parser.add_argument("--horizon-s", type=float, default=None,
                        help="k8s-edge: shorten the episode to this many seconds")
    parser.add_argument("--encoded", action="store_true",
                        help="k8s-edge: step the Gymnasium ClusterVectorEnv (features encoded "
                        "every step, random valid actions) and count encoded steps")
    parser.add_argument(
        "--episodes", type=int, default=1, help="rounds; each plays --envs episodes"
    )
    parser.add_argument("--policy", default="greedy", help="heuristic to drive the simulator")
    parser.add_argument(
        "--stream", default="native", choices=("native", "published"), help="arrival stream"
    )
    args = parser.parse_args(argv)
    sim: VecSimulator
    if args.scenario == "paper":
        sim = PaperSimulator(PaperConfig(arrival_stream=args.stream), num_envs=args.envs)
    else:
        import dataclasses

        from ladts_policy.sim.cluster import ClusterSimulator

        config = load_scenario(args.scenario).config
        if args.horizon_s is not None:
            config = dataclasses.replace(config, horizon_s=args.horizon_s)
        sim = ClusterSimulator(config, num_envs=args.envs)
    if args.encoded:
        encoded_steps(sim, args.envs, args.episodes)
        return
    decisions, elapsed = 0, 0.0
    for rnd in range(args.episodes):
        seeds = [rnd * args.envs + i for i in range(args.envs)]
        start = time.perf_counter()
        n, mean_delay = run_round(sim, args.policy, seeds)
        elapsed += time.perf_counter() - start
        decisions += n
        print(f"round {rnd}: {n} decisions, mean delay {mean_delay:.3f} s")
    if decisions == 0:
        raise SystemExit("invalid run: no decision was simulated")
    rate = decisions / elapsed
    where = f"paper ({args.stream})" if args.scenario == "paper" else args.scenario
    print(f"{args.policy} on {where}, {args.envs} envs x {args.episodes} rounds: "
          f"{decisions} decisions in {elapsed:.2f} s")
    print(f"{rate:.0f} decisions/s")


if __name__ == "__main__":
    main()
