"""Invariants of the k8s-edge simulator."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from ladts_policy.baselines import make_policy
from ladts_policy.sim.config.cluster_config import (
    ChurnSpec,
    ClusterConfig,
    DriftSpec,
    ResidencySpec,
    UncertaintySpec,
)
from ladts_policy.sim.config.scenario import load_scenario
from ladts_policy.sim.dynamics.cluster import ClusterSimulator
from ladts_policy.sim.dynamics.workload import draw_arrival_times
from ladts_policy.sim.envs.cluster_env import ClusterEnv

EXACT = UncertaintySpec(node_speed_sigma=0.0, request_noise_sigma=0.0, scrape_interval_s=0.0)
"""No hidden speed, no noise, fresh metrics: the scheduler's projection is then the truth."""


def edge(horizon_s: float = 300.0, *, preset_draws: bool = False, **changes: object
         ) -> ClusterConfig:
    """The k8s-edge preset without hidden times; with the fixed resident lists and no drift
    unless ``preset_draws``."""
    config = load_scenario("k8s-edge").cluster
    changes.setdefault("uncertainty", EXACT)
    if not preset_draws:
        changes.setdefault("residency", ResidencySpec(mode="fixed"))
        changes.setdefault("drift", DriftSpec(enabled=False))
    return dataclasses.replace(config, horizon_s=horizon_s, **changes)  # type: ignore[arg-type]


def run(config: ClusterConfig, policy: str, seeds: list[int]) -> list[np.ndarray]:
    sim = ClusterSimulator(config, num_envs=len(seeds))
    pol = make_policy(policy)
    pol.reset(num_envs=len(seeds), num_nodes=sim.num_nodes, seed=7)
    view = sim.reset(seeds)
    out: list[np.ndarray] = []
    while view is not None:
        delay_E, view = sim.step(pol.act(view))
        out.append(delay_E)
    return out


@pytest.mark.parametrize("preset_draws", [False, True])
@pytest.mark.parametrize("policy", ["greedy", "random", "spread"])
def test_delay_matches_prediction_and_exceeds_service(policy: str, preset_draws: bool) -> None:
    config = edge(churn=ChurnSpec(enabled=True, mean_up_s=200, mean_down_s=60),
                  preset_draws=preset_draws)
    sim = ClusterSimulator(config, num_envs=2)
    pol = make_policy(policy)
    pol.reset(num_envs=2, num_nodes=sim.num_nodes, seed=1)
    view = sim.reset([3, 4])
    s = sim.static
    while view is not None:
        assert np.all(view.node_mask_EN.any(axis=1) | ~view.active_E)
        action_E = pol.act(view)
        expected_E = view.expected_delay_EN[np.arange(2), action_E]
        warm_E = np.array(
            [
                s.overhead_s_NM[a, env.model] + env.steps * s.s_per_step_NM[a, env.model]
                if env.task >= 0
                else np.nan
                for env, a in zip(sim.envs, action_E, strict=True)
            ]
        )
        delay_E, view = sim.step(action_E)
        done = np.isnan(delay_E)
        np.testing.assert_allclose(delay_E[~done], expected_E[~done])
        assert np.all(delay_E[~done] >= warm_E[~done] - 1e-9)


def test_reproducible_with_seeds() -> None:
    config = edge(churn=ChurnSpec(enabled=True, mean_up_s=300, mean_down_s=60))
    a = np.concatenate(run(config, "random", [1, 2]))
    b = np.concatenate(run(config, "random", [1, 2]))
    c = np.concatenate(run(config, "random", [5, 6]))
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c, equal_nan=True)


def test_same_seed_same_workload_across_policies() -> None:
    config = edge()
    sizes = {
        p: sum(int((~np.isnan(d)).sum()) for d in run(config, p, [11]))
        for p in ["greedy", "random"]
    }
    assert sizes["greedy"] == sizes["random"] > 0


def test_masked_action_is_rejected() -> None:
    config = edge()
    sim = ClusterSimulator(config, num_envs=1)
    view = sim.reset([0])
    while view is not None and view.node_mask_EN[0].all():
        view = sim.step(np.array([int(np.argmin(view.expected_delay_EN[0]))]))[1]
    assert view is not None
    bad = int(np.flatnonzero(~view.node_mask_EN[0])[0])
    with pytest.raises(ValueError, match="not schedulable"):
        sim.step(np.array([bad]))


def test_mask_excludes_nodes_without_room_for_the_model() -> None:
    sim = ClusterSimulator(edge(), num_envs=1)
    view = sim.reset([2])
    names = [n.name for n in sim.nodes]
    nano = np.array([name.startswith("edge-nano") for name in names])
    seen_sdxl = False
    while view is not None:
        env = sim.envs[0]
        if sim.static.model_names[env.model] == "sdxl":
            seen_sdxl = True
            assert not view.node_mask_EN[0, nano].any()
        assert np.all(view.capacity_EN[0, view.node_mask_EN[0]] > 0)
        view = sim.step(
            np.array(
                [int(np.argmin(np.where(view.node_mask_EN[0], view.expected_delay_EN[0], np.inf)))]
            )
        )[1]
    assert seen_sdxl


def test_churn_drains_with_fixed_finish_times() -> None:
    config = edge(
        horizon_s=600,
        churn=ChurnSpec(enabled=True, mean_up_s=150, mean_down_s=100, max_down_fraction=0.5),
    )
    sim = ClusterSimulator(config, num_envs=1)
    pol = make_policy("random")
    pol.reset(num_envs=1, num_nodes=sim.num_nodes, seed=3)
    view = sim.reset([9])
    finishes: list[list[float]] = [[] for _ in range(sim.num_nodes)]
    drained_while_cordoned = False
    while view is not None:
        env = sim.envs[0]
        for n in range(sim.num_nodes):
            outstanding = sum(f > env.now for f in finishes[n])
            assert view.queue_len_EN[0, n] == outstanding
            if env.cordoned_N[n]:
                assert not view.node_mask_EN[0, n]
                drained_while_cordoned |= outstanding > 0
        action = pol.act(view)
        arrival = env.arrival
        delay_E, view = sim.step(action)
        finishes[int(action[0])].append(arrival + float(delay_E[0]))
    assert drained_while_cordoned


def test_exclusive_binds_only_free_nodes_and_counts_wait() -> None:
    config = edge(horizon_s=200, exclusive=True)
    sim = ClusterSimulator(config, num_envs=2)
    pol = make_policy("greedy")
    pol.reset(num_envs=2, num_nodes=sim.num_nodes, seed=0)
    view = sim.reset([1, 2])
    waited = 0.0
    count = 0
    while view is not None:
        assert np.all(view.queue_len_EN[view.node_mask_EN] == 0)
        for env in sim.envs:
            if env.task >= 0:
                waited = max(waited, env.now - env.arrival)
        action_E = pol.act(view)
        expected_E = view.expected_delay_EN[np.arange(2), action_E]
        delay_E, view = sim.step(action_E)
        ok = ~np.isnan(delay_E)
        count += int(ok.sum())
        np.testing.assert_allclose(delay_E[ok], expected_E[ok])
    assert waited > 0.0  # the load exceeds what 20 exclusive GPUs absorb at once
    assert count == sum(len(env.work) for env in sim.envs)


def test_bursty_arrivals_keep_the_mean_rate() -> None:
    spec = load_scenario("k8s-edge-bursty").cluster.arrivals
    rng = np.random.default_rng(0)
    counts = [draw_arrival_times(spec, 3600.0, rng).size for _ in range(30)]
    assert np.mean(counts) == pytest.approx(spec.rate_per_s * 3600, rel=0.1)
    times = draw_arrival_times(spec, 3600.0, rng)
    assert np.all(np.diff(times) >= 0) and times.max() < 3600.0


def test_greedy_beats_random_and_utilisation_is_sane() -> None:
    base = edge(horizon_s=600)
    # A busy cluster (greedy's stable limit is about 4 req/s), whatever the preset's rate.
    config = dataclasses.replace(
        base, arrivals=dataclasses.replace(base.arrivals, rate_per_s=4.0))
    greedy = np.nanmean(np.concatenate(run(config, "greedy", [1, 2])))
    rand = np.nanmean(np.concatenate(run(config, "random", [1, 2])))
    assert greedy < rand
    sim = ClusterSimulator(config, num_envs=1)
    view = sim.reset([1])
    while view is not None:
        masked_EN = np.where(view.node_mask_EN, view.expected_delay_EN, np.inf)
        view = sim.step(np.argmin(masked_EN, axis=1))[1]
    stats = sim.episode_stats()
    assert stats["placed"][0] == len(sim.envs[0].work)
    assert 0.2 < stats["utilisation"][0] < 1.0
    assert 0 <= stats["cold_starts"][0] < stats["placed"][0] / 10


def test_cluster_env_passes_check_env() -> None:
    env = ClusterEnv(edge(horizon_s=60), node_slots=24)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=5)
    assert obs["nodes"].shape == (24, env.observation_space["nodes"].shape[1])
    assert obs["node_mask"][20:].sum() == 0
    total, steps, terminated = 0.0, 0, False
    while not terminated:
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert reward <= 0 and not truncated
        total += reward
        steps += 1
    assert steps > 10
