"""The serving process's garbage-collector policy (ladts_operator/gc_policy.py) and what a
kept decision holds: no per-node Python list for the collector to walk again and again."""

from __future__ import annotations

import gc
import json
import weakref
from collections.abc import Iterator

import numpy as np
import pytest

from ladts_operator.extender import Extender
from ladts_operator.gc_policy import GcKeeper, freeze
from ladts_operator.objects import parse_node
from ladts_operator.settings import ServeSettings, SettingsError
from ladts_operator.state import ClusterState
from ladts_operator.telemetry import Telemetry

from .conftest import node, pod


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def _samples(telemetry: Telemetry, generation: str) -> float:
    for metric in telemetry.gc_pause.collect():
        for sample in metric.samples:
            if (sample.name.endswith("_count")
                    and sample.labels.get("generation") == generation):
                return float(sample.value)
    return 0.0


def test_freeze_moves_the_live_heap_out_of_the_collected_generations(unfrozen):
    kept = [object() for _ in range(10)]  # a container alive at the freeze
    frozen = freeze()
    assert frozen == gc.get_freeze_count() > 0
    tracked = {id(o) for g in range(3) for o in gc.get_objects(generation=g)}
    assert id(kept) not in tracked
    fresh = [object()]
    assert id(fresh) in {id(o) for o in gc.get_objects(generation=0)}


def test_keeper_times_every_pass_by_generation():
    telemetry = Telemetry()
    keeper = GcKeeper(telemetry, interval_s=0)
    keeper.install()
    keeper.install()  # idempotent: one callback
    try:
        gc.collect(1)
        assert _samples(telemetry, "1") == 1.0
    finally:
        keeper.uninstall()
    gc.collect(1)
    assert _samples(telemetry, "1") == 1.0


def test_negative_freeze_interval_is_refused():
    with pytest.raises(SettingsError, match="gc_freeze_s"):
        ServeSettings(gc_freeze_s=-1.0)
    assert ServeSettings(gc_freeze_s=0.0).gc_freeze_s == 0.0


def _lists(obj: object, depth: int, seen: set[int]) -> Iterator[list]:
    """Every list reachable from ``obj`` within ``depth`` references (modules excluded)."""
    if id(obj) in seen or depth < 0:
        return
    seen.add(id(obj))
    if isinstance(obj, list):
        yield obj
    for ref in gc.get_referents(obj):
        if not isinstance(ref, type) and type(ref).__name__ != "module":
            yield from _lists(ref, depth - 1, seen)


def test_kept_decisions_hold_no_per_node_list(state: ClusterState, extender: Extender):
    names = [f"n{i}" for i in range(200)]
    for name in names:
        state.upsert_node(parse_node(node(name)))
    for uid in ("u1", "u2"):
        body = json.dumps({"Pod": pod(uid=uid), "NodeNames": names}).encode()
        reply = extender.handle("prioritize", body)
        assert reply.status == 200 and len(reply.body) == 200
    first, second = extender.recent["u1"], extender.recent["u2"]
    assert first.nodes is second.nodes and first.nodes == tuple(names)  # one shared tuple
    assert isinstance(second.scores, np.ndarray) and second.scores.dtype == np.int64
    assert sorted(second.scores.tolist()) == sorted(h["Score"] for h in reply.body)
    assert isinstance(second.scored.preference_N, np.ndarray)
    assert isinstance(second.features["mask"], np.ndarray)
    long_lists = [x for x in _lists(second, 6, set()) if len(x) >= len(names)]
    assert long_lists == []
    # What is written from it is unchanged in form: lists of names, ints and booleans.
    entry = extender.debug_state(1)["decisions"][0]
    from ladts_operator import jsonio

    decoded = json.loads(jsonio.dumps(entry))
    assert decoded["nodes"] == names and len(decoded["scores"]) == 200
    assert set(decoded["features"]["mask"]) <= {True, False}


def test_periodic_freezes_collect_the_frozen_heap_every_full_every(unfrozen, monkeypatch):
    from ladts_operator import gc_policy

    calls: list[bool] = []
    monkeypatch.setattr(gc_policy, "freeze", lambda *, full: calls.append(full) or 0)
    keeper = GcKeeper(Telemetry(), interval_s=0)
    for _ in range(2 * gc_policy.FULL_EVERY + 1):
        keeper.freeze()
    fulls = [i for i, full in enumerate(calls) if full]
    assert fulls == [0, gc_policy.FULL_EVERY, 2 * gc_policy.FULL_EVERY]


def test_unfrozen_only_freeze_keeps_what_was_frozen(unfrozen):
    class Node:
        pass

    cycle = Node()
    cycle.self = cycle  # unreachable once dropped: only a collection frees it
    alive = weakref.ref(cycle)
    freeze()
    del cycle
    freeze(full=False)
    assert alive() is not None, "an unfrozen-only freeze collected a frozen cycle"
    freeze(full=True)
    assert alive() is None, "a full freeze left a dead frozen cycle alive"
