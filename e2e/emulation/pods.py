"""AIGC pod manifests and their annotations (pure, no I/O).

An AIGC pod describes its work in annotations (docs/design.md): ``ladts.io/model``,
``ladts.io/steps`` and optionally ``ladts.io/input-mbit``. The benchmark also stamps the
cluster time at which it created the pod (``emulation.ladts.io/created-s``, a prefix nothing
that schedules reads) so the controller measures latency from creation without relying on
second-resolution timestamps. Every pod the emulation tooling creates carries the label
:data:`APP_LABEL`, which the emulation controller's watch selects on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes.utils import parse_quantity

from e2e.controlplane.objects import GPU_RESOURCE
from e2e.emulation.annotations import CREATED_S

MODEL = "ladts.io/model"
STEPS = "ladts.io/steps"
INPUT_MBIT = "ladts.io/input-mbit"
#: Label on every pod the emulation tooling creates (for list/cleanup selectors).
APP_LABEL = ("app.kubernetes.io/part-of", "ladts-emulation")
IMAGE = "registry.invalid/ladts/diffusion:emulated"
KWOK_TOLERATION = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}


@dataclass(frozen=True)
class AigcWork:
    """The work an AIGC pod asks for, read from its annotations."""

    model: str
    steps: int
    input_mbit: float = 0.0
    created_s: float | None = None


def parse_work(annotations: dict[str, str] | None) -> AigcWork | None:
    """Return the pod's work, or None when it is not an AIGC pod (or malformed).

    Args:
        annotations: ``metadata.annotations`` of the pod (may be None).
    """
    if not annotations or MODEL not in annotations or STEPS not in annotations:
        return None
    try:
        steps = int(annotations[STEPS])
        mbit = float(annotations.get(INPUT_MBIT, "0") or 0.0)
        created = annotations.get(CREATED_S)
        created_s = float(created) if created not in (None, "") else None
    except ValueError:
        return None
    if steps < 1:
        return None
    return AigcWork(model=annotations[MODEL], steps=steps, input_mbit=mbit, created_s=created_s)


def aigc_pod_manifest(
    name: str,
    model: str,
    steps: int,
    *,
    cpu: float = 1.0,
    memory_gib: float = 4.0,
    scheduler_name: str = "default-scheduler",
    namespace: str = "default",
    input_mbit: float | None = None,
    created_s: float | None = None,
    exclusive: bool = False,
) -> dict[str, Any]:
    """Return a Pod body for one AIGC request.

    Args:
        name: Pod name.
        model: Diffusion model (``ladts.io/model``).
        steps: Denoising steps (``ladts.io/steps``).
        cpu: CPU request in cores.
        memory_gib: Host memory request in GiB.
        scheduler_name: ``spec.schedulerName``.
        namespace: Namespace.
        input_mbit: Optional ``ladts.io/input-mbit``.
        created_s: Optional cluster time of creation (``emulation.ladts.io/created-s``).
        exclusive: Request ``nvidia.com/gpu: 1`` (exclusive mode: the pod waits unscheduled
            until a GPU is free, instead of queueing at the node's model server).
    """
    annotations = {MODEL: model, STEPS: str(steps)}
    if input_mbit is not None:
        annotations[INPUT_MBIT] = f"{input_mbit:.3f}"
    if created_s is not None:
        annotations[CREATED_S] = f"{created_s:.6f}"
    requests = {"cpu": f"{round(cpu * 1000)}m", "memory": f"{round(memory_gib * 1024)}Mi"}
    if exclusive:
        requests[GPU_RESOURCE] = "1"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {APP_LABEL[0]: APP_LABEL[1]},
            "annotations": annotations,
        },
        "spec": {
            "schedulerName": scheduler_name,
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 0,
            "tolerations": [dict(KWOK_TOLERATION)],
            "containers": [
                {
                    "name": "diffusion",
                    "image": IMAGE,
                    "resources": {"requests": requests, "limits": dict(requests)},
                }
            ],
        },
    }


def memory_request_bytes(pod: dict[str, Any]) -> int:
    """Sum of the containers' memory requests in bytes (``kubernetes.utils.parse_quantity``).

    Args:
        pod: The pod as the API returns it (camelCase JSON).

    Raises:
        ValueError: A request is not a valid quantity.
    """
    total = 0
    for container in (pod.get("spec") or {}).get("containers") or []:
        requests = (container.get("resources") or {}).get("requests") or {}
        if "memory" in requests:
            total += int(parse_quantity(str(requests["memory"])))  # type: ignore[no-untyped-call]
    return total
