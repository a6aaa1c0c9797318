"""AIGC pod manifests and their annotations (pure, no I/O).

An AIGC pod describes its work in annotations (DESIGN.md): ``ladts.io/model``,
``ladts.io/steps`` and optionally ``ladts.io/input-mbit``. The benchmark also stamps the
cluster time at which it created the pod (``ladts.io/emulation-created-s``) so the controller
measures service delay from creation without relying on second-resolution timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MODEL = "ladts.io/model"
STEPS = "ladts.io/steps"
INPUT_MBIT = "ladts.io/input-mbit"
CREATED_S = "ladts.io/emulation-created-s"
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
        created_s: Optional cluster time of creation (``ladts.io/emulation-created-s``).
    """
    annotations = {MODEL: model, STEPS: str(steps)}
    if input_mbit is not None:
        annotations[INPUT_MBIT] = f"{input_mbit:.3f}"
    if created_s is not None:
        annotations[CREATED_S] = f"{created_s:.6f}"
    requests = {"cpu": f"{round(cpu * 1000)}m", "memory": f"{round(memory_gib * 1024)}Mi"}
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
