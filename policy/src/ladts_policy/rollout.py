"""``rollout``: a planner that looks ahead on sampled futures (the room-above-greedy reference).

For each environment it takes the ``top_k`` nodes by greedy's estimated delay, and for each
candidate rolls the cluster forward ``horizon_s`` seconds: the pending pod goes to the
candidate, then requests *sampled from the scenario's own arrival model* (rate or bursty
process, step ranges; the model mix of the last ``POPULARITY_WINDOW_S`` seconds, which follows
drift, or the scenario's weights early on; never the episode's true future) are placed by greedy.
Every candidate sees the same sampled futures (common random numbers); the candidate with the
smallest total delay of the pending pod and the sampled requests wins.

It plans on the scheduler's view only: the per-node projections the simulator publishes
(``EnvState.projections``: observable pods, corrected run-time estimates), never the true
run times. It needs the simulator (``attach``), so it runs in ``ladts evaluate`` and the
benchmarks, not in the operator. On the vectorised simulator
(:class:`~ladts_policy.sim.dynamics.cluster_vec.VecClusterSimulator`) the lookahead runs compiled
(``VecClusterSimulator.rollout_scores``) on the same sampled futures, so both simulators
give the same decisions (``tests/policy/test_rollout_vec.py``); on the reference
``ClusterSimulator`` it clones the projected node servers.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ladts_policy.sim.base import DecisionView
from ladts_policy.sim.dynamics.cluster import POPULARITY_WINDOW_S, ClusterSimulator
from ladts_policy.sim.dynamics.node_service import ServiceTask
from ladts_policy.sim.dynamics.workload import draw_arrival_times

if TYPE_CHECKING:
    from ladts_policy.sim.config.cluster_config import ClusterConfig
    from ladts_policy.sim.dynamics.cluster_state import EnvState
    from ladts_policy.sim.dynamics.cluster_vec import VecClusterSimulator

MIN_OBSERVED = 20
"""Sampled futures use the observed model mix once this many recent requests were seen."""


class RolloutPolicy:
    """Top-k lookahead under greedy on sampled futures (module docstring)."""

    name = "rollout"

    def __init__(self, *, horizon_s: float = 60.0, top_k: int = 3, samples: int = 1) -> None:
        if horizon_s < 0 or top_k < 1 or samples < 1:
            raise ValueError("rollout needs horizon_s >= 0, top_k >= 1 and samples >= 1")
        self.horizon_s, self.top_k, self.samples = horizon_s, top_k, samples
        self.rng = np.random.default_rng(0)
        self.sim: ClusterSimulator | VecClusterSimulator | None = None

    def attach(self, sim: Any) -> None:
        """Attach the simulator whose projections the planner rolls forward."""
        from ladts_policy.sim.dynamics.cluster_vec import VecClusterSimulator

        if not isinstance(sim, ClusterSimulator | VecClusterSimulator):
            raise ValueError("policy 'rollout' needs a k8s-edge scenario")
        self.sim = sim

    def reset(self, *, num_envs: int, num_nodes: int, seed: int) -> None:
        """Re-seed the sampler of futures."""
        self.rng = np.random.default_rng(seed)

    def act(self, view: DecisionView) -> np.ndarray:
        """Return the best candidate per active environment."""
        if self.sim is None:
            raise RuntimeError("policy 'rollout' must be bound to a k8s-edge simulator")
        out = np.zeros(view.num_envs, dtype=np.int64)
        for e in np.flatnonzero(view.active_E):
            delay_N = np.where(view.node_mask_EN[e], view.expected_delay_EN[e], np.inf)
            order = np.argsort(delay_N, kind="stable")
            candidates = [int(n) for n in order[: self.top_k] if np.isfinite(delay_N[n])]
            if len(candidates) == 1 or self.horizon_s == 0:
                out[e] = candidates[0]
                continue
            scores: list[float]
            if isinstance(self.sim, ClusterSimulator):
                env = self.sim.envs[e]
                futures = [self._sample_future(env.config, env.now,
                                               env.recent_counts_M(POPULARITY_WINDOW_S))
                           for _ in range(self.samples)]
                scores = [sum(self._roll(env, c, f) for f in futures) for c in candidates]
            else:
                sim = self.sim
                futures = [self._sample_future(sim.config, sim.now(int(e)),
                                               sim.recent_counts(int(e)))
                           for _ in range(self.samples)]
                total_C = np.zeros(len(candidates))
                for f in futures:
                    arrays = (np.array([r[0] for r in f], dtype=float),
                              np.array([r[1] for r in f], dtype=np.int64),
                              np.array([r[2] for r in f], dtype=np.int64))
                    # summed future by future, as the reference's sum() adds them
                    total_C = total_C + sim.rollout_scores(int(e), np.array(candidates), arrays)
                scores = [float(x) for x in total_C]
            out[e] = candidates[int(np.argmin(scores))]
        return out

    def _sample_future(self, config: ClusterConfig, now: float,
                       recent_M: np.ndarray) -> list[tuple[float, int, int]]:
        times = now + draw_arrival_times(config.arrivals, self.horizon_s, self.rng)
        # the model mix: what was observed lately (it drifts), else the scenario's weights
        weight_M = recent_M
        if weight_M.sum() < MIN_OBSERVED:
            weight_M = np.array([m.weight for m in config.models], dtype=float)
        model_K = self.rng.choice(len(config.models), size=times.size, p=weight_M / weight_M.sum())
        out = []
        for t, m in zip(times, model_K, strict=True):
            lo, hi = config.models[m].steps
            out.append((float(t), int(m), int(self.rng.integers(lo, hi + 1))))
        return out

    def _roll(self, env: EnvState, first: int, future: list[tuple[float, int, int]]) -> float:
        """Total estimated delay of the pending pod on ``first`` plus the sampled requests."""
        s = env.static
        names = s.model_names
        ready_N = ~env.cordoned_N
        nodes = [p.clone() for p in env.projections]
        m = env.model
        task = ServiceTask(names[m], env.steps, time_factor=float(env.factor_NM[first, m]))
        total = nodes[first].place(task, env.now).finish_s - env.arrival
        for t, m, steps in future:
            best, best_node, best_task = math.inf, -1, task
            for n in np.flatnonzero(ready_N & s.can_run_NM[:, m]):
                cand = ServiceTask(names[m], steps, time_factor=float(env.factor_NM[n, m]))
                finish = nodes[n].what_if(cand, t).finish_s
                if finish < best:
                    best, best_node, best_task = finish, int(n), cand
            if best_node >= 0:
                nodes[best_node].place(best_task, t)
                total += best - t
        return total
