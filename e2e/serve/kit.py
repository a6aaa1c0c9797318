"""Shared pieces of the extender e2e tests that run a kube-scheduler of their own.

GPU nodes without a kubelet (status patched Ready), AIGC and plain pods, a one-profile
KubeSchedulerConfiguration with the ladts extender, and waits that poll the apiserver.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from kubernetes import client

from e2e.serve.conftest import Serve

SCHEDULER = "ladts-scheduler"
"""The chart's scheduler profile name."""


def gpu_node(name: str, profile: str, resident: str, labels: Mapping[str, str]
             ) -> client.V1Node:
    """A Node of a shipped GPU profile that declares its resident models."""
    return client.V1Node(metadata=client.V1ObjectMeta(
        name=name, labels={"ladts.io/gpu-profile": profile, **labels},
        annotations={"ladts.io/resident-models": resident}))


def create_ready_node(core_v1: client.CoreV1Api, node: client.V1Node) -> None:
    """Create ``node`` and set it Ready with allocatable resources (no kubelet here)."""
    core_v1.create_node(node)
    assert node.metadata is not None and node.metadata.name
    core_v1.patch_node_status(node.metadata.name, {"status": {
        "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
        "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "e2e",
                        "message": "e2e"}]}})


def pod(name: str, model: str | None, steps: int, labels: Mapping[str, str], *,
        node: str | None = None, scheduler: str = SCHEDULER) -> client.V1Pod:
    """An AIGC pod (``model`` set) or a plain one (``model=None``) for nodes with ``labels``."""
    annotations = {"ladts.io/model": model, "ladts.io/steps": str(steps)} if model else None
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, annotations=annotations),
        spec=client.V1PodSpec(
            scheduler_name=scheduler, node_name=node,
            tolerations=[client.V1Toleration(operator="Exists")], node_selector=dict(labels),
            containers=[client.V1Container(name="client", image="client", resources=(
                client.V1ResourceRequirements(requests={"cpu": "100m", "memory": "64Mi"})))]))


def scheduler_config(profile: str, extender_url: str | None) -> dict[str, Any]:
    """One profile; the per-node score plugins that vary with requests disabled (as
    docs/serving.md recommends) so the extender decides where it is configured."""
    config: dict[str, Any] = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "percentageOfNodesToScore": 100,
        "profiles": [{"schedulerName": profile, "plugins": {"score": {"disabled": [
            {"name": "NodeResourcesFit"}, {"name": "NodeResourcesBalancedAllocation"},
            {"name": "ImageLocality"}]}}}],
    }
    if extender_url is not None:
        config["extenders"] = [{
            "urlPrefix": extender_url, "filterVerb": "filter", "prioritizeVerb": "prioritize",
            "bindVerb": "bind", "weight": 10, "nodeCacheCapable": True, "ignorable": True,
            "httpTimeout": "5s"}]
    return config


def node_of(p: client.V1Pod) -> str | None:
    """The node a pod is bound to (None while unbound)."""
    return p.spec.node_name if p.spec is not None else None


def meta(p: client.V1Pod) -> client.V1ObjectMeta:
    """A pod's metadata (the apiserver always returns it)."""
    assert p.metadata is not None
    return p.metadata


def wait_bound(core_v1: client.CoreV1Api, ns: str, name: str, timeout_s: float = 60.0
               ) -> client.V1Pod:
    """Poll until the pod has a node; fail with its events otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        p = core_v1.read_namespaced_pod(name, ns)
        if node_of(p):
            return p
        time.sleep(0.2)
    events = [e.message for e in core_v1.list_namespaced_event(ns).items
              if e.involved_object.name == name]
    raise AssertionError(f"{name} not bound after {timeout_s} s; events: {events}")


def wait_decision(core_v1: client.CoreV1Api, ns: str, name: str, timeout_s: float = 30.0
                  ) -> dict[str, Any]:
    """Poll until the pod carries ``ladts.io/decision``; return it parsed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ann = meta(core_v1.read_namespaced_pod(name, ns)).annotations or {}
        if "ladts.io/decision" in ann:
            record: dict[str, Any] = json.loads(ann["ladts.io/decision"])
            return record
        time.sleep(0.2)
    raise AssertionError(f"{name} has no ladts.io/decision annotation after {timeout_s} s")


def metric_sum(serve: Serve, prefix: str) -> float:
    """Sum of the samples of ``serve``'s /metrics whose line starts with ``prefix``."""
    text = serve.get("/metrics")[1].decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(prefix))


def debug_state(serve: Serve) -> dict[str, Any]:
    """``GET /debug/state`` parsed."""
    status, body = serve.get("/debug/state")
    assert status == 200, body
    state: dict[str, Any] = json.loads(body)
    return state
