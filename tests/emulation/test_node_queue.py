"""A node's model-server FIFO with removals and rebuilds, against fresh NodeServer replays."""

from __future__ import annotations

import random

import pytest
from e2e.emulation.node_queue import NodeQueue, QueueEntry

from ladts_policy.sim.config.cluster_config import ModelTiming
from ladts_policy.sim.dynamics.node_service import NodeServer, ServiceTask

TIMINGS = {
    "a": ModelTiming(s_per_step=1.0, overhead_s=1.0, memory_gib=4.0, load_s=10.0),
    "b": ModelTiming(s_per_step=2.0, overhead_s=0.0, memory_gib=4.0, load_s=20.0),
    "c": ModelTiming(s_per_step=1.0, overhead_s=0.0, memory_gib=6.0, load_s=5.0),
}


def factory(concurrency: int = 1) -> NodeServer:
    return NodeServer(concurrency=concurrency, vram_gib=10.0, timings=TIMINGS, resident=("a",))


def test_place_matches_a_plain_node_server() -> None:
    """Without removals the queue is exactly the simulator's NodeServer."""
    q, ref = NodeQueue(factory), factory()
    for i, (model, steps, now) in enumerate([("a", 4, 0.0), ("b", 1, 1.0), ("a", 2, 2.0)]):
        entry = q.place(f"p{i}", i + 1, ServiceTask(model, steps), now)
        placed = ref.place(ServiceTask(model, steps), now)
        assert (entry.start_s, entry.finish_s, entry.cold) == (
            placed.start_s,
            placed.finish_s,
            placed.cold,
        )


def test_removing_a_waiting_pod_moves_the_rest_up() -> None:
    q = NodeQueue(factory)
    q.place("p1", 1, ServiceTask("a", 4), 0.0)  # 0..5
    q.place("p2", 2, ServiceTask("a", 4), 0.0)  # 5..10
    q.place("p3", 3, ServiceTask("a", 1), 0.0)  # 10..12
    changed = q.remove("p2", 1.0)
    assert [e.key for e in changed] == ["p3"]
    assert (changed[0].start_s, changed[0].finish_s) == (5.0, 7.0)
    assert [e.key for e in q.entries()] == ["p1", "p3"]


def test_removing_the_running_pod_frees_its_slot_at_removal() -> None:
    q = NodeQueue(factory)
    q.place("p1", 1, ServiceTask("a", 9), 0.0)  # 0..10
    q.place("p2", 2, ServiceTask("a", 1), 0.0)  # 10..12
    changed = q.remove("p1", 3.0)
    assert [(e.key, e.start_s, e.finish_s) for e in changed] == [("p2", 3.0, 5.0)]


def test_removal_keeps_a_model_loaded_by_the_removed_pod() -> None:
    """A pod that started (cold) loaded its model; a later pod of that model stays warm."""
    q = NodeQueue(factory)
    q.place("p1", 1, ServiceTask("b", 5), 0.0)  # cold: 0..30, loads b
    q.place("p2", 2, ServiceTask("b", 1), 0.0)  # warm: 30..32
    (moved,) = q.remove("p1", 25.0)
    assert (moved.start_s, moved.cold) == (25.0, False)


def test_removing_unknown_or_finished_pods_changes_nothing() -> None:
    q = NodeQueue(factory)
    q.place("p1", 1, ServiceTask("a", 1), 0.0)  # 0..2
    assert q.remove("nope", 1.0) == []
    assert q.remove("p1", 5.0) == []


def test_remove_with_nothing_removed_is_a_no_op_on_random_traces() -> None:
    """Restoring + re-placing the waiting pods reproduces their times (the module's claim)."""
    rng = random.Random(0)
    for trial in range(50):
        conc = rng.choice((1, 2))
        q = NodeQueue(lambda c=conc: factory(c))
        now = 0.0
        for i in range(12):
            now += rng.expovariate(0.5)
            q.place(f"p{i}", i + 1, ServiceTask(rng.choice("abc"), rng.randint(1, 5)), now)
        before = {e.key: (e.start_s, e.finish_s, e.cold) for e in q.entries()}
        q.place("ghost", 99, ServiceTask("a", 1), now)
        changed = q.remove("ghost", now)  # the newest pod leaves: nobody was behind it
        assert changed == [], trial
        assert {e.key: (e.start_s, e.finish_s, e.cold) for e in q.entries()} == before


def test_rebuild_from_persisted_entries_continues_identically() -> None:
    """A queue rebuilt from its entries places the next pods exactly as the original."""
    rng = random.Random(1)
    for trial in range(30):
        conc = rng.choice((1, 2))
        original = NodeQueue(lambda c=conc: factory(c))
        persisted: list[QueueEntry] = []
        now = 0.0
        for i in range(10):
            now += rng.expovariate(0.3)
            task = ServiceTask(rng.choice("abc"), rng.randint(1, 5))
            persisted.append(original.place(f"p{i}", i + 1, task, now))
        now += rng.uniform(0, 20)
        rebuilt = NodeQueue(lambda c=conc: factory(c))
        rebuilt.rebuild(persisted, now)
        for j in range(5):
            now += rng.expovariate(0.3)
            task = ServiceTask(rng.choice("abc"), rng.randint(1, 5))
            a = original.place(f"n{j}", 100 + j, task, now)
            b = rebuilt.place(f"n{j}", 100 + j, task, now)
            assert (a.start_s, a.finish_s, a.cold, a.loaded, a.ready) == (
                b.start_s,
                b.finish_s,
                b.cold,
                b.loaded,
                b.ready,
            ), trial


def test_rebuild_through_annotations_keeps_stamps_cold_flags_and_load_ends() -> None:
    """A model still loading at the restart: a warm pod of it waits for the load to end.

    The entries go through the pod annotations (what a restarted controller reads), and the
    rebuilt queue places the next pods exactly as the original (start, finish, cold, stamps).
    """
    from e2e.emulation import annotations as ann

    original = NodeQueue(lambda: factory(2))
    placed = [original.place("p1", 1, ServiceTask("b", 1), 0.0),  # cold: b loads 0..20
              original.place("p2", 2, ServiceTask("a", 1), 0.5)]  # a is preloaded: warm
    assert placed[0].cold and dict(placed[0].ready)["b"] == 20.0
    read: list[QueueEntry] = []
    for e in placed:
        note = ann.PlacementNote(e.seq, "n1", e.bind_s, e.start_s, e.finish_s, e.cold, e.loaded,
                                 e.ready)
        back = ann.parse_note(note.annotations(0.0, 1.0))
        assert back == note
        read.append(QueueEntry(e.key, back.seq, e.task, back.bind_s, back.start_s, back.finish_s,
                               back.cold, back.loaded, back.ready))
    rebuilt = NodeQueue(lambda: factory(2))
    rebuilt.rebuild(read, 1.0)
    a = original.place("p3", 3, ServiceTask("b", 1), 1.0)
    b = rebuilt.place("p3", 3, ServiceTask("b", 1), 1.0)
    assert not a.cold and a.start_s >= 20.0  # waits for the load p1 started
    assert (a.start_s, a.finish_s, a.cold, a.loaded, a.ready) == (
        b.start_s, b.finish_s, b.cold, b.loaded, b.ready)


def test_place_rejects_models_the_node_cannot_run_and_out_of_order_seq() -> None:
    q = NodeQueue(factory)
    with pytest.raises(ValueError):
        q.place("x", 1, ServiceTask("unknown", 1), 0.0)
    q.place("p1", 5, ServiceTask("a", 1), 0.0)
    with pytest.raises(ValueError):
        q.place("p2", 4, ServiceTask("a", 1), 0.0)
