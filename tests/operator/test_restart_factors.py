"""Completions in the trace carry the service delay; a restarted process has the same factors."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from ladts_operator.objects import parse_node, parse_pod
from ladts_operator.runtime import build_runtime
from ladts_operator.settings import ServeSettings
from ladts_operator.state import refine_finish

from .conftest import PROFILES, node, pod

# Recent times: completions older than completed_retention_s (by the wall clock) are dropped.
BASE = int(time.time()) - 120


def iso(second: int) -> str:
    return datetime.fromtimestamp(BASE + second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_pod(state, uid, node_name, model, *, created, scheduled, finished, steps="20"):
    """Create, bind and finish one pod through parsed API objects."""
    p = pod(name=uid, uid=uid, model=model, steps=steps, node_name=node_name, phase="Running")
    p["metadata"]["creationTimestamp"] = iso(created)
    p["status"]["conditions"] = [{"type": "PodScheduled", "status": "True",
                                  "lastTransitionTime": iso(scheduled)}]
    state.upsert_pod(parse_pod(p))
    p["status"]["phase"] = "Succeeded"
    p["status"]["containerStatuses"] = [
        {"state": {"terminated": {"finishedAt": iso(finished)}}}]
    state.upsert_pod(parse_pod(p))


def settings(tmp_path, **kw):
    return ServeSettings(trace_path=str(tmp_path / "trace.jsonl"), **kw)


def history(state):
    for name in ("a", "b"):
        state.upsert_node(parse_node(node(name, resident="sd15,sdxl")))
    run_pod(state, "u1", "a", "sd15", created=0, scheduled=1, finished=6)     # 5 s vs 2.5
    run_pod(state, "u2", "a", "sdxl", created=2, scheduled=3, finished=20)    # 14 s vs 11
    run_pod(state, "u3", "b", "sd15", created=3, scheduled=4, finished=6)     # 2 s vs 2.5
    state.delete_node("b")
    state.upsert_node(parse_node(node("b", resident="sd15")))
    run_pod(state, "u4", "b", "sd15", created=30, scheduled=31, finished=35)  # 4 s vs 2.5


def test_completion_records_the_service_delay_and_service_times(tmp_path):
    rt = build_runtime(settings(tmp_path), profiles=PROFILES)
    history(rt.state)
    rt.trace.flush()
    records = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text().splitlines()]
    done = {r["pod_uid"]: r for r in records if r["kind"] == "completion"}
    assert set(done) == {"u1", "u2", "u3", "u4"}
    # Creation -> finish, from the objects' own timestamps: each finishedAt is a whole
    # second seen long after it, so the finish is the middle of that second (refine_finish).
    assert [done[u]["service_delay_s"] for u in ("u1", "u2", "u3", "u4")] == [
        6.5, 18.5, 3.5, 5.5]
    # u2 queued behind u1 on a: it starts at u1's finish, not at its bind.
    assert done["u2"]["start_s"] == done["u1"]["finish_s"]
    assert done["u2"]["observed_s"] == pytest.approx(14.0)
    assert done["u1"]["predicted_s"] == pytest.approx(0.5 + 20 * 0.1)
    assert done["u2"]["predicted_s"] == pytest.approx(1.0 + 20 * 0.5)
    assert [r["node"] for r in records if r["kind"] == "node_deleted"] == ["b"]


def test_restarted_process_has_the_same_factors(tmp_path):
    first = build_runtime(settings(tmp_path), profiles=PROFILES)
    history(first.state)
    before = first.state.corrector.as_dict()
    assert before["a"]["sd15"]["factor"] == pytest.approx(5.5 / 2.5)  # bind 1 -> finish 6.5
    assert before["b"]["*"]["observations"] == 1  # what preceded the deletion is forgotten
    first.trace.close()
    # A crash may leave half a line behind: it is skipped, the rest still counts.
    with open(tmp_path / "trace.jsonl", "a") as f:
        f.write('{"kind": "completion", "node": "a", "mod')
    second = build_runtime(settings(tmp_path), profiles=PROFILES)
    assert second.state.corrector.as_dict() == before
    assert second.state.corrector.factor("a", "sdxl") == first.state.corrector.factor("a", "sdxl")


def test_factors_survive_rotation_into_backups(tmp_path):
    first = build_runtime(settings(tmp_path, trace_max_bytes=600, trace_backups=20),
                          profiles=PROFILES)
    history(first.state)
    first.trace.flush()
    assert (tmp_path / "trace.jsonl.1").exists()
    second = build_runtime(settings(tmp_path, trace_max_bytes=600, trace_backups=20),
                           profiles=PROFILES)
    assert second.state.corrector.as_dict() == first.state.corrector.as_dict()


def test_without_a_trace_the_factors_restart_at_one(tmp_path):
    first = build_runtime(ServeSettings(), profiles=PROFILES)
    history(first.state)
    assert first.state.corrector.factor("a", "sd15") != 1.0
    second = build_runtime(ServeSettings(), profiles=PROFILES)
    assert second.state.corrector.factor("a", "sd15") == 1.0


def _finished(finished_at: str):
    p = pod(uid="f", node_name="a", phase="Succeeded")
    p["status"]["containerStatuses"] = [{"state": {"terminated": {"finishedAt": finished_at}}}]
    return parse_pod(p)


def test_a_whole_second_finish_is_refined_by_when_the_watch_saw_it():
    whole = _finished("2026-01-01T00:00:05Z")
    f = whole.finish_s
    assert whole.finish_whole_second and f is not None
    assert refine_finish(whole, f + 0.3) == pytest.approx(f + 0.3)  # inside its second
    assert refine_finish(whole, f + 40.0) == pytest.approx(f + 0.5)  # a relist, long after
    assert refine_finish(whole, f - 2.0) == f  # this clock behind the apiserver's
    exact = _finished("2026-01-01T00:00:05.250000Z")
    assert not exact.finish_whole_second
    assert refine_finish(exact, exact.finish_s + 0.9) == exact.finish_s


def test_the_corrector_learns_from_the_refined_finish():
    # Bound at an exact time (our decision), finished inside second 6 and seen 0.4 s into it:
    # the run took 4.4 s, not the 4.0 s the truncated finishedAt says.
    now = [0.0]
    rt = build_runtime(ServeSettings(), profiles=PROFILES)
    rt.state.clock = lambda: now[0]
    rt.state.upsert_node(parse_node(node("a", resident="sd15")))
    p = pod(uid="r", node_name="a", phase="Running")
    p["metadata"]["annotations"]["ladts.io/decision"] = json.dumps(
        {"node": "a", "time": BASE + 2.0})
    rt.state.upsert_pod(parse_pod(p))
    p["status"]["phase"] = "Succeeded"
    p["status"]["containerStatuses"] = [{"state": {"terminated": {"finishedAt": iso(6)}}}]
    now[0] = BASE + 6.4
    rt.state.upsert_pod(parse_pod(p))
    assert rt.state.corrector.factor("a", "sd15") == pytest.approx(4.4 / (0.5 + 20 * 0.1))
