"""Decisions per second of a simulator driven by a heuristic (default greedy).

Each round resets ``--envs`` environments in lockstep (one episode each; ``paper`` about
30 k decisions per episode, ``k8s-edge`` about 3,600, or ``--horizon-s`` seconds of it) and
plays them to the end; the figure counts placed tasks only and is printed as
``N decisions/s`` on the last line. ``k8s-edge`` runs on the vectorised simulator
(``ladts_policy.sim.dynamics.cluster_vec``; ``--reference`` for ``ClusterSimulator``), ``--encoded``
steps the Gymnasium ``ClusterVectorEnv`` and counts encoded steps. On the vectorised simulator
``greedy`` and ``residency-greedy`` play each round in compiled code
(``VecClusterSimulator.play``: the same decisions as the ``policy.act`` loop, which
``--stepwise`` times instead), on ``--threads`` numba threads (environments in parallel). The
first round includes loading the compiled kernels (compiling them once per checkout);
``--warmup`` plays one short round first so the figure is the steady state. Examples::

    python benchmarks/sim_throughput.py --scenario paper --envs 256 --episodes 2
    python benchmarks/sim_throughput.py --scenario k8s-edge --envs 64 --horizon-s 300
    python benchmarks/sim_throughput.py --scenario k8s-edge --envs 64 --encoded
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ladts_policy.baselines import GreedyPolicy, ResidencyGreedyPolicy, make_policy
from ladts_policy.sim.base import DecisionView, VecSimulator
from ladts_policy.sim.config.cluster_config import ClusterConfig
from ladts_policy.sim.config.scenario import load_scenario
from ladts_policy.sim.dynamics.paper import PaperConfig, PaperSimulator


def run_round(sim: VecSimulator, policy_name: str, seeds: list[int],
              stepwise: bool = False) -> tuple[int, float]:
    """Play one lockstep round; return (decisions, mean service delay in seconds)."""
    from ladts_policy.sim.dynamics.cluster_vec import VecClusterSimulator

    policy = make_policy(policy_name)
    policy.reset(num_envs=sim.num_envs, num_nodes=sim.num_nodes, seed=seeds[0])
    view: DecisionView | None = sim.reset(seeds)
    if isinstance(sim, VecClusterSimulator) and not stepwise and isinstance(
            policy, GreedyPolicy | ResidencyGreedyPolicy):
        weights = ((policy.amortise, policy.evict) if isinstance(policy, ResidencyGreedyPolicy)
                   else (0.0, 0.0))
        delay_SE = sim.play(policy.rng, amortise=weights[0], evict=weights[1])
        placed_SE = ~np.isnan(delay_SE)
        n = int(placed_SE.sum())
        return n, float(delay_SE[placed_SE].sum()) / max(n, 1)
    total, decisions = 0.0, 0
    while view is not None:
        delay_E, view = sim.step(policy.act(view))
        placed_E = ~np.isnan(delay_E)
        decisions += int(placed_E.sum())
        total += float(delay_E[placed_E].sum())
    return decisions, total / max(decisions, 1)


def encoded_steps(sim: VecSimulator, envs: int, rounds: int, threads: int = 1) -> None:
    """Drive the k8s-edge VectorEnv for ``rounds`` x one episode's decisions per env."""
    from ladts_policy.sim.envs.cluster_vector_env import ClusterVectorEnv

    config = getattr(sim, "config", None)
    if not isinstance(config, ClusterConfig):
        raise SystemExit("--encoded needs a k8s-edge scenario")
    env = ClusterVectorEnv(config, num_envs=envs, threads=threads)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    steps = rounds * max(int(config.arrivals.rate_per_s * config.horizon_s), 1)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(steps):
        # a random valid node per environment (vectorised, so the figure is the env's)
        noise_ES = np.where(env.action_masks(), rng.random((envs, env.node_slots)), -1.0)
        _, reward_E, _, _, _ = env.step(np.argmax(noise_ES, axis=1))
        if not np.isfinite(reward_E).all():
            raise SystemExit("invalid run: a non-finite reward")
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(f"ClusterVectorEnv ({type(env.sim).__name__}, {threads} numba thread(s)), "
          f"{envs} envs x {steps} steps "
          f"in {elapsed:.2f} s (encoded observations, random valid actions); "
          f"{steps * envs / cpu:.0f} per CPU-second of this process")
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
    parser.add_argument("--reference", action="store_true",
                        help="k8s-edge: the reference ClusterSimulator, not the vectorised one")
    parser.add_argument("--warmup", action="store_true",
                        help="play a short untimed round first (kernels loaded or compiled)")
    parser.add_argument("--policy", default="greedy", help="heuristic to drive the simulator")
    parser.add_argument("--stepwise", action="store_true",
                        help="k8s-edge: time the Python step/act loop even for greedy")
    parser.add_argument("--threads", type=int, default=1,
                        help="numba threads of the compiled play (environments in parallel)")
    parser.add_argument(
        "--stream", default="native", choices=("native", "published"), help="arrival stream"
    )
    args = parser.parse_args(argv)
    sim: VecSimulator
    if args.scenario == "paper":
        sim = PaperSimulator(PaperConfig(arrival_stream=args.stream), num_envs=args.envs)
    else:
        import dataclasses

        from ladts_policy.sim.dynamics.cluster_vec import make_cluster_simulator

        config = load_scenario(args.scenario).config
        if args.horizon_s is not None:
            config = dataclasses.replace(config, horizon_s=args.horizon_s)
        sim = make_cluster_simulator(config, num_envs=args.envs, reference=args.reference,
                                     threads=args.threads)
        if args.warmup:
            short = dataclasses.replace(config, horizon_s=min(config.horizon_s, 30.0))
            run_round(make_cluster_simulator(short, num_envs=args.envs,
                                             reference=args.reference, threads=args.threads),
                      args.policy, list(range(args.envs)), args.stepwise)
            if args.encoded:
                encoded_steps(make_cluster_simulator(short, num_envs=args.envs), args.envs, 1,
                              args.threads)
    if args.encoded:
        encoded_steps(sim, args.envs, args.episodes, args.threads)
        return
    decisions, elapsed, cpu = 0, 0.0, 0.0
    for rnd in range(args.episodes):
        seeds = [rnd * args.envs + i for i in range(args.envs)]
        start, cpu_start = time.perf_counter(), time.process_time()
        n, mean_delay = run_round(sim, args.policy, seeds, args.stepwise)
        elapsed += time.perf_counter() - start
        cpu += time.process_time() - cpu_start
        decisions += n
        print(f"round {rnd}: {n} decisions, mean delay {mean_delay:.3f} s")
    if decisions == 0:
        raise SystemExit("invalid run: no decision was simulated")
    rate = decisions / elapsed
    where = (f"paper ({args.stream})" if args.scenario == "paper"
             else f"{args.scenario} ({type(sim).__name__})")
    how = "stepwise" if args.stepwise else f"{args.threads} numba thread(s)"
    print(f"{args.policy} on {where} ({how}), {args.envs} envs x {args.episodes} rounds: "
          f"{decisions} decisions in {elapsed:.2f} s; {decisions / max(cpu, 1e-9):.0f} per "
          "CPU-second of this process (the machine may be shared)")
    print(f"{rate:.0f} decisions/s")


if __name__ == "__main__":
    main()
