"""Smoke tests of the local control plane: apiserver, scheduler profiles, kwok, Prometheus."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest
from kubernetes import client

from e2e.controlplane.binaries import pinned_versions
from e2e.controlplane.components import ApiServer, Prometheus, Scheduler
from e2e.controlplane.objects import (
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    node_ready,
    simple_pod,
    wait_for_object,
)
from e2e.controlplane.processes import ProcessManager
from e2e.controlplane.readiness import LOOPBACK, wait_until
from e2e.controlplane.scheduler_config import adapt_scheduler_config, load_scheduler_config

NAMESPACE = "default"


def test_process_manager_stops_whole_process_group(tmp_path: Path) -> None:
    """Stopping a process also stops its children, even one that left the group (setsid)."""
    manager = ProcessManager()
    script = "setsid sleep 300 & sleep 300 & echo forked; wait"
    proc = manager.start("sleepers", ["sh", "-c", script], tmp_path)
    wait_until(lambda: "forked" in proc.log_tail(), "the children to be forked", 10, proc)
    manager.stop(proc, grace_s=5)
    assert not proc.running()
    assert len(proc.descendants) == 2
    assert manager.leftovers() == []


def test_apiserver_reports_pinned_version(api_client: client.ApiClient) -> None:
    """The apiserver binary carries the pinned release in its version ldflags."""
    info = client.VersionApi(api_client).get_code()
    assert info.git_version == pinned_versions()["LADTS_K8S_VERSION"]


def test_scheduler_runs_both_profiles(kube_scheduler: Scheduler) -> None:
    """The default configuration has the default and the ladts profile."""
    names = [p["schedulerName"] for p in kube_scheduler.config["profiles"]]
    assert names == ["default-scheduler", "ladts-scheduler"]
    assert "scheduler_" in kube_scheduler.metrics()


def test_kwok_node_becomes_ready(
    core_v1: client.CoreV1Api, fake_node_factory: Callable[..., client.V1Node]
) -> None:
    """A plain Node created through the API becomes Ready through kwok, untainted."""
    name = fake_node_factory(gpus=2, product="NVIDIA-RTX-4090").to_dict()["metadata"]["name"]
    node = wait_for_object(
        lambda: core_v1.read_node(name), node_ready, f"node {name} Ready", timeout_s=60
    ).to_dict()
    assert node["status"]["capacity"][GPU_RESOURCE] == "2"
    assert node["status"]["allocatable"][GPU_RESOURCE] == "2"
    assert node["metadata"]["labels"][GPU_PRODUCT_LABEL] == "NVIDIA-RTX-4090"
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
    core_v1.create_namespaced_pod(NAMESPACE, simple_pod(name, scheduler_name=scheduler_name))
    try:
        pod = wait_for_object(
            lambda: core_v1.read_namespaced_pod(name, NAMESPACE).to_dict(),
            lambda p: p["status"]["phase"] == "Running",
            f"pod {name} Running",
            timeout_s=60,
        )
        assert pod["spec"]["node_name"] in two_ready_nodes
        conditions = pod["status"]["conditions"] or []
        assert {"type": "PodScheduled", "status": "True"}.items() <= next(
            c for c in conditions if c["type"] == "PodScheduled"
        ).items()
    finally:
        core_v1.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)


def test_prometheus_answers_up(prometheus: Prometheus) -> None:
    """Prometheus scrapes itself and answers the query ``up``."""
    result: list[dict[str, object]] = []

    def self_scraped() -> bool:
        result[:] = prometheus.query('up{job="prometheus"}')
        return bool(result)

    wait_until(self_scraped, "Prometheus to scrape itself", timeout_s=30)
    assert result[0]["value"][1] == "1"  # type: ignore[index]


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


def test_apiserver_is_loopback_only(kube_apiserver: ApiServer) -> None:
    """The fixtures bind the apiserver to 127.0.0.1 (no wildcard listener)."""
    args = " ".join(kube_apiserver.process.popen.args)  # type: ignore[arg-type]
    assert "--bind-address=127.0.0.1" in args
    assert sys.platform != "linux" or _listens_only_on_loopback(kube_apiserver.port)


def _listens_only_on_loopback(port: int) -> bool:
    """True when every listening socket on ``port`` (from /proc/net/tcp*) is on loopback."""
    wanted = f"{port:04X}"
    local_addrs: list[str] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            addr, state = fields[1], fields[3]
            if state == "0A" and addr.endswith(f":{wanted}"):
                local_addrs.append(addr.split(":")[0])
    loopback = {"0100007F", "00000000000000000000000001000000"}
    return bool(local_addrs) and all(a in loopback for a in local_addrs)


def test_adapt_scheduler_config_keeps_profiles_and_appends_extenders(tmp_path: Path) -> None:
    """A chart-style configuration keeps its profiles; kubeconfig and leader election change."""
    source = tmp_path / "sched.yaml"
    source.write_text(
        "apiVersion: kubescheduler.config.k8s.io/v1\n"
        "kind: KubeSchedulerConfiguration\n"
        "clientConnection: {kubeconfig: /etc/kubernetes/scheduler.conf, qps: 50}\n"
        "leaderElection: {leaderElect: true}\n"
        "profiles: [{schedulerName: ladts-scheduler}]\n"
        "extenders: [{urlPrefix: 'http://ladts:8888', filterVerb: filter}]\n",
        encoding="utf-8",
    )
    extra = {"urlPrefix": "http://127.0.0.1:9999", "prioritizeVerb": "prioritize", "weight": 1}
    config = adapt_scheduler_config(load_scheduler_config(source), tmp_path / "kc", [extra])
    assert config["clientConnection"] == {"kubeconfig": str(tmp_path / "kc"), "qps": 50}
    assert config["leaderElection"] == {"leaderElect": False}
    assert config["profiles"] == [{"schedulerName": "ladts-scheduler"}]
    assert [e["urlPrefix"] for e in config["extenders"]] == [
        "http://ladts:8888",
        "http://127.0.0.1:9999",
    ]
    with pytest.raises(ValueError, match="KubeSchedulerConfiguration"):
        adapt_scheduler_config({"apiVersion": "v1", "kind": "ConfigMap"}, tmp_path / "kc")
