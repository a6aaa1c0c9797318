"""Sweep the arrival rate of a k8s-edge scenario and print each heuristic's mean delay.

This is how the presets' loads were chosen (docs/scenarios.md): e.g.
``python benchmarks/load_sweep.py --scenario k8s-edge --rates 0.5,1,1.5,2``.
"""

from __future__ import annotations

import argparse
import dataclasses

from ladts_policy.baselines import make_policy
from ladts_policy.evaluate import episode_seed, run_policy, summarise
from ladts_policy.sim.scenario import load_scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", default="k8s-edge")
    parser.add_argument("--rates", default="0.5,1,1.5,2", help="requests/s, comma-separated")
    parser.add_argument("--policies", default="greedy,least-queue,spread,capacity-weighted")
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated episode seeds")
    args = parser.parse_args()
    base = load_scenario(args.scenario)
    if base.kind != "k8s-edge":
        parser.error("the sweep needs a k8s-edge scenario")
    seeds = [episode_seed(int(s), 0) for s in args.seeds.split(",")]
    names = args.policies.split(",")
    print("rate/s  " + "  ".join(f"{n + ' mean/p95 s':>26}" for n in names))
    for rate in (float(r) for r in args.rates.split(",")):
        config = base.config
        arrivals = dataclasses.replace(config.arrivals, rate_per_s=rate)
        scenario = dataclasses.replace(base, config=dataclasses.replace(config,
                                                                         arrivals=arrivals))
        cells = []
        for name in names:
            result = summarise(run_policy(scenario.make_simulator, make_policy(name), seeds,
                                          policy_seed=0))
            cells.append(f"{result.mean_delay_s:>15.1f} / {result.p95_s:>8.0f}")
        print(f"{rate:<7.2f} " + "  ".join(f"{c:>26}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
