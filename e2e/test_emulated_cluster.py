"""Emulated GPU cluster on the real control plane: scenario nodes, AIGC pod lifecycle, metrics.

Uses the session fixtures of ``e2e/conftest.py`` (apiserver, scheduler, kwok whose pod stages
skip AIGC pods, Prometheus). The emulation controller marks an AIGC pod Running at its modelled
start and Succeeded at its modelled finish (see :mod:`e2e.emulation.controller`); a pod queued
behind another stays Pending on its node. Every wait is readiness-based with a timeout.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from e2e.controlplane.components import Prometheus
from e2e.controlplane.readiness import wait_until
from e2e.emulation.controller import ClusterClock, EmulationController
from e2e.emulation.exporter import FakeExporter, render_metrics
from e2e.emulation.kwok_stages import AIGC_EXCLUSION, exclude_aigc_pods
from e2e.emulation.pods import APP_LABEL, aigc_pod_manifest
from e2e.emulation.scenario_nodes import (
    GPU_PRODUCT_LABEL,
    GPU_PROFILE_LABEL,
    GPU_RESOURCE,
    create_nodes,
    delete_nodes,
    load_cluster,
    node_hardware,
    wait_nodes_ready,
)
from e2e.emulation.service import ScenarioService
from e2e.emulation.state import EmulationState, NodeHardware
from ladts_operator.metrics_source.parse import per_node_values
from ladts_operator.metrics_source.queries import DCGM_QUERIES, MetricQuery

NAMESPACE = "default"
TIME_SCALE = 10.0
#: Allowed wall-clock error of a pod's emulated duration (watch + patch latency), seconds.
WALL_TOLERANCE_S = 1.0

SMALL_SCENARIO: dict[str, Any] = {
    "kind": "k8s-edge",
    "name": "e2e-small",
    "description": "two GPU nodes for the emulation e2e tests",
    "cluster": {
        "horizon_s": 60,
        "arrivals": {"process": "poisson", "rate_per_s": 0.1},
        "models": [
            {"name": "sd15", "weight": 1, "steps": [20, 20], "cpu": 1, "memory_gib": 2},
            {"name": "sdxl", "weight": 1, "steps": [20, 20], "cpu": 1, "memory_gib": 2},
        ],
        "nodes": [
            {"profile": "rtx-4090", "count": 1, "name_prefix": "emu-4090", "resident": ["sd15"]},
            {"profile": "a10", "count": 1, "name_prefix": "emu-a10", "resident": ["sdxl"]},
        ],
    },
}


@dataclass
class Emulation:
    """What the tests need from one running emulation."""

    nodes: list[str]
    state: EmulationState
    service: ScenarioService
    controller: EmulationController
    clock: ClusterClock


@pytest.fixture(scope="module")
def small_scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two-node scenario as a YAML file (loaded through ``load_scenario``)."""
    path = tmp_path_factory.mktemp("scenario") / "e2e-small.yaml"
    path.write_text(yaml.safe_dump(SMALL_SCENARIO), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def emulation(
    core_v1: client.CoreV1Api, kwok: Any, kube_scheduler: Any, small_scenario: Path
) -> Iterator[Emulation]:
    """Scenario nodes (Ready) + a running emulation controller; all removed afterwards."""
    cluster = load_cluster(small_scenario)
    specs = cluster.expand_nodes()
    names = create_nodes(core_v1, specs)
    state = EmulationState([node_hardware(s) for s in specs])
    service = ScenarioService(specs, cluster)
    clock = ClusterClock(TIME_SCALE)
    controller = EmulationController(core_v1, service, clock, state=state, namespace=NAMESPACE)
    controller.start()
    try:
        wait_nodes_ready(core_v1, names, timeout_s=60)
        yield Emulation(names, state, service, controller, clock)
    finally:
        controller.stop()
        core_v1.delete_collection_namespaced_pod(
            NAMESPACE, label_selector=f"{APP_LABEL[0]}={APP_LABEL[1]}", grace_period_seconds=0
        )
        delete_nodes(core_v1, names)
    assert controller.errors == []


def _pod_phase(core_v1: client.CoreV1Api, name: str) -> tuple[str | None, str | None]:
    """(nodeName, phase) of a pod."""
    pod = core_v1.read_namespaced_pod(name, NAMESPACE)
    return pod.spec.node_name, pod.status.phase if pod.status else None


def test_scenario_nodes_ready_with_gpu_capacity(
    core_v1: client.CoreV1Api, emulation: Emulation
) -> None:
    """Every scenario node is Ready, labelled with its GPU, and offers one nvidia.com/gpu."""
    for name in emulation.nodes:
        node = core_v1.read_node(name)
        labels = node.metadata.labels
        assert labels["type"] == "kwok"
        assert labels[GPU_PROFILE_LABEL] in ("rtx-4090", "a10")
        assert labels[GPU_PRODUCT_LABEL].startswith("NVIDIA-")
        assert node.metadata.annotations["kwok.x-k8s.io/node"] == "fake"
        assert node.status.allocatable[GPU_RESOURCE] == "1"
        assert node.status.capacity["cpu"] == "8"
        assert not [t for t in node.spec.taints or [] if t.effect == "NoSchedule"]


def test_aigc_pod_runs_and_succeeds_in_cluster_time(
    core_v1: client.CoreV1Api, emulation: Emulation
) -> None:
    """A pod bound by the scheduler runs for the modelled (cold-start) time, then succeeds."""
    node = "emu-a10-0"  # sdxl is resident there, so sd15 pays the 15 s load (cold start)
    name = f"aigc-{uuid.uuid4().hex[:6]}"
    body = aigc_pod_manifest(name, "sd15", 20, cpu=1, memory_gib=2)
    body["spec"]["nodeSelector"] = {"kubernetes.io/hostname": node}
    core_v1.create_namespaced_pod(NAMESPACE, body)
    seen: dict[str, float] = {}

    def observe() -> bool:
        bound, phase = _pod_phase(core_v1, name)
        now = time.monotonic()
        if bound:
            seen.setdefault("bound", now)
        if phase == "Running":
            seen.setdefault("running", now)
        if phase == "Succeeded":
            seen.setdefault("succeeded", now)
        return "succeeded" in seen

    wait_until(observe, f"pod {name} Succeeded", timeout_s=60)
    assert _pod_phase(core_v1, name)[0] == node
    record = emulation.controller.record(name)
    assert record is not None and record.cold
    modelled = emulation.service.expected(node, "sd15", 20, cold=True)
    assert record.finish_s - record.start_s == pytest.approx(modelled)
    assert record.start_s == pytest.approx(record.bind_s)  # the node was idle
    # Wall time from bind to Succeeded matches the modelled duration / time scale.
    wall = seen["succeeded"] - seen["bound"]
    assert wall == pytest.approx(modelled / TIME_SCALE, abs=WALL_TOLERANCE_S)
    annotations = core_v1.read_namespaced_pod(name, NAMESPACE).metadata.annotations
    assert float(annotations["ladts.io/emulation-finish-s"]) == pytest.approx(record.finish_s, 1e-3)
    status = core_v1.read_namespaced_pod_status(name, NAMESPACE).status
    assert status.container_statuses[0].state.terminated.exit_code == 0


def test_pods_on_one_node_queue_fifo(core_v1: client.CoreV1Api, emulation: Emulation) -> None:
    """Two pods on a concurrency-1 node: the second starts when the first finishes."""
    node = "emu-4090-0"
    names = [f"aigc-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    for name in names:
        body = aigc_pod_manifest(name, "sdxl", 20, cpu=1, memory_gib=2)
        body["spec"]["nodeSelector"] = {"kubernetes.io/hostname": node}
        core_v1.create_namespaced_pod(NAMESPACE, body)

    queued_while_first_ran = False

    def both_done() -> bool:
        nonlocal queued_while_first_ran
        (_, first_phase), (second_node, second_phase) = (_pod_phase(core_v1, n) for n in names)
        if first_phase == "Running" and second_node == node and second_phase == "Pending":
            queued_while_first_ran = True
        return first_phase == second_phase == "Succeeded"

    wait_until(both_done, "both pods Succeeded", timeout_s=60)
    assert queued_while_first_ran, "the second pod should wait Pending on the busy node"
    first, second = sorted(
        (r for r in emulation.controller.records() if r.name in names), key=lambda r: r.bind_s
    )
    assert first.cold  # sdxl is not resident on the 4090 (sd15 is)
    assert second.start_s == pytest.approx(max(first.finish_s, second.bind_s))
    assert not second.cold
    warm = emulation.service.expected(node, "sdxl", 20, cold=False)
    assert second.finish_s - second.start_s == pytest.approx(warm)


def _wait_series(prometheus: Prometheus, promql: str, expect: dict[str, float], label: str) -> None:
    """Wait until ``promql`` returns exactly ``expect`` (``label`` value -> sample value)."""
    got: dict[str, float] = {}

    def check() -> bool:
        got.clear()
        for series in prometheus.query(promql):
            got[series["metric"].get(label, "")] = float(series["value"][1])
        return got == expect

    try:
        wait_until(check, f"{promql} == {expect}", timeout_s=30)
    except Exception as err:
        raise AssertionError(f"{promql}: last result {got}") from err


def _wait_operator_values(
    prometheus: Prometheus, query: MetricQuery, expect: dict[str, float]
) -> None:
    """Wait until the operator's parse of ``query`` gives exactly ``expect`` per node."""
    got: dict[str, float] = {}

    def check() -> bool:
        got.clear()
        response = prometheus.query_response(query.promql)
        got.update({n: s.value for n, s in per_node_values(response, query).items()})
        return got == expect

    try:
        wait_until(check, f"{query.name} == {expect}", timeout_s=30)
    except Exception as err:
        raise AssertionError(f"{query.name}: last result {got}") from err


@pytest.mark.parametrize("host_label", ["Hostname", "hostname"])
def test_prometheus_scrapes_gpu_metrics_per_node(
    prometheus: Prometheus, emulation: Emulation, host_label: str
) -> None:
    """Real Prometheus scrapes the fake exporter; PromQL returns per-node GPU series."""
    busy, idle = emulation.nodes
    job = f"dcgm-{host_label}"
    emulation.state.start(busy, "probe-pod", gpu_gib=3.5)
    exporter = FakeExporter(emulation.state.snapshot, host_label=host_label).start()
    try:
        prometheus.set_targets({job: [exporter.target]})
        sel = f'{{job="{job}"}}'
        _wait_series(prometheus, f"DCGM_FI_DEV_GPU_UTIL{sel}", {busy: 100, idle: 0}, host_label)
        _wait_series(prometheus, f"DCGM_FI_DEV_FB_USED{sel}", {busy: 3584, idle: 0}, host_label)
        free = f"sum by ({host_label}) (DCGM_FI_DEV_FB_FREE{sel})"
        _wait_series(prometheus, free, {busy: 23 * 1024 - 3584, idle: 23 * 1024}, host_label)
        # The operator's own queries and parser reach both exporter generations (the previous
        # parametrisation's series of the same GPUs are still within the lookback window).
        expect = {
            "gpu_util_pct": {busy: 100, idle: 0},
            "gpu_mem_used_mib": {busy: 3584, idle: 0},
            "gpu_mem_free_mib": {busy: 23 * 1024 - 3584, idle: 23 * 1024},
        }
        for query in DCGM_QUERIES:
            _wait_operator_values(prometheus, query, expect[query.name])
        mem = f"node_memory_MemAvailable_bytes{sel}"
        _wait_series(prometheus, mem, {busy: 32 * 2**30, idle: 32 * 2**30}, "node")
    finally:
        emulation.state.finish(busy, "probe-pod")
        exporter.stop()
    assert not exporter.running()


# ------------------------------------------------------------------ pure parts (no binaries)


def test_render_metrics_switches_host_label_casing() -> None:
    """Both dcgm-exporter generations: ``Hostname`` (default) and ``hostname``."""
    hw = NodeHardware("n1", "NVIDIA-L4", gpu_count=1, vram_mib=23552, memory_bytes=2**34)
    state = EmulationState([hw])
    state.start("n1", "p", gpu_gib=8.0)
    upper = render_metrics(state.snapshot())
    lower = render_metrics(state.snapshot(), host_label="hostname")
    assert 'DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-' in upper
    assert 'Hostname="n1"} 8192' in upper and "hostname=" not in upper
    assert 'hostname="n1"} 8192' in lower and "Hostname=" not in lower
    assert "DCGM_FI_DEV_GPU_UTIL{" in upper and 'Hostname="n1"} 100' in upper
    with pytest.raises(ValueError):
        render_metrics(state.snapshot(), host_label="HOSTNAME")


def test_kwok_stages_leave_aigc_pods_to_the_controller() -> None:
    """Pod lifecycle stages exclude annotated pods; deletion and node stages are untouched."""
    docs = [
        {
            "kind": "Stage",
            "metadata": {"name": n},
            "spec": {"resourceRef": {"apiGroup": "v1", "kind": k}},
        }
        for n, k in (("pod-ready", "Pod"), ("pod-delete", "Pod"), ("node-initialize", "Node"))
    ]
    out = {d["metadata"]["name"]: d for d in exclude_aigc_pods(docs)}
    assert out["pod-ready"]["spec"]["selector"]["matchExpressions"] == [AIGC_EXCLUSION]
    assert "selector" not in out["pod-delete"]["spec"]
    assert "selector" not in out["node-initialize"]["spec"]
