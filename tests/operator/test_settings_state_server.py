"""Settings precedence, state rebuild after restart, the HTTP server and the trace log."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ladts_operator.commands.serve import add_arguments
from ladts_operator.objects import parse_node, parse_pod
from ladts_operator.runtime import OfflineBinder, build_runtime
from ladts_operator.server import build_app
from ladts_operator.settings import ServeSettings, SettingsError, field_docs, load_settings
from ladts_operator.state import ClusterState

from .conftest import NOW, PROFILES, node, pod


def parse(argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_every_setting_has_a_flag_with_its_docstring():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    help_text = parser.format_help()
    docs = field_docs()
    for f in fields(ServeSettings):
        assert docs.get(f.name)
        assert "--" + f.name.replace("_", "-") in help_text
        assert "LADTS_" + f.name.upper() in help_text


def test_precedence_flag_over_env_over_file(tmp_path):
    cfg = tmp_path / "s.yaml"
    cfg.write_text("port: 9001\nheuristic: spread\nmetrics_ttl_s: 30\n")
    env = {"LADTS_PORT": "9002", "LADTS_REQUIRE_FRESH_METRICS": "true"}
    s = load_settings(parse(["--config", str(cfg), "--port", "9003"]), env)
    assert (s.port, s.heuristic, s.metrics_ttl_s, s.require_fresh_metrics) == (
        9003, "spread", 30.0, True)
    assert load_settings(parse(["--config", str(cfg)]), env).port == 9002
    assert load_settings(parse(["--config", str(cfg)]), {}).port == 9001


def test_bad_settings_name_the_setting(tmp_path):
    with pytest.raises(SettingsError, match=r"LADTS_PORT.*port must be int"):
        load_settings(parse([]), {"LADTS_PORT": "eighty"})
    cfg = tmp_path / "s.yaml"
    cfg.write_text("prot: 1\n")
    with pytest.raises(SettingsError, match="unknown settings"):
        load_settings(parse(["--config", str(cfg)]), {})
    with pytest.raises(SettingsError, match=r"metrics_ttl_s must be > 0"):
        ServeSettings(metrics_ttl_s=0)


def objects():
    nodes = [node("a", resident="sdxl"), node("b")]
    pods = []
    for i, (n, phase) in enumerate([("a", "Running"), ("a", "Running"), ("b", "Succeeded"),
                                    ("b", "Running")]):
        p = pod(name=f"p{i}", uid=f"u{i}", node_name=n, phase=phase)
        p["status"]["conditions"] = [{"type": "PodScheduled", "status": "True",
                                      "lastTransitionTime": f"2026-01-01T00:00:0{i}Z"}]
        if phase == "Succeeded":
            p["status"]["containerStatuses"] = [
                {"state": {"terminated": {"finishedAt": "2026-01-01T00:00:05Z"}}}]
        pods.append(p)
    return nodes, pods


def view(state: ClusterState):
    return {n: ([p.uid for p in state.queue(n)], state.resident(n),
                round(state.replay(n, now=NOW).server.busy_until(), 6))
            for n in sorted(state.nodes)}


def test_restart_rebuilds_the_same_state_in_any_event_order():
    nodes, pods = objects()
    first = ClusterState(PROFILES, clock=lambda: NOW)
    for obj in nodes:
        first.upsert_node(parse_node(obj))
    for obj in pods:
        first.upsert_pod(parse_pod(obj))
    second = ClusterState(PROFILES, clock=lambda: NOW)
    for obj in reversed(pods):
        second.upsert_pod(parse_pod(obj))
    for obj in reversed(nodes):
        second.upsert_node(parse_node(obj))
    assert view(first) == view(second)
    assert view(first)["a"][0] == ["u0", "u1"]
    assert view(first)["b"][0] == ["u3"] and "sd15" in view(first)["b"][1]


def test_completion_teaches_the_corrector():
    state = ClusterState(PROFILES, clock=lambda: NOW)
    state.upsert_node(parse_node(node("a", resident="sd15")))
    p = pod(uid="u", node_name="a", phase="Running")
    p["status"]["conditions"] = [{"type": "PodScheduled", "status": "True",
                                  "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    state.upsert_pod(parse_pod(p))
    predicted = 0.5 + 20 * 0.1  # warm sd15 on "fast"
    p["status"]["phase"] = "Succeeded"
    p["status"]["containerStatuses"] = [
        {"state": {"terminated": {"finishedAt": "2026-01-01T00:00:05Z"}}}]
    state.upsert_pod(parse_pod(p))
    assert state.corrector.factor("a", "sd15") == pytest.approx(5.0 / predicted)
    assert state.queue("a") == []


@pytest.mark.asyncio
async def test_http_endpoints_and_trace(tmp_path):
    trace = tmp_path / "trace.jsonl"
    rt = build_runtime(ServeSettings(policy="none", trace_path=str(trace),
                                     max_body_bytes=4096), profiles=PROFILES)
    for n in ("a", "b", "a"):  # the repeated node writes no second `node` record
        rt.state.upsert_node(parse_node(node(n)))
    app = build_app(rt.extender, OfflineBinder(rt.state), rt.ready)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/readyz")
        assert resp.status == 503
        rt.state.synced = True
        resp = await client.get("/readyz")
        assert resp.status == 200 and "serving heuristic residency-greedy" in await resp.text()
        body = {"Pod": pod(uid="u-http"), "NodeNames": ["a", "b"]}
        resp = await client.post("/filter", json=body)
        assert resp.status == 200 and (await resp.json())["NodeNames"] == ["a", "b"]
        resp = await client.post("/prioritize", json=body)
        scores = await resp.json()
        assert sorted(h["Score"] for h in scores) == [9, 10]
        chosen = next(h["Host"] for h in scores if h["Score"] == 10)
        resp = await client.post("/bind", json={"PodName": "p", "PodNamespace": "aigc",
                                                "PodUID": "u-http", "Node": chosen})
        assert resp.status == 200 and await resp.json() == {"Error": ""}
        resp = await client.post("/filter", data=b"x" * 5000)
        assert resp.status == 413
        resp = await client.post("/bind", data=b"{}")
        assert resp.status == 400
        metrics = await (await client.get("/metrics")).text()
        scorer = "heuristic:residency-greedy"  # the default heuristic (the serving fallback)
        expected = f'ladts_decisions_total{{node="{chosen}",scorer="{scorer}"}} 1.0'
        assert expected in metrics
        assert 'ladts_extender_request_duration_seconds_count{code="4xx",verb="filter"} 1.0' \
            in metrics
        assert (f'ladts_policy_info{{scorer="{scorer}",source="heuristic",'
                f'version="residency-greedy"}} 1.0' in metrics)
        debug = await (await client.get("/debug/state")).json()
        assert debug["decisions"][-1]["chosen"] == chosen
        assert debug["nodes"][chosen]["queue"] == ["u-http"]
    rt.trace.flush()  # records are written by the trace's thread
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [r["kind"] for r in records] == ["node", "node", "decision", "bind"]
    assert [(r["node"], r["profile"]) for r in records[:2]] == [("a", "fast"), ("b", "fast")]
    assert records[2]["pod_uid"] == records[3]["pod_uid"] == "u-http"
    assert len(records[2]["features"]["node_rows"]) == 2


def test_trace_rotation_bounds_size(tmp_path):
    from ladts_operator.trace import TraceLog

    log = TraceLog(tmp_path / "t.jsonl", max_bytes=1000, backups=2)
    for i in range(200):
        log.write({"kind": "x", "i": i, "pad": "y" * 50})
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["t.jsonl", "t.jsonl.1", "t.jsonl.2"]
    assert all((tmp_path / f).stat().st_size <= 1100 for f in files)
    # The newest records are all there, in order, after close().
    last = [json.loads(line)["i"] for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert last == list(range(200 - len(last), 200))


def test_trace_writes_never_block_a_full_queue_drops_and_counts(tmp_path):
    import threading

    from ladts_operator.trace import TraceLog

    log = TraceLog(tmp_path / "t.jsonl", max_bytes=10**6, backups=1, max_pending=2)
    gate = threading.Event()
    log.write(lambda: (gate.wait(5), {"kind": "slow"})[1])  # holds the writer thread
    for i in range(10):
        log.write({"kind": "x", "i": i})
    assert log.dropped >= 7
    gate.set()
    log.flush()
    log.write(lambda: {"kind": "bad", "x": object()})  # not JSON: counted, writer survives
    log.write({"kind": "after"})
    log.close()
    kinds = [json.loads(line)["kind"] for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert kinds[0] == "slow" and kinds[-1] == "after" and log.errors == 1
