"""Tune the residency-aware greedy's two weights on training seeds (never evaluation seeds).

Grid search over ``amortise`` x ``evict`` (``ladts_policy.baselines.ResidencyGreedyPolicy``);
each point runs the same training episodes (common random numbers) and is scored by its
mean delay relative to greedy on those episodes. Prints the grid and, on its last line, the
best weights. Example (the command behind the shipped defaults, docs/scenarios.md)::

    python benchmarks/tune_residency_greedy.py --scenario k8s-edge --seeds 0-3 \
        --amortise 0,0.5,1,2,4 --evict 0,0.5,1,2

Exits non-zero if a seed is an evaluation seed (>= 10000).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ladts_policy.baselines import ResidencyGreedyPolicy, make_policy
from ladts_policy.commands.arg_types import seed_list
from ladts_policy.evaluate import EVAL_SEED_BASE, episode_seed, policy_seed, run_policy
from ladts_policy.sim.config.scenario import load_scenario


def _floats(value: str) -> list[float]:
    return [float(v) for v in value.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="k8s-edge")
    parser.add_argument("--seeds", type=seed_list, default=list(range(4)),
                        help="training seeds, list or range (all < 10000)")
    parser.add_argument("--amortise", type=_floats, default=[0.0, 0.5, 1.0, 2.0, 4.0])
    parser.add_argument("--evict", type=_floats, default=[0.0, 0.5, 1.0, 2.0])
    args = parser.parse_args(argv)
    if any(s >= EVAL_SEED_BASE for s in args.seeds):
        print(f"refusing: tune on training seeds only (< {EVAL_SEED_BASE})", file=sys.stderr)
        return 2
    spec = load_scenario(args.scenario)
    env_seeds = [episode_seed(s, 0) for s in args.seeds]

    def score(policy: object, name: str) -> np.ndarray:
        delays = run_policy(spec.make_simulator, policy, env_seeds,  # type: ignore[arg-type]
                            policy_seed=policy_seed(name))
        return np.array([d.mean() for d in delays])

    greedy_K = score(make_policy("greedy"), "greedy")
    print(f"{args.scenario}: training seeds {args.seeds}; greedy mean {greedy_K.mean():.3f} s")
    print(f"{'amortise':>9}{'evict':>7}{'mean s':>9}{'vs greedy':>11}")
    best = (np.inf, 0.0, 0.0)
    for a in args.amortise:
        for b in args.evict:
            ratio = score(ResidencyGreedyPolicy(a, b), "residency-greedy").mean() / greedy_K.mean()
            print(f"{a:>9g}{b:>7g}{ratio * greedy_K.mean():>9.3f}{ratio:>11.3f}", flush=True)
            best = min(best, (ratio, a, b))
    print(f"best amortise={best[1]:g} evict={best[2]:g} ratio={best[0]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
