"""Golden payloads (shapes of upstream extender/v1/types_test.go) and extender semantics."""

from __future__ import annotations

import json

import pytest

from ladts_operator.objects import PodObservation, PodWork, parse_node
from ladts_operator.scoring import map_scores

from .conftest import NOW, node, pod


def load(state, *nodes):
    for n in nodes:
        state.upsert_node(parse_node(n))


def call(extender, verb, body):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = extender.handle(verb, raw)
    return reply.status, reply.body


def test_upstream_golden_extender_args_with_full_nodes_and_names(extender, state):
    # ExtenderArgs exactly as types_test.go pins it (Nodes and NodeNames both set).
    golden = (
        '{"Pod":{"metadata":{"name":"podname","creationTimestamp":null},"spec":{"containers":'
        'null},"status":{}},"Nodes":{"metadata":{},"items":[{"metadata":{"name":"nodename",'
        '"creationTimestamp":null},"spec":{},"status":{"daemonEndpoints":{"kubeletEndpoint":'
        '{"Port":0}},"nodeInfo":{"machineID":"","systemUUID":"","bootID":"","kernelVersion":'
        '"","osImage":"","containerRuntimeVersion":"","kubeletVersion":"","kubeProxyVersion":'
        '"","operatingSystem":"","architecture":""}}}]},"NodeNames":["node1"]}'
    )
    status, body = call(extender, "filter", golden.encode())
    assert status == 200
    # A non-AIGC pod passes untouched, answered in the request's (full Nodes) form.
    assert body["NodeNames"] is None
    assert [n["metadata"]["name"] for n in body["Nodes"]["items"]] == ["nodename"]
    assert body["FailedNodes"] == {} and body["Error"] == ""
    # Lower-cased, as Go's case-insensitive decoding accepts it.
    status, lower = call(extender, "filter", golden.lower().encode())
    assert status == 200 and lower["Nodes"]["items"][0]["metadata"]["name"] == "nodename"
    status, prio = call(extender, "prioritize", golden.encode())
    assert status == 200 and prio == [{"Host": "nodename", "Score": 0}]


def test_filter_result_keys_are_pascal_case_and_complete(extender, state):
    load(state, node("a"), node("b"))
    status, body = call(extender, "filter", {"Pod": pod(), "NodeNames": ["a", "b"]})
    assert status == 200
    assert list(body) == ["Nodes", "NodeNames", "FailedNodes", "FailedAndUnresolvableNodes",
                          "Error"]
    assert body["NodeNames"] == ["a", "b"] and body["Nodes"] is None
    json.dumps(body)  # serialisable


def test_filter_reasons(extender, state):
    load(state, node("ok"), node("down", ready=False), node("cordoned", cordoned=True),
         node("nogpu", profile=None), node("small", "small"),
         node("byproduct", None, product="GPU-FAST"), node("badproduct", None, product="X"))
    names = ["ok", "down", "cordoned", "nogpu", "small", "byproduct", "badproduct", "unseen"]
    status, body = call(extender, "filter", {"Pod": pod(model="sdxl"), "NodeNames": names})
    assert status == 200
    assert body["NodeNames"] == ["ok", "byproduct", "unseen"]
    bad = body["FailedAndUnresolvableNodes"]
    assert bad["down"] == "node is not Ready"
    assert "cordoned" in bad["cordoned"]
    assert "no GPU profile" in bad["nogpu"]
    assert bad["small"] == "model sdxl needs 10 GiB GPU memory, profile small has 6 GiB usable"
    assert "matches no GPU profile" in bad["badproduct"]


@pytest.mark.parametrize(("annotations", "needle"), [
    ({"model": "sd15", "steps": "zero"}, "ladts.io/steps='zero' is not a positive integer"),
    ({"model": "sd15", "steps": "-3"}, "is not a positive integer"),
    ({"model": "sd15", "steps": None}, "ladts.io/steps is missing"),
    ({"model": "nosuch", "steps": "4"}, "ladts.io/model='nosuch' names no model"),
    ({"model": "", "steps": "4"}, "ladts.io/model is empty"),
])
def test_bad_annotations_fail_every_node_with_a_reason_and_an_event(
        extender, state, annotations, needle):
    events = []

    class Sink:
        def emit(self, ref, reason, message, warning):
            events.append((ref["name"], reason, message, warning))

    extender.events = Sink()
    load(state, node("a"), node("b"))
    status, body = call(extender, "filter", {"Pod": pod(**annotations), "NodeNames": ["a", "b"]})
    assert status == 200 and body["NodeNames"] == []
    assert set(body["FailedAndUnresolvableNodes"]) == {"a", "b"}
    assert needle in body["FailedAndUnresolvableNodes"]["a"]
    assert len(events) == 1 and events[0][1] == "LadtsBadAnnotation" and needle in events[0][2]
    status, prio = call(extender, "prioritize", {"Pod": pod(**annotations), "NodeNames": ["a"]})
    assert status == 200 and prio == [{"Host": "a", "Score": 0}]
    assert len(events) == 1  # the same problem on the same pod is reported once


@pytest.mark.parametrize(("body", "status"), [
    (b"{not json", 400),
    (b"[]", 400),
    (b'{"Pod": 3, "NodeNames": []}', 400),
    (b'{"Pod": {"metadata": 1}, "NodeNames": []}', 400),
    (b'{"Pod": {"metadata": {}}, "NodeNames": [1, 2]}', 400),
    (b'{"Pod": {"metadata": {}}, "Nodes": {"items": 5}}', 400),
    (b'{"Pod": {"metadata": {}}, "Nodes": {"items": [{"metadata": {}}]}}', 400),
    (b'{"Pod": {"metadata": {}}}', 400),
    (b"\xff\xfe", 400),
])
def test_malformed_bodies_get_4xx_with_a_message(extender, body, status):
    for verb in ("filter", "prioritize"):
        got, answer = call(extender, verb, body)
        assert got == status and answer["Error"]


def test_oversized_body_is_413(extender):
    extender.max_body_bytes = 100
    got, answer = call(extender, "filter", b" " * 101)
    assert got == 413 and "exceeds" in answer["Error"]


def test_prioritize_prefers_the_idle_fast_node_and_maps_scores(extender, state):
    load(state, node("fast-busy"), node("fast-idle"), node("slow", "small"))
    for i in range(3):
        state.upsert_pod(PodObservation(f"q{i}", "aigc", f"q{i}", PodWork("sd15", 50), None,
                                        "fast-busy", NOW - 1, False, None, 0.5, 2.0))
    status, body = call(extender, "prioritize",
                        {"Pod": pod(), "NodeNames": ["fast-busy", "fast-idle", "slow"]})
    assert status == 200
    scores = {h["Host"]: h["Score"] for h in body}
    assert scores["fast-idle"] == 10
    assert all(0 <= s <= 10 for s in scores.values())
    assert scores["fast-busy"] < 10 and scores["slow"] < 10


def test_map_scores_argmax_gets_ten_ties_go_first_masked_zero():
    assert map_scores([0.2, 0.5, 0.3], [True, True, True]) == [4, 10, 6]
    assert map_scores([0.5, 0.5], [True, True]) == [10, 9]
    assert map_scores([0.9, 0.1], [False, True]) == [0, 10]
    assert map_scores([0.1, 0.2], [False, False]) == [0, 0]


def test_bind_records_the_pod_in_its_node_queue(extender, state):
    load(state, node("a"), node("b"))
    p = pod(uid="u-bind")
    call(extender, "prioritize", {"Pod": p, "NodeNames": ["a", "b"]})
    from ladts_operator.extender import BindArgs

    args = BindArgs("p", "aigc", "u-bind", "a")
    decision = json.loads(extender.decision_annotation(args, now=NOW))
    assert decision["node"] == "a" and decision["scorer"] == "heuristic:greedy"
    assert set(decision["scores"]) == {"a", "b"}
    extender.bound(args, extender.pod_for_bind("u-bind"), now=NOW)
    assert [q.uid for q in state.queue("a")] == ["u-bind"]
