"""The Prometheus poller against a real Prometheus scraping fake exporters.

Covers the node mappings of docs/serving.md: dcgm-exporter's ``Hostname`` and ``hostname``
(a two-GPU node among them), a node-exporter served per node whose ``instance`` host is the
node's InternalIP, a kube-prometheus style job that relabels ``instance`` to the node
name, and a model server's residency series (``residency_query``). Then Prometheus is
stopped mid-test: the poll fails, the last good values stay with their own timestamps, and
once they are older than the TTL the extender scores from API state, counts the fallback
and keeps answering.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.conftest import require_binaries
from e2e.controlplane.binaries import Binaries
from e2e.controlplane.components import start_prometheus
from e2e.controlplane.processes import ProcessManager
from ladts_operator.extender import Extender
from ladts_operator.objects import parse_node
from ladts_operator.prom_poller import PrometheusPoller
from ladts_operator.scoring import HeuristicScorer
from ladts_operator.settings import ServeSettings
from ladts_operator.state import ClusterState
from ladts_operator.telemetry import Telemetry
from ladts_policy.features import NODE_FEATURE_NAMES
from ladts_policy.sim.config.cluster_schema import builtin_gpu_profiles

GIB = 1024.0**3


class Exporter:
    """Serves a fixed exposition text on ``host``."""

    def __init__(self, host: str, text: str) -> None:
        body = text.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.target = f"{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def dcgm(host_label: str, node: str, free_mib: list[float]) -> str:
    lines = []
    for i, free in enumerate(free_mib):
        labels = f'gpu="{i}",UUID="GPU-{node}-{i}",{host_label}="{node}"'
        lines += [f"DCGM_FI_DEV_FB_FREE{{{labels}}} {free}",
                  f"DCGM_FI_DEV_FB_USED{{{labels}}} 100", f"DCGM_FI_DEV_GPU_UTIL{{{labels}}} 5"]
    return "\n".join(lines) + "\n"


def node_exporter(available_gib: float) -> str:
    return (f"node_memory_MemAvailable_bytes {available_gib * GIB}\n"
            f"node_memory_MemTotal_bytes {64 * GIB}\n")


def node_obj(name: str, ip: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"ladts.io/gpu-profile": "agx-orin-64"}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": ip}]}}


@pytest.fixture
def exporters() -> Iterator[dict[str, Exporter]]:
    started = {
        "two-gpu": Exporter("127.0.0.1", dcgm("Hostname", "m-dcgm", [1000.0, 3000.0])),
        "lower": Exporter("127.0.0.1", dcgm("hostname", "m-lower", [2048.0])),
        "by-ip": Exporter("127.0.0.2", node_exporter(8.0)),
        "kube-prometheus": Exporter("127.0.0.1", node_exporter(12.0)),
        # The model server of m-ip (instance host = its InternalIP) reports what it holds.
        "model-server": Exporter("127.0.0.2", 'ladts_model_loaded{model="sd15"} 1\n'
                                              'ladts_model_loaded{model="sdxl"} 0\n'),
    }
    yield started
    for e in started.values():
        e.stop()


def test_poller_maps_every_exporter_and_survives_prometheus_stopping(
        exporters: dict[str, Exporter], e2e_processes: ProcessManager, e2e_binaries: Binaries,
        e2e_workdir: Path) -> None:
    require_binaries(e2e_binaries, "prometheus")
    prom = start_prometheus(e2e_processes, e2e_binaries.get("prometheus"),
                            e2e_workdir / "prometheus-serve")
    config = yaml.safe_load(prom.config_path.read_text())
    for job, exp in exporters.items():
        scrape: dict[str, Any] = {"job_name": job, "static_configs": [{"targets": [exp.target]}]}
        if job == "kube-prometheus":  # kube-prometheus relabels instance to the node name
            scrape["relabel_configs"] = [{"target_label": "instance", "replacement": "m-kp"}]
        config["scrape_configs"].append(scrape)
    prom.config_path.write_text(yaml.safe_dump(config))
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{prom.url}/-/reload", method="POST"),
                           timeout=10).read()

    state = ClusterState(builtin_gpu_profiles())
    for name, ip in (("m-dcgm", "10.9.0.1"), ("m-lower", "10.9.0.2"), ("m-ip", "127.0.0.2"),
                     ("m-kp", "10.9.0.4")):
        state.upsert_node(parse_node(node_obj(name, ip)))

    def nodes() -> tuple[set[str], dict[str, str]]:
        return ({e.obs.name for e in state.nodes.values()},
                {e.obs.internal_ip: e.obs.name for e in state.nodes.values()
                 if e.obs.internal_ip})

    telemetry = Telemetry()
    settings = ServeSettings(prometheus_url=prom.url, prometheus_timeout_s=2.0,
                             metrics_ttl_s=30.0, residency_query="ladts_model_loaded")
    poller = PrometheusPoller(settings, telemetry, nodes,
                              residency_sink=state.set_metric_residency)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        poller.poll_once()
        if all(poller.node_metrics(n) for n in ("m-dcgm", "m-lower", "m-ip", "m-kp")) and (
                poller.node_residency("m-ip")):
            break
        time.sleep(0.5)
    # Residency: mapped by instance address like node-exporter, fed to the state store.
    assert poller.node_residency("m-ip")[0] == ("sd15",)
    assert poller.node_residency("m-dcgm") is None
    poller.apply_residency(time.time())
    assert state.resident("m-ip") == ("sd15",) and state.resident("m-dcgm") == ()
    free = {n: poller.node_metrics(n) for n in ("m-dcgm", "m-lower", "m-ip", "m-kp")}
    assert free["m-dcgm"].vram_free_gib == pytest.approx(4000 / 1024)  # both GPUs, summed
    assert free["m-lower"].vram_free_gib == pytest.approx(2.0)
    assert free["m-ip"].vram_free_gib == pytest.approx(8.0)  # instance host = InternalIP
    assert free["m-kp"].vram_free_gib == pytest.approx(12.0)  # instance = node name
    now = time.time()
    for m in free.values():
        assert now - 30 < m.timestamp_s <= now + 1  # the samples' own timestamps

    # Prometheus stops: the poll fails, the last good values remain.
    e2e_processes.stop(prom.process)
    with pytest.raises(Exception):  # noqa: B017 - any client error
        poller.poll_once()
    assert poller.node_metrics("m-dcgm") == free["m-dcgm"]

    h = HeuristicScorer("greedy")
    clock = {"t": now}
    ex = Extender(state, scorer=h, fallback=h, telemetry=telemetry, metrics=poller,
                  metrics_ttl_s=30.0, clock=lambda: clock["t"])
    body = json.dumps({"Pod": {"metadata": {"name": "p", "uid": "u", "annotations": {
        "ladts.io/model": "sd15", "ladts.io/steps": "20"}}},
        "NodeNames": ["m-dcgm", "m-lower", "m-ip", "m-kp"]}).encode()
    reply = ex.handle("prioritize", body)
    assert reply.status == 200
    decision = next(iter(ex.recent.values()))
    fresh_rows = decision.features["node_rows"]
    clock["t"] = now + 120  # past the TTL
    reply = ex.handle("prioritize", body)
    assert reply.status == 200 and len(reply.body) == 4
    assert telemetry.fallbacks.labels(reason="stale_metrics")._value.get() == 4
    stale_rows = ex.recent["u"].features["node_rows"]
    col = NODE_FEATURE_NAMES.index("vram_free_gib")
    # Fresh: Prometheus' free memory (4000 MiB on m-dcgm); stale: the API-state replay
    # (agx-orin-64: 60 GiB usable, nothing loaded). Normalised by the feature's scale (80).
    assert fresh_rows[0, col] == pytest.approx(4000 / 1024 / 80, rel=1e-4)
    assert stale_rows[0, col] == pytest.approx(60 / 80, rel=1e-4)
