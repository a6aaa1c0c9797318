"""NodeServer against an independent reference model, and the concurrency/exclusive defects."""

from __future__ import annotations

import random

import pytest
from tests.policy.node_oracle import Request, reference_schedule

from ladts_policy.sim.config.cluster_config import GpuProfile, ModelTiming, NodeSpec
from ladts_policy.sim.dynamics.node_service import NodeServer, ServiceTask, make_node_server

TIMINGS = {
    "a": ModelTiming(s_per_step=1.0, overhead_s=1.0, memory_gib=4.0, load_s=10.0),
    "b": ModelTiming(s_per_step=2.0, overhead_s=0.5, memory_gib=4.0, load_s=20.0),
    "c": ModelTiming(s_per_step=0.5, overhead_s=0.0, memory_gib=6.0, load_s=5.0),
    "d": ModelTiming(s_per_step=0.3, overhead_s=0.2, memory_gib=3.0, load_s=8.0),
}


@pytest.mark.parametrize("seed", range(40))
def test_random_placements_match_the_reference_model(seed: int) -> None:
    rng = random.Random(seed)
    concurrency = rng.choice([1, 2, 3, 4])
    vram = rng.choice([8.0, 10.0, 12.0, 17.0])
    share = rng.choice([0.0, 0.5, 1.0])
    resident = tuple(rng.sample(sorted(TIMINGS), rng.randint(0, 2)))
    rate = rng.choice([0.05, 0.3, 1.0])
    node = NodeServer(concurrency=concurrency, vram_gib=vram, timings=TIMINGS,
                      resident=resident, share_slowdown=share)
    requests = []
    now = 0.0
    for _ in range(150):
        now += rng.expovariate(rate)
        requests.append(Request(now, rng.choice("abcd"), rng.randint(1, 6),
                                rng.lognormvariate(0.0, 0.2)))
    expected = reference_schedule(requests, concurrency=concurrency, vram_gib=vram,
                                  timings=TIMINGS, resident=resident, share_slowdown=share)
    for req, ref in zip(requests, expected, strict=True):
        # a what-if query before placing must not disturb anything
        node.what_if(ServiceTask("c", 2), req.placed_s)
        got = node.place(ServiceTask(req.model, req.steps, time_factor=req.factor),
                         req.placed_s)
        assert got.cold == ref.cold
        assert got.start_s == pytest.approx(ref.start_s, abs=1e-9)
        assert got.finish_s == pytest.approx(ref.finish_s, abs=1e-9)


def test_pod_of_a_model_still_loading_waits_for_the_load() -> None:
    node = NodeServer(concurrency=2, vram_gib=10.0, timings=TIMINGS, resident=(),
                      share_slowdown=0.0)
    first = node.place(ServiceTask("a", 1), now=0.0)  # cold: loads 0..10, runs to 12
    second = node.place(ServiceTask("a", 1), now=1.0)
    assert first.cold and not second.cold
    assert second.start_s == pytest.approx(10.0)
    assert second.finish_s == pytest.approx(12.0)


def test_pods_sharing_a_time_sliced_gpu_slow_each_other() -> None:
    node = NodeServer(concurrency=2, vram_gib=10.0, timings=TIMINGS, resident=("a",))
    alone = node.place(ServiceTask("a", 9), now=0.0)  # 10 s alone
    shared = node.place(ServiceTask("a", 9), now=0.0)  # starts beside it: pure time slicing
    assert alone.finish_s == pytest.approx(10.0)
    assert shared.start_s == 0.0 and shared.finish_s == pytest.approx(20.0)
    assert shared.slowdown == 2.0


def test_exclusive_gpus_have_their_own_model_cache() -> None:
    profile = GpuProfile(name="g", product_label="G", vram_gib=10.0, timings=TIMINGS)
    spec = NodeSpec(name="n-0", profile=profile, concurrency=2, resident=(), cpu=8.0,
                    memory_gib=32.0, group=0)
    node = make_node_server(spec, exclusive=True)
    first = node.place(ServiceTask("c", 1), now=0.0)
    second = node.place(ServiceTask("c", 1), now=0.0)  # the other GPU: its cache is empty
    assert first.cold and second.cold
    assert first.start_s == second.start_s == 0.0
    # each GPU holds 6 of its own 10 GiB: a 4 GiB model fits beside c on either GPU
    node.restart(100.0)
    p = node.place(ServiceTask("c", 1), now=100.0)
    q = node.place(ServiceTask("a", 1), now=100.0)
    assert p.start_s == q.start_s == 100.0 and not q.evicted


def test_loaded_now_excludes_models_of_pods_not_started() -> None:
    node = NodeServer(concurrency=1, vram_gib=8.0, timings=TIMINGS, resident=("a",),
                      history_s=60.0)
    node.place(ServiceTask("a", 9), now=0.0)  # 0..10
    node.place(ServiceTask("c", 1), now=1.0)  # starts at 10, evicts a
    assert set(node.loaded_models()) == {"c"}
    assert set(node.loaded_at(5.0)) == {"a"}
    assert set(node.loaded_at(11.0)) == {"c"}
