"""The rollout planner's compiled lookahead on the vectorised simulator against the reference.

``RolloutPolicy`` on ``ClusterSimulator`` clones the projected ``NodeServer`` objects and
places the sampled requests with ``what_if``/``place``; on ``VecClusterSimulator`` the same
lookahead runs in ``vec_dynamics.rollout_scores`` from the simulator's arrays. Both must score
every candidate alike on the same sampled future, and so make the same decisions.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ladts_policy.rollout import RolloutPolicy
from ladts_policy.sim.base import DecisionView
from ladts_policy.sim.config.scenario import load_scenario
from ladts_policy.sim.dynamics.cluster import POPULARITY_WINDOW_S, ClusterSimulator
from ladts_policy.sim.dynamics.cluster_vec import VecClusterSimulator

TOL_S = 1e-9


@pytest.mark.parametrize(("name", "horizon_s", "lookahead_s"), [
    ("k8s-edge", 150.0, 60.0),
    ("k8s-edge-busy", 60.0, 10.0),
])
def test_compiled_rollout_scores_and_decisions_match_the_reference(
        name: str, horizon_s: float, lookahead_s: float) -> None:
    config = dataclasses.replace(load_scenario(name).cluster, horizon_s=horizon_s)
    seeds = [10005, 10006]
    ref, vec = ClusterSimulator(config, num_envs=2), VecClusterSimulator(config, num_envs=2)
    planners = [RolloutPolicy(horizon_s=lookahead_s, top_k=3) for _ in range(2)]
    for planner, sim in zip(planners, (ref, vec), strict=True):
        planner.attach(sim)
        planner.reset(num_envs=2, num_nodes=sim.num_nodes, seed=4)
    probe = RolloutPolicy(horizon_s=lookahead_s)  # samples the futures of the score check
    probe.reset(num_envs=2, num_nodes=ref.num_nodes, seed=8)
    view_ref: DecisionView | None = ref.reset(seeds)
    view_vec: DecisionView | None = vec.reset(seeds)
    steps = compared = 0
    while view_ref is not None:
        assert view_vec is not None
        env = ref.envs[0]
        if env.task >= 0 and steps % 5 == 0:
            future = probe._sample_future(config, env.now,
                                          env.recent_counts_M(POPULARITY_WINDOW_S))
            np.testing.assert_array_equal(vec.recent_counts(0),
                                          env.recent_counts_M(POPULARITY_WINDOW_S))
            candidates = np.flatnonzero(view_ref.node_mask_EN[0])
            want = [probe._roll(env, int(c), future) for c in candidates]
            got = vec.rollout_scores(0, candidates, (
                np.array([r[0] for r in future]), np.array([r[1] for r in future]),
                np.array([r[2] for r in future])))
            np.testing.assert_allclose(got, want, rtol=0, atol=TOL_S)
            compared += len(candidates)
        actions_ref = planners[0].act(view_ref)
        actions_vec = planners[1].act(view_vec)
        active = view_ref.active_E
        np.testing.assert_array_equal(actions_vec[active], actions_ref[active])
        delay_ref, view_ref = ref.step(actions_ref)
        delay_vec, view_vec = vec.step(actions_vec)
        placed = ~np.isnan(delay_ref)
        np.testing.assert_allclose(delay_vec[placed], delay_ref[placed], rtol=0, atol=TOL_S)
        steps += 1
    assert view_vec is None
    assert compared > 100
