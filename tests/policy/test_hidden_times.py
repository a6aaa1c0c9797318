"""Schedulers see estimates, never the realised service times (issue 6, honest information)."""

from __future__ import annotations

import dataclasses

import numpy as np

from ladts_policy.baselines import make_policy
from ladts_policy.sim.config.cluster_config import ClusterConfig, UncertaintySpec
from ladts_policy.sim.config.scenario import load_scenario
from ladts_policy.sim.dynamics.cluster import ClusterSimulator


def edge(uncertainty: UncertaintySpec, horizon_s: float = 600.0) -> ClusterConfig:
    config = load_scenario("k8s-edge").cluster
    return dataclasses.replace(config, horizon_s=horizon_s, uncertainty=uncertainty)


def play(config: ClusterConfig, seed: int) -> tuple[ClusterSimulator, np.ndarray, np.ndarray]:
    sim = ClusterSimulator(config, num_envs=1)
    pol = make_policy("greedy")
    pol.reset(num_envs=1, num_nodes=sim.num_nodes, seed=0)
    view = sim.reset([seed])
    expected, realised = [], []
    while view is not None:
        action = pol.act(view)
        expected.append(view.expected_delay_EN[0, action[0]])
        delay_E, view = sim.step(action)
        realised.append(delay_E[0])
    return sim, np.array(expected), np.array(realised)


def test_realised_times_differ_from_the_estimates_but_track_them() -> None:
    sim, expected, realised = play(edge(UncertaintySpec()), seed=3)
    assert not np.allclose(expected, realised)
    rel = np.abs(realised - expected) / realised
    assert np.median(rel) < 0.3  # estimates are informative, not exact
    # the corrector learned each busy node's hidden speed from completions
    env = sim.envs[0]
    learned, true = [], []
    for n, name in enumerate(env.node_names):
        if env.corrector.observations(name) >= 5:
            learned.append(env.corrector.factor(name, "sd15"))
            true.append(env.hidden.node_factor_N[n])
    assert len(learned) >= 3
    assert np.allclose(learned, true, rtol=0.15)


def test_view_does_not_depend_on_hidden_factors_before_any_completion() -> None:
    """Two episodes that differ only in the hidden speeds look the same to the scheduler
    until a completion reveals something."""
    config = edge(UncertaintySpec(node_speed_sigma=0.3, request_noise_sigma=0.0,
                                  scrape_interval_s=0.0))
    a = ClusterSimulator(config, num_envs=1)
    b = ClusterSimulator(config, num_envs=1)
    va, vb = a.reset([5]), b.reset([5])
    b.envs[0].hidden = dataclasses.replace(
        b.envs[0].hidden, node_factor_N=b.envs[0].hidden.node_factor_N * 1.7)
    node = int(np.argmin(np.where(va.node_mask_EN[0], va.expected_delay_EN[0], np.inf)))
    np.testing.assert_array_equal(va.expected_delay_EN, vb.expected_delay_EN)
    da, va = a.step(np.array([node]))
    db, vb = b.step(np.array([node]))
    assert db[0] > da[0]  # the truth differs ...
    assert va is not None and vb is not None
    if a.envs[0].corrector.observations(a.envs[0].node_names[node]) == 0:
        np.testing.assert_array_equal(va.expected_delay_EN, vb.expected_delay_EN)  # ... unseen


def test_features_report_models_loaded_now_and_metric_age() -> None:
    config = edge(UncertaintySpec(scrape_interval_s=15.0), horizon_s=300.0)
    sim = ClusterSimulator(config, num_envs=1)
    view = sim.reset([2])
    ages = []
    while view is not None:
        snap, task = sim.snapshot(0)
        env = sim.envs[0]
        ages.extend(snap.metrics_age_s_N.tolist())
        for n, server in enumerate(env.servers):
            seen = server.loaded_at(env.now - env.metrics_age_s(n))
            assert bool(snap.resident_N[n]) == (task.model in seen)
        view = sim.step(np.array([int(np.argmin(np.where(
            view.node_mask_EN[0], view.expected_delay_EN[0], np.inf)))]))[1]
    assert 0.0 <= min(ages) and max(ages) < 15.0 and np.mean(ages) > 3.0
