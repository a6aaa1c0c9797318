"""Property tests: any body, well-formed or not, gets an answer below 500 and the right shape."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ladts_operator.objects import parse_node

from .conftest import node

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=4),
    max_leaves=20,
)

annotation = st.sampled_from(["sd15", "sdxl", "", "nosuch", "SD15"]) | st.text(max_size=5)
steps = st.sampled_from(["1", "20", "0", "-1", "1e3", " 7 ", "x"]) | st.text(max_size=4)
names = st.lists(st.sampled_from(["a", "b", "c", "unseen"]) | st.text(max_size=4), max_size=6)


@st.composite
def extender_args(draw):
    ann = draw(st.dictionaries(st.sampled_from(["ladts.io/model", "ladts.io/steps",
                                                "ladts.io/input-mbit", "other"]),
                               annotation | steps, max_size=4))
    pod = {"metadata": {"name": "p", "uid": draw(st.text(max_size=4)), "annotations": ann}}
    body = {draw(st.sampled_from(["Pod", "pod", "POD"])): pod}
    if draw(st.booleans()):
        body["NodeNames"] = draw(names)
    else:
        body["Nodes"] = {"items": [node(n) for n in draw(names) if n]}
    return body


def setup(extender, state):
    for n in ("a", "b"):
        state.upsert_node(parse_node(node(n)))
    state.upsert_node(parse_node(node("c", "small")))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_bodies_never_5xx(extender, state, raw):
    setup(extender, state)
    for verb in ("filter", "prioritize"):
        reply = extender.handle(verb, raw)
        assert 200 <= reply.status < 500
        json.dumps(reply.body)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=extender_args())
def test_well_formed_requests_get_complete_answers(extender, state, body):
    setup(extender, state)
    reply = extender.handle("filter", json.dumps(body).encode())
    assert reply.status == 200, reply.body
    result = reply.body
    given_names = (list(dict.fromkeys(body["NodeNames"])) if "NodeNames" in body
                   else list(dict.fromkeys(n["metadata"]["name"] for n in body["Nodes"]["items"])))
    passed = result["NodeNames"] if result["NodeNames"] is not None else [
        n["metadata"]["name"] for n in result["Nodes"]["items"]]
    failed = set(result["FailedNodes"]) | set(result["FailedAndUnresolvableNodes"])
    # Every node is accounted for exactly once, only names from the request come back.
    assert sorted(passed + sorted(failed)) == sorted(given_names)
    reply = extender.handle("prioritize", json.dumps(body).encode())
    assert reply.status == 200
    assert [h["Host"] for h in reply.body] == given_names
    scores = [h["Score"] for h in reply.body]
    assert all(isinstance(s, int) and 0 <= s <= 10 for s in scores)
    assert scores.count(10) <= 1
