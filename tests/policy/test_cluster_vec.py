"""The vectorised k8s-edge simulator against the reference (``ClusterSimulator``/``NodeServer``).

Both are driven with the same seeds and the same actions; every pod's delay, every view,
every snapshot (through ``features.encode``) and the episode totals must agree. The
reference is the independent model here: its node servers are the ones
``tests/policy/test_node_service_oracle.py`` checks against a small queue oracle.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ladts_policy.baselines import RESIDENCY_AMORTISE, RESIDENCY_EVICT, make_policy
from ladts_policy.features import encode
from ladts_policy.features_batch import encode_batch
from ladts_policy.sim.base import DecisionView
from ladts_policy.sim.config.cluster_config import ClusterConfig
from ladts_policy.sim.config.scenario import load_scenario
from ladts_policy.sim.dynamics.cluster import ClusterSimulator
from ladts_policy.sim.dynamics.cluster_vec import (
    VecClusterSimulator,
    make_cluster_simulator,
    vectorisable,
)

TOL_S = 1e-9
_FLOAT_FIELDS = ("expected_delay_EN", "load_s_EN", "evict_cost_EN", "capacity_EN",
                 "queue_len_EN", "requested_fraction_EN")


def preset(name: str, horizon_s: float) -> ClusterConfig:
    return dataclasses.replace(load_scenario(name).cluster, horizon_s=horizon_s)


def assert_views_agree(ref: DecisionView, vec: DecisionView) -> None:
    np.testing.assert_array_equal(ref.active_E, vec.active_E)
    rows = ref.active_E
    np.testing.assert_array_equal(ref.node_mask_EN[rows], vec.node_mask_EN[rows])
    assert ref.cold_EN is not None and vec.cold_EN is not None
    np.testing.assert_array_equal(ref.cold_EN[rows], vec.cold_EN[rows])
    for name in _FLOAT_FIELDS:
        np.testing.assert_allclose(getattr(vec, name)[rows], getattr(ref, name)[rows],
                                   rtol=0, atol=TOL_S, err_msg=name)
    assert ref.popularity_E is not None and vec.popularity_E is not None
    np.testing.assert_allclose(vec.popularity_E[rows], ref.popularity_E[rows], atol=1e-12)


def assert_snapshots_agree(ref: ClusterSimulator, vec: VecClusterSimulator) -> None:
    batch = encode_batch(vec.snapshot_batch(), node_slots=ref.num_nodes + 3)
    compiled = vec.encode_all(node_slots=ref.num_nodes + 3)
    for e, env in enumerate(ref.envs):
        if env.task < 0:
            continue
        want = encode(*ref.snapshot(e), node_slots=ref.num_nodes + 3)
        got = encode(*vec.snapshot(e), node_slots=ref.num_nodes + 3)
        for enc_rows, enc_task, enc_glob, enc_mask in (
            (got.node_rows_SF, got.task_T, got.global_G, got.node_mask_S),
            (batch.node_rows_ESF[e], batch.task_ET[e], batch.global_EG[e],
             batch.node_mask_ES[e]),
            (compiled.node_rows_ESF[e], compiled.task_ET[e], compiled.global_EG[e],
             compiled.node_mask_ES[e]),
        ):
            np.testing.assert_allclose(enc_rows, want.node_rows_SF, rtol=1e-6, atol=1e-7)
            np.testing.assert_allclose(enc_task, want.task_T, rtol=1e-6, atol=1e-7)
            np.testing.assert_array_equal(enc_glob, want.global_G)
            np.testing.assert_array_equal(enc_mask, want.node_mask_S)


def play_both(config: ClusterConfig, seeds: list[int], choose: str, *,
              snapshots_every: int = 0, buffer: int = 16) -> int:
    """Play ``seeds`` on both simulators; ``choose`` names a heuristic or ``random``."""
    ref = ClusterSimulator(config, num_envs=len(seeds))
    vec = VecClusterSimulator(config, num_envs=len(seeds), buffer=buffer)
    rng = np.random.default_rng(7)
    policy = None if choose == "random" else make_policy(choose)
    if policy is not None:
        policy.reset(num_envs=len(seeds), num_nodes=ref.num_nodes, seed=3)
    view_ref: DecisionView | None = ref.reset(seeds)
    view_vec: DecisionView | None = vec.reset(seeds)
    steps = 0
    while view_ref is not None:
        assert view_vec is not None
        assert_views_agree(view_ref, view_vec)
        if snapshots_every and steps % snapshots_every == 0:
            assert_snapshots_agree(ref, vec)
        if policy is None:
            noise_EN = rng.random(view_ref.node_mask_EN.shape)
            actions_E = np.argmax(np.where(view_ref.node_mask_EN, noise_EN, -1.0), axis=1)
        else:
            actions_E = policy.act(view_ref)
        delay_ref, view_ref = ref.step(actions_E)
        delay_vec, view_vec = vec.step(actions_E)
        np.testing.assert_array_equal(np.isnan(delay_ref), np.isnan(delay_vec))
        placed = ~np.isnan(delay_ref)
        np.testing.assert_allclose(delay_vec[placed], delay_ref[placed], rtol=0, atol=TOL_S)
        steps += 1
    assert view_vec is None
    stats_ref, stats_vec = ref.episode_stats(), vec.episode_stats()
    for key, value in stats_ref.items():
        np.testing.assert_allclose(stats_vec[key], value, rtol=0, atol=1e-6, err_msg=key)
    return int(stats_ref["placed"].sum())


@pytest.mark.parametrize(("name", "horizon_s", "policy"), [
    ("k8s-edge", 600.0, "greedy"),
    ("k8s-edge", 600.0, "residency-greedy"),
    ("k8s-edge-busy", 300.0, "greedy"),
    ("k8s-edge-busy", 300.0, "residency-greedy"),
    ("k8s-edge-bursty", 600.0, "greedy"),
    ("k8s-edge-bursty", 600.0, "residency-greedy"),
    ("k8s-edge-200", 45.0, "greedy"),
])
def test_greedy_episodes_agree_on_every_preset(name: str, horizon_s: float, policy: str) -> None:
    assert play_both(preset(name, horizon_s), [10000, 10001], policy) > 0


def test_random_placements_agree_with_long_queues_and_buffer_growth() -> None:
    # random valid nodes build long queues, cold starts and evictions everywhere; a 2-entry
    # buffer makes the vectorised side grow its per-node pod buffer many times
    placed = play_both(preset("k8s-edge-busy", 400.0), [5, 6, 7], "random", buffer=2)
    assert placed > 2000


def test_snapshots_and_batched_encoding_match_encode() -> None:
    play_both(preset("k8s-edge", 400.0), [21, 22], "greedy", snapshots_every=7)


def test_fixed_residency_and_no_uncertainty_agree() -> None:
    base = preset("k8s-edge", 400.0)
    config = dataclasses.replace(
        base,
        residency=dataclasses.replace(base.residency, mode="fixed"),
        uncertainty=dataclasses.replace(base.uncertainty, scrape_interval_s=0.0,
                                        node_speed_sigma=0.0, request_noise_sigma=0.0),
    )
    play_both(config, [3, 4], "least-queue")


def test_masked_action_rejected_before_any_change() -> None:
    config = preset("k8s-edge", 120.0)
    sim = VecClusterSimulator(config, num_envs=2)
    view = sim.reset([1, 2])
    good_E = np.argmax(view.node_mask_EN, axis=1)
    masked = np.flatnonzero(~view.node_mask_EN[1])
    bad = int(masked[0]) if masked.size else sim.num_nodes  # a masked or a missing node
    before = sim.episode_stats()
    with pytest.raises(ValueError, match="env 1"):
        sim.step(np.array([good_E[0], bad]))
    assert sim.episode_stats()["placed"].tolist() == before["placed"].tolist()
    delay_E, _ = sim.step(good_E)
    assert np.isfinite(delay_E).all()


def test_unsupported_scenarios_fall_back_to_the_reference() -> None:
    base = preset("k8s-edge", 60.0)
    exclusive = dataclasses.replace(base, exclusive=True)
    shared = dataclasses.replace(
        base, nodes=tuple(dataclasses.replace(g, concurrency=2) for g in base.nodes))
    for config in (exclusive, shared):
        assert not vectorisable(config)
        assert isinstance(make_cluster_simulator(config, num_envs=1), ClusterSimulator)
        with pytest.raises(ValueError, match="concurrency 1"):
            VecClusterSimulator(config, num_envs=1)
    assert isinstance(make_cluster_simulator(base, num_envs=1), VecClusterSimulator)
    assert isinstance(make_cluster_simulator(base, num_envs=1, reference=True),
                      ClusterSimulator)


@pytest.mark.parametrize(("name", "policy"), [
    ("k8s-edge", "greedy"),
    ("k8s-edge-busy", "residency-greedy"),
])
def test_compiled_play_makes_the_decisions_of_the_step_loop(name: str, policy: str) -> None:
    # VecClusterSimulator.play (greedy scoring, ties and placement in one kernel) against
    # step(policy.act(view)) on the same simulator, whose steps the tests above check
    # against the reference; a 2-entry buffer makes play grow it mid-batch
    config, seeds = preset(name, 300.0), [31, 32, 33]
    fused = VecClusterSimulator(config, num_envs=3, buffer=2)
    fused.reset(seeds)
    ref = make_policy(policy)
    ref.reset(num_envs=3, num_nodes=fused.num_nodes, seed=9)
    weights = (getattr(ref, "amortise", 0.0), getattr(ref, "evict", 0.0))
    delay_SE = fused.play(ref.rng, amortise=weights[0], evict=weights[1], batch_steps=41)
    loop = VecClusterSimulator(config, num_envs=3, buffer=2)
    view: DecisionView | None = loop.reset(seeds)
    ref.reset(num_envs=3, num_nodes=loop.num_nodes, seed=9)
    rows = []
    while view is not None:
        delay_E, view = loop.step(ref.act(view))
        rows.append(delay_E)
    want_SE = np.array(rows)
    assert delay_SE.shape == want_SE.shape
    np.testing.assert_array_equal(delay_SE, want_SE)  # NaN where an episode had ended
    for key, value in loop.episode_stats().items():
        np.testing.assert_array_equal(fused.episode_stats()[key], value, err_msg=key)
    assert fused.current_view() is None


def test_parallel_kernels_match_the_serial_ones() -> None:
    # threads=2 runs step, encode and play on numba's threads (envs in parallel)
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one numba thread on this machine")
    config, seeds = preset("k8s-edge-busy", 200.0), [41, 42, 43, 44, 45]
    sims = [VecClusterSimulator(config, num_envs=5, buffer=2, threads=t) for t in (1, 2)]
    rng = np.random.default_rng(1)
    views = [sim.reset(seeds) for sim in sims]
    while views[0] is not None:
        assert views[1] is not None
        enc = [sim.encode_all(node_slots=sim.num_nodes) for sim in sims]
        np.testing.assert_array_equal(enc[0].node_rows_ESF, enc[1].node_rows_ESF)
        np.testing.assert_array_equal(enc[0].node_mask_ES, enc[1].node_mask_ES)
        np.testing.assert_array_equal(enc[0].task_ET, enc[1].task_ET)
        np.testing.assert_array_equal(enc[0].global_EG, enc[1].global_EG)
        noise_EN = rng.random(views[0].node_mask_EN.shape)
        actions_E = np.argmax(np.where(views[0].node_mask_EN, noise_EN, -1.0), axis=1)
        (d0, views[0]), (d1, views[1]) = (sim.step(actions_E) for sim in sims)
        np.testing.assert_array_equal(d0, d1)
    for weights in ({}, {"amortise": RESIDENCY_AMORTISE, "evict": RESIDENCY_EVICT}):
        plays = []
        for sim in sims:
            sim.reset(seeds)
            plays.append(sim.play(np.random.default_rng(2), batch_steps=50, **weights))
        np.testing.assert_array_equal(plays[0], plays[1], err_msg=str(weights))


def test_place_refuses_a_second_call_on_the_same_view() -> None:
    sim = VecClusterSimulator(preset("k8s-edge", 200.0), num_envs=2)
    view = sim.reset([5, 6])
    assert view is not None
    actions_E = np.argmax(view.node_mask_EN, axis=1)
    sim.place(actions_E)
    # The view's mask described the cluster before that placement: no second use.
    with pytest.raises(ValueError, match="not schedulable"):
        sim.place(actions_E)
    view = sim.current_view()
    assert view is not None
    sim.place(np.argmax(view.node_mask_EN, axis=1))
