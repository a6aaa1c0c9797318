"""The single-node service discipline."""

from __future__ import annotations

import math

import pytest

from ladts_policy.sim.config.cluster_config import ModelTiming
from ladts_policy.sim.dynamics.node_service import NodeServer, ServiceTask

TIMINGS = {
    "a": ModelTiming(s_per_step=1.0, overhead_s=1.0, memory_gib=4.0, load_s=10.0),
    "b": ModelTiming(s_per_step=2.0, overhead_s=0.0, memory_gib=4.0, load_s=20.0),
    "c": ModelTiming(s_per_step=1.0, overhead_s=0.0, memory_gib=6.0, load_s=5.0),
    "huge": ModelTiming(s_per_step=1.0, overhead_s=0.0, memory_gib=50.0, load_s=5.0),
}


def server(
    concurrency: int = 1, vram: float = 10.0, resident: tuple[str, ...] = ("a",),
    share_slowdown: float = 0.0,
) -> NodeServer:
    return NodeServer(concurrency=concurrency, vram_gib=vram, timings=TIMINGS, resident=resident,
                      share_slowdown=share_slowdown)


def test_fifo_single_slot_delays_fixed_at_placement() -> None:
    node = server()
    p1 = node.place(ServiceTask("a", 4), now=0.0)
    assert (p1.start_s, p1.finish_s, p1.cold) == (0.0, 5.0, False)
    p2 = node.place(ServiceTask("a", 2), now=1.0)
    assert (p2.start_s, p2.finish_s) == (5.0, 8.0)
    assert node.queue_len(1.0) == 2 and node.running(1.0) == 1
    assert node.queue_len(5.0) == 1 and node.queue_len(8.0) == 0
    p3 = node.place(ServiceTask("a", 1), now=20.0)
    assert p3.start_s == 20.0


def test_what_if_does_not_mutate() -> None:
    node = server()
    node.place(ServiceTask("a", 4), now=0.0)
    before = node.what_if(ServiceTask("a", 1), now=1.0)
    again = node.what_if(ServiceTask("a", 1), now=1.0)
    assert before == again and node.queue_len(1.0) == 1
    assert node.place(ServiceTask("a", 1), now=1.0) == before


def test_concurrency_runs_pods_side_by_side() -> None:
    node = server(concurrency=2)
    p1 = node.place(ServiceTask("a", 9), now=0.0)  # 0..10
    p2 = node.place(ServiceTask("a", 1), now=0.0)  # 0..2
    p3 = node.place(ServiceTask("a", 1), now=0.0)  # waits for p2
    assert p1.start_s == p2.start_s == 0.0
    assert p3.start_s == p2.finish_s == 2.0
    assert node.running(1.0) == 2


def test_fifo_start_order_even_with_free_slot_later() -> None:
    node = server(concurrency=2, vram=10.0, resident=("a",))
    node.place(ServiceTask("a", 9), now=0.0)  # 0..10, holds a (4 GiB)
    p_c = node.place(ServiceTask("c", 1), now=0.0)  # c needs 6: fits beside a (4 + 6 = 10)
    assert p_c.start_s == 0.0 and p_c.cold
    p_b = node.place(ServiceTask("b", 1), now=0.0)  # b needs 4: a and c busy -> wait
    p_a = node.place(ServiceTask("a", 1), now=0.0)  # a is loaded, but FIFO: not before p_b
    assert p_b.start_s == p_c.finish_s
    assert p_a.start_s >= p_b.start_s


def test_cold_then_warm_and_load_time() -> None:
    node = server(resident=())
    p1 = node.place(ServiceTask("b", 1), now=0.0)
    assert p1.cold and p1.finish_s == pytest.approx(20.0 + 2.0)
    p2 = node.place(ServiceTask("b", 1), now=100.0)
    assert not p2.cold and p2.finish_s == pytest.approx(102.0)
    assert node.is_loaded("b")


def test_lru_eviction_makes_room() -> None:
    node = server(vram=10.0, resident=())
    node.place(ServiceTask("a", 1), now=0.0)  # a loaded (4)
    node.place(ServiceTask("b", 1), now=100.0)  # b loaded (4): 8 of 10 used
    node.place(ServiceTask("a", 1), now=200.0)  # touch a: b is now least recently used
    p = node.place(ServiceTask("c", 1), now=300.0)  # needs 6: evict b only
    assert p.cold and p.evicted == ("b",)
    assert set(node.loaded_models()) == {"a", "c"}
    assert node.free_vram_gib() == pytest.approx(0.0)


def test_pod_waits_until_running_model_frees_memory() -> None:
    node = server(concurrency=2, vram=10.0, resident=())
    p_a = node.place(ServiceTask("a", 9), now=0.0)  # a busy 0..20 (cold: 10 + 10)
    p_c = node.place(ServiceTask("c", 1), now=0.0)  # 4 + 6 = 10 fits
    p_b = node.place(ServiceTask("b", 1), now=0.0)  # needs 4, a and c busy
    assert p_c.start_s == 0.0
    # c finishes first and is idle then: evicting c frees 6 GiB
    assert p_b.start_s == pytest.approx(p_c.finish_s) and p_b.evicted == ("c",)
    assert p_b.start_s < p_a.finish_s


def test_cannot_run_and_thresholds() -> None:
    node = server()
    assert not node.can_run("huge") and not node.can_run("zzz")
    assert math.isinf(node.earliest_start("huge")[0])
    with pytest.raises(ValueError, match="cannot run"):
        node.what_if(ServiceTask("huge", 1), now=0.0)
    node.place(ServiceTask("a", 4), now=0.0)
    threshold, cold, _ = node.earliest_start("a")
    assert threshold == 5.0 and not cold
    # a pod placed at `now` starts at max(now, threshold)
    assert node.what_if(ServiceTask("a", 1), now=7.0).start_s == 7.0


def test_requested_and_next_change() -> None:
    node = server()
    node.place(ServiceTask("a", 4, cpu=1.0, memory_gib=2.0), now=0.0)
    node.place(ServiceTask("a", 4, cpu=0.5, memory_gib=1.0), now=0.0)
    assert node.requested(1.0) == (1.5, 3.0)
    assert node.next_change(1.0) == 5.0
    assert node.requested(6.0) == (0.5, 1.0)
    assert node.requested(11.0) == (0.0, 0.0) and math.isinf(node.next_change(11.0))


def test_exclusive_free_slot_and_restart() -> None:
    node = server(concurrency=1, resident=("a",))
    assert node.has_free_slot(0.0)
    node.place(ServiceTask("b", 1), now=0.0)
    assert not node.has_free_slot(1.0)
    with pytest.raises(RuntimeError):
        node.restart(1.0)
    assert node.has_free_slot(100.0)
    node.restart(100.0)
    assert node.loaded_models() == ("a",)


def test_preload_that_does_not_fit_is_trimmed() -> None:
    node = server(vram=10.0, resident=("a", "c", "b"))
    assert node.loaded_models() == ("a", "c")


@pytest.mark.parametrize("seed", range(5))
def test_random_placements_respect_slots_memory_and_fifo(seed: int) -> None:
    import random

    rng = random.Random(seed)
    concurrency = rng.choice([1, 2, 3])
    node = server(concurrency=concurrency, vram=12.0, resident=("a",))
    placed: list[tuple[float, float, str]] = []
    now = 0.0
    for _ in range(200):
        now += rng.expovariate(0.5)
        model = rng.choice(["a", "b", "c"])
        thresholds = node.start_thresholds(["a", "b", "c", "huge"])
        assert math.isinf(thresholds["huge"][0])
        for m in "abc":
            assert thresholds[m][:2] == node.earliest_start(m)[:2]
        task = ServiceTask(model, rng.randint(1, 5))
        p = node.place(task, now)
        assert p.start_s == max(now, thresholds[model][0]) and p.cold == thresholds[model][1]
        if placed:
            assert p.start_s >= placed[-1][0]  # FIFO starts
        placed.append((p.start_s, p.finish_s, model))
    # At every start, the pods running fit the slots and their models fit the memory.
    for t, _, _ in placed:
        running = [m for s, f, m in placed if s <= t < f]
        assert len(running) <= concurrency
        assert sum(TIMINGS[m].memory_gib for m in set(running)) <= 12.0


def test_restore_from_a_snapshot_continues_like_the_original() -> None:
    """``loaded_snapshot``, ``ready_snapshot`` + the unfinished pods (cold flags) rebuild a
    server that places identically, LRU stamps included."""
    node = server(concurrency=2, resident=())
    placed = [
        (task, node.place(task, now))
        for task, now in (
            (ServiceTask("b", 3), 0.0),
            (ServiceTask("c", 2), 1.0),
            (ServiceTask("a", 4), 2.0),
        )
    ]
    copy = server(concurrency=2, resident=())
    copy.restore(
        loaded=node.loaded_snapshot(),
        last_start=placed[-1][1].start_s,
        pods=[(t, p.start_s, p.finish_s, p.cold) for t, p in placed],
        ready=dict(node.ready_snapshot()),
    )
    for task, now in ((ServiceTask("b", 1), 3.0), (ServiceTask("a", 1), 50.0)):
        assert copy.place(task, now) == node.place(task, now)
        assert copy.loaded_snapshot() == node.loaded_snapshot()
        assert copy.ready_snapshot() == node.ready_snapshot()
    assert ([(p.start_s, p.finish_s, p.cold) for p in copy.unfinished(3.0)]
            == [(p.start_s, p.finish_s, p.cold) for p in node.unfinished(3.0)])
