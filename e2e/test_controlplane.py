"""Smoke tests of the local control plane: apiserver, scheduler profiles, kwok, Prometheus."""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest
from kubernetes import client

from e2e.controlplane.binaries import pinned_versions
from e2e.controlplane.components import Prometheus, Scheduler
from e2e.controlplane.objects import (
    node_ready,
    simple_pod,
    wait_for_object,
)
from e2e.controlplane.processes import ProcessManager
from e2e.controlplane.readiness import LOOPBACK, wait_until
from e2e.controlplane.sockets import is_loopback, listening_addresses

NAMESPACE = "default"
_ATTEMPTS = re.compile(r"^scheduler_schedule_attempts_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


def scheduled_attempts(metrics_text: str, profile: str) -> float:
    """``scheduler_schedule_attempts_total{profile=..., result="scheduled"}`` from /metrics."""
    total = 0.0
    for line in metrics_text.splitlines():
        m = _ATTEMPTS.match(line)
        if m and f'profile="{profile}"' in m["labels"] and 'result="scheduled"' in m["labels"]:
            total += float(m["value"])
    return total


def test_apiserver_reports_pinned_version(api_client: client.ApiClient) -> None:
    """The apiserver binary carries the pinned release in its version ldflags."""
    info = client.VersionApi(api_client).get_code()
    assert info.git_version == pinned_versions()["LADTS_K8S_VERSION"]


def test_kwok_node_becomes_ready(
    core_v1: client.CoreV1Api, fake_node_factory: Callable[..., client.V1Node]
) -> None:
    """A plain Node created through the API (no conditions) is made Ready by kwok, untainted."""
    name = fake_node_factory(gpus=2, product="NVIDIA-RTX-4090").to_dict()["metadata"]["name"]
    node = wait_for_object(
        lambda: core_v1.read_node(name), node_ready, f"node {name} Ready", timeout_s=60
    ).to_dict()
    taints = node["spec"].get("taints") or []
    assert not [t for t in taints if t["key"].startswith("node.kubernetes.io/")]


@pytest.fixture
def two_ready_nodes(
    core_v1: client.CoreV1Api, fake_node_factory: Callable[..., client.V1Node]
) -> list[str]:
    """Two Ready kwok GPU nodes (so prioritize would run if an extender were configured)."""
    names: list[str] = [fake_node_factory(gpus=1).to_dict()["metadata"]["name"] for _ in range(2)]
    for name in names:
        wait_for_object(partial(core_v1.read_node, name), node_ready, f"node {name} Ready")
    return names


@pytest.mark.parametrize("scheduler_name", ["default-scheduler", "ladts-scheduler"])
def test_pod_is_bound_and_runs(
    core_v1: client.CoreV1Api,
    kube_scheduler: Scheduler,
    two_ready_nodes: list[str],
    scheduler_name: str,
) -> None:
    """A pod of each profile is bound by kube-scheduler and set Running by kwok."""
    name = f"smoke-{scheduler_name}-{uuid.uuid4().hex[:6]}"
    before = scheduled_attempts(kube_scheduler.metrics(), scheduler_name)
    core_v1.create_namespaced_pod(NAMESPACE, simple_pod(name, scheduler_name=scheduler_name))
    try:
        pod = wait_for_object(
            lambda: core_v1.read_namespaced_pod(name, NAMESPACE).to_dict(),
            lambda p: p["status"]["phase"] == "Running",
            f"pod {name} Running",
            timeout_s=60,
        )
        assert pod["spec"]["node_name"] in two_ready_nodes
        # The profile named in the pod did the scheduling: kube-scheduler's own counter.
        wait_until(
            lambda: scheduled_attempts(kube_scheduler.metrics(), scheduler_name) > before,
            f"scheduler_schedule_attempts_total{{profile={scheduler_name!r}}} to grow",
            timeout_s=10,
        )
    finally:
        core_v1.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)


def test_prometheus_answers_up(prometheus: Prometheus) -> None:
    """Prometheus scrapes itself and answers the query ``up``."""
    result: list[dict[str, object]] = []

    def self_scraped() -> bool:
        result[:] = prometheus.query('up{job="prometheus"}')
        return bool(result)

    wait_until(self_scraped, "Prometheus to scrape itself", timeout_s=30)
    assert result[0]["value"][1] == "1"


@pytest.fixture
def tiny_exporter() -> Iterator[str]:
    """A one-series exporter on loopback; yields its ``host:port``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"ladts_e2e_smoke_value 42\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Keep the test output quiet."""
            del format, args

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"{LOOPBACK}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_prometheus_scrapes_targets_set_later(prometheus: Prometheus, tiny_exporter: str) -> None:
    """``set_targets`` reloads the configuration and the new job's series become queryable."""
    prometheus.set_targets({"smoke": [tiny_exporter]})
    wait_until(
        lambda: bool(prometheus.query("ladts_e2e_smoke_value == 42")),
        "the smoke exporter's series",
        timeout_s=30,
    )
    prometheus.set_targets({})


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_every_started_process_listens_on_loopback_only(
    e2e_processes: ProcessManager, control_plane: dict[str, object], prometheus: Prometheus
) -> None:
    """Every process the fixtures started (and its children) listens on loopback only."""
    running = [p for p in e2e_processes.processes if p.running()]
    assert {"kine", "kube-apiserver", "kube-scheduler", "kwok", "prometheus"} <= {
        p.name for p in running
    }
    for proc in running:
        addresses = listening_addresses(proc.survivors())
        assert addresses, f"{proc.name} listens on nothing"
        wild = [a for a in addresses if not is_loopback(a[0])]
        assert not wild, f"{proc.name} listens beyond loopback: {wild}"
