"""Turn a ``k8s-edge`` scenario into kwok-managed Node objects, and create / delete them.

Pure part: :func:`node_manifest` builds the Node body of one
:class:`~ladts_policy.sim.config.cluster_config.NodeSpec` (labels ``nvidia.com/gpu.product``,
``ladts.io/gpu-profile``, ``type: kwok``; annotation ``kwok.x-k8s.io/node: fake``;
capacity = allocatable = cpu, memory, pods, ``nvidia.com/gpu``).

I/O part: :func:`create_nodes` / :func:`delete_nodes` / :func:`wait_nodes_ready` through a
``kubernetes.client.CoreV1Api``.

Taints (control-plane.md §3, §5): kwok's documented example taints fake nodes with
``kwok.x-k8s.io/node=fake:NoSchedule`` so real workloads stay off them; that is optional here
(``kwok_taint=True``) and the AIGC pods of :mod:`e2e.emulation.pods` tolerate it either way. The
``node.kubernetes.io/not-ready:NoSchedule`` taint that the ``TaintNodesByCondition`` admission
plugin adds on create (nothing removes it without kube-controller-manager) is stripped by a
PATCH right after creation, so the nodes schedule even where that plugin is enabled.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from e2e.controlplane.components import KWOK_NODE_ANNOTATION as KWOK_ANNOTATION
from e2e.controlplane.components import KWOK_NODE_ANNOTATION_VALUE as KWOK_ANNOTATION_VALUE
from e2e.controlplane.objects import (
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    NOT_READY_TAINT,
    gpu_node_body,
    node_ready,
)
from e2e.controlplane.readiness import wait_until
from e2e.emulation.state import GIB, NodeHardware
from ladts_policy.sim.config.cluster_config import ClusterConfig, NodeSpec

GPU_PROFILE_LABEL = "ladts.io/gpu-profile"
KWOK_TAINT: dict[str, str] = {
    "key": KWOK_ANNOTATION,
    "value": KWOK_ANNOTATION_VALUE,
    "effect": "NoSchedule",
}
#: Product-label fragments of GPUs whose memory is shared with the host (Jetson).
UNIFIED_MEMORY_MARKERS = ("jetson", "orin", "xavier", "tegra")
DEFAULT_MAX_PODS = 110


def load_cluster(name_or_path: str | Path) -> ClusterConfig:
    """Load a ``k8s-edge`` scenario (preset name or YAML path) via the simulator's scenario loader.

    Raises:
        TypeError: The scenario is not a cluster (``k8s-edge``-style) scenario.
    """
    from ladts_policy.sim.config.scenario import load_scenario

    scenario: Any = load_scenario(str(name_or_path))
    cluster = getattr(scenario, "cluster", scenario)
    if not isinstance(cluster, ClusterConfig):
        raise TypeError(f"{name_or_path}: not a k8s-edge scenario (got {type(scenario).__name__})")
    return cluster


def _cpu_quantity(cores: float) -> str:
    """Render CPU cores as a Kubernetes quantity (whole cores, else millicores)."""
    milli = round(cores * 1000)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def _memory_quantity(gib: float) -> str:
    """Render GiB as a Kubernetes quantity (whole GiB, else MiB)."""
    mib = round(gib * 1024)
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def node_resources(
    spec: NodeSpec, gpus: int = 1, max_pods: int = DEFAULT_MAX_PODS
) -> dict[str, str]:
    """Capacity (= allocatable) of one emulated node."""
    return {
        "cpu": _cpu_quantity(spec.cpu),
        "memory": _memory_quantity(spec.memory_gib),
        "pods": str(max_pods),
        GPU_RESOURCE: str(gpus),
    }


def node_manifest(
    spec: NodeSpec, gpus: int = 1, kwok_taint: bool = False, max_pods: int = DEFAULT_MAX_PODS
) -> dict[str, Any]:
    """Return the Node body (a plain dict) for one scenario node.

    Args:
        spec: The scenario node.
        gpus: ``nvidia.com/gpu`` capacity (the scenario models one time-sliced GPU per node).
        kwok_taint: Add kwok's ``kwok.x-k8s.io/node=fake:NoSchedule`` taint.
        max_pods: ``pods`` capacity.
    """
    body = gpu_node_body(
        spec.name,
        node_resources(spec, gpus, max_pods),
        labels={
            "node-role.kubernetes.io/agent": "",
            GPU_PRODUCT_LABEL: spec.profile.product_label,
            GPU_PROFILE_LABEL: spec.profile.name,
        },
        annotations={"node.alpha.kubernetes.io/ttl": "0"},
        taints=[KWOK_TAINT] if kwok_taint else (),
    )
    body["status"]["phase"] = "Running"
    return body


def is_unified_memory(spec: NodeSpec) -> bool:
    """Guess whether the node's GPU shares host memory (Jetson) from its label and name."""
    text = f"{spec.profile.product_label} {spec.profile.name}".lower()
    return any(marker in text for marker in UNIFIED_MEMORY_MARKERS)


def node_hardware(spec: NodeSpec, gpus: int = 1) -> NodeHardware:
    """The exporter-facing facts of one node."""
    return NodeHardware(
        name=spec.name,
        gpu_model_name=spec.profile.product_label,
        gpu_count=gpus,
        vram_mib=spec.profile.vram_gib * 1024.0,
        memory_bytes=int(spec.memory_gib * GIB),
        unified_memory=is_unified_memory(spec),
    )


def remaining_taints(node: Any, kwok_taint: bool) -> list[dict[str, str]] | None:
    """Return the wanted taint list (no not-ready taint), or None when it is already so."""
    current = [
        {"key": t.key, "value": t.value or "", "effect": t.effect}
        for t in (getattr(node.spec, "taints", None) or [])
    ]
    wanted = [t for t in current if t["key"] != NOT_READY_TAINT]
    if kwok_taint and not any(t["key"] == KWOK_ANNOTATION for t in wanted):
        wanted.append(dict(KWOK_TAINT))
    return None if wanted == current else wanted


def create_nodes(
    api: Any, specs: Sequence[NodeSpec], gpus: int = 1, kwok_taint: bool = False
) -> list[str]:
    """Create one Node per spec (replacing any of the same name) and strip the not-ready taint.

    Args:
        api: A ``kubernetes.client.CoreV1Api``.
        specs: Scenario nodes.
        gpus: ``nvidia.com/gpu`` per node.
        kwok_taint: Add kwok's NoSchedule taint.

    Returns:
        The created node names, in order.
    """
    from kubernetes.client.exceptions import ApiException

    names = []
    for spec in specs:
        body = node_manifest(spec, gpus=gpus, kwok_taint=kwok_taint)
        try:
            node = api.create_node(body)
        except ApiException as err:
            if err.status != 409:
                raise
            api.delete_node(spec.name, grace_period_seconds=0)
            _wait_gone(api, spec.name, timeout_s=30.0)
            node = api.create_node(body)
        taints = remaining_taints(node, kwok_taint)
        if taints is not None:
            api.patch_node(spec.name, {"spec": {"taints": taints}})
        names.append(spec.name)
    return names


def _wait_gone(api: Any, name: str, timeout_s: float) -> None:
    """Wait until Node ``name`` no longer exists."""
    wait_until(partial(_gone, api, name), f"node {name} to be deleted", timeout_s)


def _gone(api: Any, name: str) -> bool:
    """True when Node ``name`` does not exist."""
    from kubernetes.client.exceptions import ApiException

    try:
        api.read_node(name)
    except ApiException as err:
        if err.status == 404:
            return True
        raise
    return False


def delete_nodes(api: Any, names: Iterable[str]) -> None:
    """Delete Nodes by name; missing ones are ignored."""
    from kubernetes.client.exceptions import ApiException

    for name in names:
        try:
            api.delete_node(name, grace_period_seconds=0)
        except ApiException as err:
            if err.status != 404:
                raise


def node_is_ready(node: Any) -> bool:
    """True when the Node has ``Ready=True`` and no not-ready taint."""
    return node_ready(node)


def wait_nodes_ready(api: Any, names: Sequence[str], timeout_s: float = 60.0) -> None:
    """Wait until every named Node is Ready (kwok's node-initialize stage ran).

    Raises:
        NotReadyError: Naming the nodes still not ready.
    """
    pending = set(names)

    def all_ready() -> bool:
        # One list per poll (not one read per node); raw JSON keeps 200 nodes cheap.
        resp = api.list_node(_preload_content=False)
        for item in json.loads(resp.data)["items"]:
            conditions = (item.get("status") or {}).get("conditions") or []
            taints = (item.get("spec") or {}).get("taints") or []
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
            if ready and not any(t["key"] == NOT_READY_TAINT for t in taints):
                pending.discard(item["metadata"]["name"])
        return not pending

    try:
        wait_until(all_ready, "nodes Ready", timeout_s)
    except Exception as err:
        raise type(err)(f"{err}; not Ready: {sorted(pending)[:10]}") from err
