"""The residency-aware greedy and the rollout planner (issue 6, stronger baselines)."""

from __future__ import annotations

import dataclasses

import numpy as np

from ladts_policy.baselines import ResidencyGreedyPolicy, make_policy, residency_cost
from ladts_policy.rollout import RolloutPolicy
from ladts_policy.sim.base import DecisionView
from ladts_policy.sim.config.scenario import load_scenario
from ladts_policy.sim.dynamics.cluster import ClusterSimulator


def view(**overrides: object) -> DecisionView:
    e, n = 1, 3
    fields: dict[str, object] = {
        "active_E": np.ones(e, dtype=bool),
        "node_mask_EN": np.ones((e, n), dtype=bool),
        "capacity_EN": np.ones((e, n)),
        "queue_len_EN": np.zeros((e, n)),
        # node 0: warm and slow; node 1: cold and fast once loaded; node 2: cold, evicts
        "expected_delay_EN": np.array([[10.0, 25.0, 24.0]]),
        "requested_fraction_EN": np.zeros((e, n)),
        "local_node_E": np.full(e, -1),
        "cold_EN": np.array([[False, True, True]]),
        "load_s_EN": np.array([[20.0, 20.0, 20.0]]),
        "evict_cost_EN": np.array([[0.0, 0.0, 30.0]]),
        "popularity_E": np.array([1.0]),
    }
    fields.update(overrides)
    return DecisionView(**fields)  # type: ignore[arg-type]


def test_residency_greedy_amortises_cold_starts_and_charges_evictions() -> None:
    greedy = make_policy("greedy")
    greedy.reset(num_envs=1, num_nodes=3, seed=0)
    assert greedy.act(view())[0] == 0
    res = ResidencyGreedyPolicy(amortise=1.0, evict=1.0)
    res.reset(num_envs=1, num_nodes=3, seed=0)
    assert res.act(view())[0] == 1  # 25 - 20 = 5 < 10; node 2: 24 - 20 + 30
    np.testing.assert_allclose(residency_cost(view(), 1.0, 1.0), [[10.0, 5.0, 34.0]])
    # a rare model is not worth warming
    assert res.act(view(popularity_E=np.array([0.1])))[0] == 0
    # with zero weights, or without residency fields, it is greedy
    np.testing.assert_array_equal(residency_cost(view(), 0.0, 0.0), view().expected_delay_EN)
    plain = view(cold_EN=None, load_s_EN=None, evict_cost_EN=None, popularity_E=None)
    np.testing.assert_array_equal(residency_cost(plain, 1.0, 1.0), plain.expected_delay_EN)


def first_rollout_choice(future_shift: float) -> int:
    config = dataclasses.replace(load_scenario("k8s-edge").cluster, horizon_s=300.0)
    sim = ClusterSimulator(config, num_envs=1)
    pol = RolloutPolicy(horizon_s=60.0, top_k=4)
    pol.attach(sim)
    pol.reset(num_envs=1, num_nodes=sim.num_nodes, seed=0)
    view = sim.reset([7])
    greedy = make_policy("greedy")
    greedy.reset(num_envs=1, num_nodes=sim.num_nodes, seed=0)
    for _ in range(40):  # warm up the cluster a little
        assert view is not None
        view = sim.step(greedy.act(view))[1]
    env = sim.envs[0]
    # rewrite the true future: the planner must not notice
    later = env.work.arrival_s_T > env.now
    env.work = dataclasses.replace(
        env.work, model_T=np.where(later, (env.work.model_T + 1) % 5, env.work.model_T),
        arrival_s_T=np.where(later, env.work.arrival_s_T + future_shift, env.work.arrival_s_T))
    assert view is not None
    return int(pol.act(view)[0])


def test_rollout_never_reads_the_true_future() -> None:
    assert first_rollout_choice(0.0) == first_rollout_choice(5.0)


def test_rollout_with_zero_horizon_is_greedy() -> None:
    config = dataclasses.replace(load_scenario("k8s-edge").cluster, horizon_s=120.0)
    sim = ClusterSimulator(config, num_envs=1)
    pol = RolloutPolicy(horizon_s=0.0)
    pol.attach(sim)
    pol.reset(num_envs=1, num_nodes=sim.num_nodes, seed=0)
    view = sim.reset([3])
    while view is not None:
        best = np.where(view.node_mask_EN[0], view.expected_delay_EN[0], np.inf)
        choice = pol.act(view)
        assert best[choice[0]] == best.min()
        view = sim.step(choice)[1]


def test_snapshot_view_gives_the_fallback_the_simulators_view() -> None:
    """The operator's bridge (snapshot -> view) reproduces the simulator's own view."""
    from ladts_policy.snapshot_view import decision_view

    config = dataclasses.replace(load_scenario("k8s-edge").cluster, horizon_s=300.0)
    sim = ClusterSimulator(config, num_envs=1)
    pol = make_policy("residency-greedy")
    pol.reset(num_envs=1, num_nodes=sim.num_nodes, seed=0)
    view = sim.reset([11])
    checked = 0
    while view is not None:
        snap, _ = sim.snapshot(0)
        bridged = decision_view(snap)
        mask = view.node_mask_EN[0]
        np.testing.assert_array_equal(bridged.node_mask_EN[0], mask)
        for name in ("expected_delay_EN", "load_s_EN", "evict_cost_EN"):
            np.testing.assert_allclose(getattr(bridged, name)[0][mask],
                                       getattr(view, name)[0][mask], rtol=1e-12)
        np.testing.assert_array_equal(bridged.cold_EN[0][mask], view.cold_EN[0][mask])
        assert bridged.popularity_E[0] == view.popularity_E[0]
        checked += 1
        view = sim.step(pol.act(view))[1]
    assert checked > 100
