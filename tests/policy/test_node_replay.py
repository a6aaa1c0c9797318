"""Rebuilding node servers from observed state, and snapshots built from servers."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from ladts_policy.baselines import make_policy
from ladts_policy.node_replay import ObservedNode, ObservedPod, fitting_resident, replay_node
from ladts_policy.node_snapshot import NodeFacts, snapshot_from_servers
from ladts_policy.sim.config.cluster_config import ModelTiming, UncertaintySpec
from ladts_policy.sim.config.scenario import load_scenario
from ladts_policy.sim.dynamics.cluster import POPULARITY_WINDOW_S, ClusterSimulator
from ladts_policy.sim.dynamics.node_service import NodeServer, ServiceTask
from ladts_policy.snapshot_view import decision_view

TIMINGS = {
    "a": ModelTiming(s_per_step=1.0, overhead_s=1.0, memory_gib=4.0, load_s=10.0),
    "b": ModelTiming(s_per_step=2.0, overhead_s=0.0, memory_gib=4.0, load_s=20.0),
    "c": ModelTiming(s_per_step=1.0, overhead_s=0.0, memory_gib=6.0, load_s=5.0),
}


@pytest.mark.parametrize("seed", range(20))
def test_replay_matches_the_server_that_lived_through_it(seed: int) -> None:
    """Concurrency 1: a server rebuilt from bind order, the last completion and residency
    predicts the same finish for every unfinished pod and for a new task."""
    rng = random.Random(seed)
    truth = NodeServer(concurrency=1, vram_gib=10.0, timings=TIMINGS, resident=("a",))
    t = 0.0
    placed = []
    for k in range(rng.randint(1, 12)):
        t += rng.uniform(0.0, 8.0)
        task = ServiceTask(rng.choice("abc"), rng.randint(1, 6))
        placed.append((f"p{k}", t, task, truth.place(task, t)))
    now = t + rng.uniform(0.0, 20.0)
    done = [p for p in placed if p[3].finish_s <= now]
    pending = [p for p in placed if p[3].finish_s > now]
    resident = [p[2].model for p in sorted(done, key=lambda p: p[3].start_s)]
    observed = ObservedNode(
        concurrency=1,
        vram_gib=10.0,
        timings=TIMINGS,
        pods=[ObservedPod(uid, task.model, task.steps, bind) for uid, bind, task, _ in pending],
        resident=["a", *resident],
        last_completion_s=max((p[3].finish_s for p in done), default=None),
    )
    replay = replay_node(observed, now=now)
    for uid, _, _, placement in pending:
        assert replay.placements[uid].finish_s == pytest.approx(placement.finish_s)
    assert replay.server.queue_len(now) == truth.queue_len(now)
    for model in "abc":
        new = ServiceTask(model, 3)
        assert replay.server.what_if(new, now).finish_s == pytest.approx(
            truth.what_if(new, now).finish_s
        )


def test_overrunning_pod_is_shown_finishing_after_now() -> None:
    node = ObservedNode(
        concurrency=1, vram_gib=10.0, timings=TIMINGS, resident=("a",),
        pods=[ObservedPod("slow", "a", 4, 0.0), ObservedPod("next", "a", 2, 1.0)],
    )
    replay = replay_node(node, now=100.0, overrun_grace_s=2.0)
    assert replay.placements["slow"].finish_s == pytest.approx(102.0)
    assert replay.placements["next"].start_s == pytest.approx(102.0)
    assert replay.server.queue_len(100.0) == 2


def test_correction_factor_scales_service_and_load() -> None:
    node = ObservedNode(concurrency=1, vram_gib=10.0, timings=TIMINGS,
                        pods=[ObservedPod("x", "b", 5, 0.0)])
    replay = replay_node(node, now=0.0, factor=lambda m: 2.0 if m == "b" else 1.0)
    # cold: (20 load + 5 x 2 s) x 2
    assert replay.placements["x"].finish_s == pytest.approx(60.0)


def test_fitting_resident_keeps_most_recent() -> None:
    assert fitting_resident(["a", "b", "c", "a"], TIMINGS, 10.0) == ("c", "a")
    assert fitting_resident(["unknown", "b"], TIMINGS, 10.0) == ("b",)


SCALE_FREE = ("fits", "resident", "vram_gib", "vram_free_gib", "concurrency",
              "requested_fraction", "memory_gib", "evicted_models",
              "evict_popularity", "cold", "loaded")
"""Fields that do not depend on the run-time estimates' scale (see below)."""

TIMED = ("queue_len", "running", "free_slots", "speed", "service_s", "load_s", "backlog_s",
         "est_delay_s", "evict_cost_s")


@pytest.mark.parametrize(("seed", "hidden"), [(0, False), (1, False), (2, True), (3, True)])
def test_snapshot_from_servers_equals_the_simulator_snapshot(seed: int, hidden: bool) -> None:
    """The simulator's projections, given as servers with the models its last scrape saw,
    give every ``ladts-features/2`` field of ``ClusterSimulator.snapshot``.

    With hidden run times the simulator's projection keeps profile timings and scales each
    task by its factor, where the operator's replay scales the timings themselves
    (``node_replay.scaled_timings``); there the fields that do not depend on that scale are
    compared, without hidden times all of them. (The pod counts too: the simulator counts
    pods from its true servers, where its projection ends a pod that overran its estimate at
    ``now``; the operator's replay keeps it until ``now + overrun_grace_s``, so counts equal
    the pod watch's, ``test_overrunning_pod_is_shown_finishing_after_now``.)
    """
    config = dataclasses.replace(load_scenario("k8s-edge").cluster, horizon_s=120.0)
    if not hidden:
        config = dataclasses.replace(config, uncertainty=UncertaintySpec(
            node_speed_sigma=0.0, request_noise_sigma=0.0, scrape_interval_s=0.0))
    sim = ClusterSimulator(config, num_envs=1)
    policy = make_policy("random")
    policy.reset(num_envs=1, num_nodes=sim.num_nodes, seed=seed)
    view = sim.reset([seed])
    steps = evicting = 0
    while view is not None and steps < 80:
        env = sim.envs[0]
        expected, task = sim.snapshot(0)
        pop = dict(zip(sim.static.model_names, env.popularity_M(POPULARITY_WINDOW_S),
                       strict=True))
        facts = [
            NodeFacts(server=proj, ready=bool(expected.ready_N[i]),
                      present=bool(expected.present_N[i]),
                      requested_fraction=float(env.requested_fraction_N()[i]),
                      metrics_age_s=env.metrics_age_s(i),
                      loaded=sorted(seen, key=seen.__getitem__))
            for i, (proj, seen) in enumerate(zip(env.projections, env.observed_loaded,
                                                 strict=True))
        ]
        got = snapshot_from_servers(facts, task, now=env.now, arrival_s=env.arrival,
                                    pending=expected.pending, popularity=pop)
        names = SCALE_FREE if hidden else SCALE_FREE + TIMED
        for name in (*names, "present", "ready", "metrics_age_s"):
            field = f"{name}_NV" if name == "loaded" else f"{name}_N"
            np.testing.assert_allclose(
                getattr(got, field).astype(float), getattr(expected, field).astype(float),
                err_msg=name, rtol=1e-12,
            )
        assert (got.pending, got.popularity) == (expected.pending, expected.popularity)
        evicting += int(expected.evicted_models_N.sum() > 0)
        if not hidden:
            view_got = decision_view(got)
            np.testing.assert_array_equal(view_got.node_mask_EN[0], view.node_mask_EN[0])
            np.testing.assert_allclose(view_got.expected_delay_EN, view.expected_delay_EN)
        _, view = sim.step(policy.act(view))
        steps += 1
    assert steps > 5
    assert evicting > 0, "no decision where a placement evicts: the test checks too little"
