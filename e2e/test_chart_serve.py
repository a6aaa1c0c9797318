"""The chart's pod, minus the kubelet: ``ladts serve`` with the chart's arguments and settings
file, authenticating as the chart's extender ServiceAccount, called by a kube-scheduler
started from the chart's configuration as the chart's scheduler ServiceAccount.

What ``helm test`` checks in a cluster (a pod scheduled through the extender carries its
``ladts.io/decision``) is checked here against the real apiserver. Skipped until the
``ladts serve`` command exists in the tree.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic

from e2e.conftest import require_binaries
from e2e.controlplane.apply import apply_all, server_side_apply, token_for
from e2e.controlplane.binaries import Binaries
from e2e.controlplane.chart import (
    chart_scheduler_config,
    local_serve_command,
    parse_objects,
    render_chart,
    start_chart_scheduler,
    with_extender_url,
)
from e2e.controlplane.components import ApiServer
from e2e.controlplane.kubeconfig import write_kubeconfig
from e2e.controlplane.objects import node_ready, simple_pod, wait_for_object
from e2e.controlplane.processes import ManagedProcess, ProcessManager
from e2e.controlplane.readiness import LOOPBACK, free_port, http_get, http_ok, wait_until

pytest.importorskip("ladts_operator.commands.serve", reason="ladts serve is not in this tree")

RELEASE, NAMESPACE = "ladts-scheduler-serve", "ladts-serve"  # fullname = release name
DECISION = "ladts.io/decision"


@dataclass(frozen=True)
class ChartPod:
    """The two processes of the chart's pod, run locally."""

    profile: str
    """Scheduler name pods opt in with."""
    serve: ManagedProcess
    """The ladts serve process."""
    port: int
    """Its loopback port (the extender's urlPrefix)."""



@pytest.fixture(scope="module", autouse=True)
def _helm_built(e2e_binaries: Binaries) -> None:
    """Skip (or fail under LADTS_E2E_REQUIRED=1) without helm and kube-scheduler."""
    require_binaries(e2e_binaries, "helm", "kube-scheduler")

@pytest.fixture(scope="module")
def chart_pod(
    e2e_processes: ProcessManager,
    e2e_binaries: Binaries,
    e2e_workdir: Path,
    kube_apiserver: ApiServer,
    core_v1: client.CoreV1Api,
    api_client: client.ApiClient,
) -> Iterator[ChartPod]:
    """Serve + scheduler as the chart renders them."""
    profile = f"ladts-serve-{uuid.uuid4().hex[:4]}"
    objects = parse_objects(render_chart(
        set_values=[f"schedulerName={profile}"], release=RELEASE, namespace=NAMESPACE
    ))  # fmt: skip
    dyn = dynamic.DynamicClient(api_client)  # type: ignore[no-untyped-call]
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    server_side_apply(dyn, namespace)
    apply_all(dyn, objects)
    workdir = e2e_workdir / "chart-serve"
    workdir.mkdir(parents=True, exist_ok=True)
    extender_user = f"system:serviceaccount:{NAMESPACE}:{RELEASE}-extender"
    kubeconfig = write_kubeconfig(
        workdir / "extender-kubeconfig.yaml", kube_apiserver.url, kube_apiserver.pki.ca_cert,
        token_for(core_v1, f"{RELEASE}-extender", NAMESPACE), extender_user,
    )  # fmt: skip
    port = free_port()
    # The pod's paths (trace volume) become local ones; everything else is the chart's.
    argv = local_serve_command(
        objects, workdir / "settings.yaml",
        {"kubeconfig": str(kubeconfig), "port": port, "trace_path": str(workdir / "trace.jsonl")},
        ladts=(sys.executable, "-m", "ladts_policy.cli"),
    )  # fmt: skip
    serve = e2e_processes.start("ladts-serve", argv, workdir)
    wait_until(http_ok(f"http://{LOOPBACK}:{port}/readyz"), "ladts serve /readyz", 120, serve)
    config = with_extender_url(chart_scheduler_config(objects), f"http://{LOOPBACK}:{port}")
    scheduler = start_chart_scheduler(
        e2e_processes, e2e_binaries.get("kube-scheduler"), workdir, kube_apiserver, config,
        token_for(core_v1, RELEASE, NAMESPACE), f"system:serviceaccount:{NAMESPACE}:{RELEASE}",
    )  # fmt: skip
    yield ChartPod(profile=profile, serve=serve, port=port)
    e2e_processes.stop(scheduler.process)
    e2e_processes.stop(serve)


def _bound(core_v1: client.CoreV1Api, name: str) -> client.V1Pod:
    return wait_for_object(
        lambda: core_v1.read_namespaced_pod(name, "default"),
        lambda p: bool(p.spec.node_name) and DECISION in (p.metadata.annotations or {}),
        f"pod {name} bound with a decision", timeout_s=60,
    )  # fmt: skip


def test_pods_scheduled_through_ladts_serve(
    chart_pod: ChartPod,
    core_v1: client.CoreV1Api,
    kwok: Any,
    fake_node_factory: Callable[..., client.V1Node],
) -> None:
    """An AIGC pod and a plain pod (the helm test's) are bound by ladts serve with its decision
    annotation; serve's log shows no permission error under the chart's RBAC."""
    del kwok
    profile = chart_pod.profile
    nodes = [str(fake_node_factory(product="NVIDIA-A100-SXM4-80GB").metadata.name)
             for _ in range(2)]
    for name in nodes:
        wait_for_object(partial(core_v1.read_node, name), node_ready, f"node {name} Ready")
    aigc, plain = f"serve-aigc-{uuid.uuid4().hex[:6]}", f"serve-plain-{uuid.uuid4().hex[:6]}"
    core_v1.create_namespaced_pod("default", simple_pod(
        aigc, scheduler_name=profile,
        annotations={"ladts.io/model": "sd15", "ladts.io/steps": "20"},
    ))  # fmt: skip
    core_v1.create_namespaced_pod("default", simple_pod(plain, scheduler_name=profile))
    for name in (aigc, plain):
        pod = _bound(core_v1, name)
        decision = json.loads(pod.metadata.annotations[DECISION])
        assert decision["node"] == pod.spec.node_name and pod.spec.node_name in nodes
    aigc_decision = json.loads(_bound(core_v1, aigc).metadata.annotations[DECISION])
    assert aigc_decision["scorer"] and set(aigc_decision["scores"]) == set(nodes)
    log = chart_pod.serve.log_tail()
    assert "Forbidden" not in log and " 403" not in log, log[-2000:]


def test_serve_endpoints_answer(chart_pod: ChartPod) -> None:
    """/readyz, /metrics and /debug/state answer on the chart's loopback listener."""
    base = f"http://{LOOPBACK}:{chart_pod.port}"
    assert http_get(f"{base}/readyz")[0] == 200
    status, metrics = http_get(f"{base}/metrics")
    assert status == 200 and "ladts_" in metrics
    status, state = http_get(f"{base}/debug/state")
    assert status == 200 and isinstance(json.loads(state), dict)
