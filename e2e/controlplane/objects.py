"""Builders for the Kubernetes objects the e2e tests create, and polling helpers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from kubernetes import client

from e2e.controlplane.components import KWOK_NODE_ANNOTATION, KWOK_NODE_ANNOTATION_VALUE
from e2e.controlplane.readiness import wait_until

GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
T = TypeVar("T")


def gpu_node_body(
    name: str,
    capacity: Mapping[str, str],
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    taints: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """The one Node body builder: a kwok-managed node (annotation ``kwok.x-k8s.io/node:
    fake``), capacity = allocatable, the usual well-known labels."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                **(labels or {}),
            },
            "annotations": {
                KWOK_NODE_ANNOTATION: KWOK_NODE_ANNOTATION_VALUE,
                **(annotations or {}),
            },
        },
        "spec": {"taints": [dict(t) for t in taints]},
        "status": {"capacity": dict(capacity), "allocatable": dict(capacity)},
    }


def fake_gpu_node(
    name: str,
    gpus: int = 1,
    product: str = "NVIDIA-A100-SXM4-40GB",
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    cpu: str = "32",
    memory: str = "128Gi",
) -> dict[str, Any]:
    """Return the body of a Node managed by the kwok fixture, with ``nvidia.com/gpu`` capacity."""
    capacity = {"cpu": cpu, "memory": memory, "pods": "110", GPU_RESOURCE: str(gpus)}
    return gpu_node_body(
        name, capacity, {GPU_PRODUCT_LABEL: product, **(labels or {})}, annotations
    )


def simple_pod(
    name: str,
    scheduler_name: str = "default-scheduler",
    annotations: Mapping[str, str] | None = None,
    requests: Mapping[str, str] | None = None,
    image: str = "registry.invalid/ladts/diffusion:test",
) -> client.V1Pod:
    """Return a one-container Pod that tolerates kwok nodes; no image is ever pulled."""
    resources = client.V1ResourceRequirements(requests=dict(requests or {"cpu": "100m"}))
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, annotations=dict(annotations or {})),
        spec=client.V1PodSpec(
            scheduler_name=scheduler_name,
            containers=[client.V1Container(name="main", image=image, resources=resources)],
            tolerations=[client.V1Toleration(key="kwok.x-k8s.io/node", operator="Exists")],
            automount_service_account_token=False,
            termination_grace_period_seconds=0,
        ),
    )


def node_ready(node: client.V1Node) -> bool:
    """True when the Node has condition Ready=True and no not-ready taint."""
    conditions = (node.status.conditions if node.status else None) or []
    taints = (node.spec.taints if node.spec else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions) and not any(
        t.key == NOT_READY_TAINT for t in taints
    )


def wait_for_object(
    read: Callable[[], T],
    predicate: Callable[[T], bool],
    what: str,
    timeout_s: float = 60,
) -> T:
    """Poll ``read()`` until ``predicate`` holds for its result; return that result."""
    last: dict[str, Any] = {}

    def check() -> bool:
        last["obj"] = read()
        return predicate(last["obj"])

    wait_until(check, what, timeout_s)
    return last["obj"]  # type: ignore[no-any-return]
