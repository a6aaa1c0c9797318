"""The column store's cached arrays against a recomputation from scratch, across events.

A long-lived extender (whose ``NodeColumns`` has seen every event and every earlier
decision) must answer exactly what a snapshot built directly from each node's replayed
server (``ladts_policy.node_snapshot.snapshot_from_servers``, no cache) and a per-node
filter verdict give, after binds, finishes, cordons, deletions, time passing and a wholesale
change of the service-time factors.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from ladts_operator.columns import NOT_SEEN_NOTE, filter_reason
from ladts_operator.extender import ExtenderArgs
from ladts_operator.objects import PodObservation, PodWork, parse_node
from ladts_policy.features import snapshot_fields
from ladts_policy.node_snapshot import NodeFacts, snapshot_from_servers

from .conftest import NOW, node

MODELS = ("sd15", "sdxl")


def reference_popularity(created, now, models):
    """Each model's share of the pods created in the last 600 s, counted here from scratch."""
    recent = [m for t, m in created if now - 600.0 < t <= now]
    if not recent:
        return {m: 1.0 / len(models) for m in models}
    return {m: recent.count(m) / len(recent) for m in models}


def reference_snapshot(state, names, work, now, task, popularity, pending):
    facts = []
    for name in names:
        entry = state.nodes.get(name)
        if entry is None:
            facts.append(NodeFacts(server=None, ready=False))
            continue
        ready = entry.obs.ready and not entry.obs.cordoned
        server = state.replay(name, now=now).server if entry.profile is not None else None
        facts.append(NodeFacts(server=server, ready=ready,
                               requested_fraction=state.requested_fraction(name),
                               loaded=state.resident(name)))
    return snapshot_from_servers(facts, task, now=now, popularity=popularity, pending=pending)


def reference_filter(state, names, model):
    passing, unresolvable = [], {}
    for name in names:
        entry = state.nodes.get(name)
        if entry is None or entry.profile_note == NOT_SEEN_NOTE:
            passing.append(name)
            continue
        reason = filter_reason(entry.obs, entry.profile, entry.profile_note, model)
        if reason is None:
            passing.append(name)
        else:
            unresolvable[name] = reason
    return passing, unresolvable


def aigc_pod(uid: str, model: str, steps: int) -> dict:
    return {"metadata": {"name": uid, "namespace": "aigc", "uid": uid,
                         "annotations": {"ladts.io/model": model, "ladts.io/steps": str(steps)}},
            "spec": {}, "status": {"phase": "Pending"}}


@pytest.mark.parametrize("seed", range(4))
def test_cached_columns_equal_a_recomputation_after_every_event(state, extender, clock, seed):
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(12)]
    for i, name in enumerate(names):
        state.upsert_node(parse_node(node(name, "fast" if i % 3 else "small",
                                          resident="sd15" if i % 2 else "")))
    request_names = [*names, "never-seen"]
    unfinished: list[PodObservation] = []
    created: list[tuple[float, str]] = []  # every AIGC pod the operator saw, by creation
    for step in range(120):
        clock.t += rng.uniform(0.0, 3.0)
        event = rng.random()
        if event < 0.35:
            model = rng.choice(MODELS)
            p = PodObservation(
                uid=f"u{step}", namespace="aigc", name=f"p{step}",
                work=PodWork(model, rng.randint(5, 30)), error=None,
                node=rng.choice([*names, "ghost", None]), bind_s=clock.t, finished=False,
                finish_s=None, cpu=0.5, memory_gib=2.0, bind_exact=True,
                created_s=clock.t - rng.uniform(0.0, 900.0))
            created.append((p.created_s, model))
            state.upsert_pod(p)
            unfinished.append(p)
        elif event < 0.55 and unfinished:
            p = unfinished.pop(rng.randrange(len(unfinished)))
            state.upsert_pod(PodObservation(**{**p.__dict__, "finished": True,
                                               "finish_s": clock.t}))
        elif event < 0.65:
            name = rng.choice(names)
            state.upsert_node(parse_node(node(name, rng.choice(["fast", "small", None]),
                                              ready=rng.random() < 0.8,
                                              cordoned=rng.random() < 0.2)))
        elif event < 0.7:
            state.delete_node(rng.choice(names))
        elif event < 0.75:
            state.corrector.observe(rng.choice(names), "sd15", observed_s=5.0, predicted_s=2.5)
            state.invalidate_all()
        model = rng.choice(MODELS)
        pod_obj = aigc_pod(f"q{step}", model, rng.randint(5, 30))
        args = ExtenderArgs(pod=pod_obj, names=request_names, nodes=None)
        work = PodWork(model, int(pod_obj["metadata"]["annotations"]["ladts.io/steps"]))
        got, task = extender.snapshot(args, work, now=clock.t)
        created.append((clock.t, model))  # the pod asked about, created "now" (no timestamp)
        popularity = reference_popularity(created, clock.t, sorted(extender.known_models))
        pending = 1 + sum(p.node is None for p in unfinished)  # unbound ones and this pod
        want = reference_snapshot(state, request_names, work, clock.t, task, popularity,
                                  pending)
        for field in (*snapshot_fields(), "loaded_NV"):
            np.testing.assert_array_equal(getattr(got, field), getattr(want, field),
                                          err_msg=f"{field} at step {step}")
        assert (got.pending, got.popularity) == (want.pending, want.popularity), step
        answer = extender.filter(args)
        passing, unresolvable = reference_filter(state, request_names, model)
        assert answer["NodeNames"] == passing
        assert answer["FailedAndUnresolvableNodes"] == unresolvable


def test_lookup_follows_new_nodes_after_a_cached_list(state, extender, clock):
    state.upsert_node(parse_node(node("a")))
    names = ["a", "b"]
    assert state.columns.lookup(names).tolist() == [0, -1]
    state.upsert_node(parse_node(node("b")))
    assert state.columns.lookup(names).tolist() == [0, 1]
    args = ExtenderArgs(pod=aigc_pod("x", "sd15", 10), names=names, nodes=None)
    got, _ = extender.snapshot(args, PodWork("sd15", 10), now=NOW)
    assert got.ready_N.tolist() == [True, True]


class GenerationalMetrics:
    """A metrics view that, like the poller, bumps ``generation`` when it stores values."""

    def __init__(self) -> None:
        self.values: dict = {}
        self.generation = 0
        self.reads = 0

    def node_metrics(self, name):
        self.reads += 1
        return self.values.get(name)


def test_metrics_columns_are_reread_only_when_the_poller_stored_values(state, clock):
    from ladts_operator.extender import Extender, NodeMetrics
    from ladts_operator.scoring import HeuristicScorer

    for name in ("a", "b"):
        state.upsert_node(parse_node(node(name)))
    metrics = GenerationalMetrics()
    metrics.values["a"] = NodeMetrics(vram_free_gib=3.0, timestamp_s=NOW - 10)
    h = HeuristicScorer("greedy")
    ex = Extender(state, scorer=h, fallback=h, metrics=metrics, clock=clock)
    args = ExtenderArgs(pod=aigc_pod("x", "sd15", 10), names=["a", "b"], nodes=None)
    snap, _ = ex.snapshot(args, PodWork("sd15", 10), now=NOW)
    assert snap.vram_free_gib_N[0] == 3.0 and snap.metrics_age_s_N.tolist() == [10.0, 0.0]
    reads = metrics.reads
    ex.snapshot(args, PodWork("sd15", 10), now=NOW + 1)
    assert metrics.reads == reads  # same generation: no per-node reads
    metrics.values["a"] = NodeMetrics(vram_free_gib=1.0, timestamp_s=NOW)
    metrics.generation += 1
    snap, _ = ex.snapshot(args, PodWork("sd15", 10), now=NOW + 1)
    assert snap.vram_free_gib_N[0] == 1.0 and snap.metrics_age_s_N[0] == 1.0
    # Past the TTL the node is scored from API state (the replay's bookkeeping).
    snap, _ = ex.snapshot(args, PodWork("sd15", 10), now=NOW + 1000)
    assert snap.metrics_age_s_N[0] == 0.0 and snap.vram_free_gib_N[0] == 20.0


def test_json_fallback_writes_the_same_documents(monkeypatch):
    import json

    from ladts_operator import jsonio

    body = [{"Host": "n1", "Score": np.int64(10)}, {"x": float("inf"), "y": [1.5, None]},
            {"a": np.array([1.0, np.inf, np.nan])}]
    fast = jsonio.dumps(body)
    monkeypatch.setattr(jsonio, "orjson", None)
    assert json.loads(jsonio.dumps(body)) == json.loads(fast)
    assert json.loads(fast)[2] == {"a": [1.0, None, None]}
    assert jsonio.loads(b'{"a": [1, "b"]}') == {"a": [1, "b"]}
