"""kwok stage configuration that leaves AIGC pods to the emulation controller.

kwok's "fast" pod stages (``pod-ready``: bound Pending pod → Running at once; ``pod-complete``:
Job pods → Succeeded) would move an AIGC pod to Running the moment it is bound, while in the
modelled discipline it first queues at its node. :func:`exclude_aigc_pods` adds one
``matchExpressions`` entry to every Pod stage except the deletion stage::

    - key: '.metadata.annotations["ladts.io/model"]'
      operator: DoesNotExist

so kwok ignores annotated pods (``DoesNotExist`` also matches pods without annotations at all),
still handles their deletion (``pod-delete``), and still runs every other pod and all node
stages as before. The emulation controller then owns the AIGC pods' phases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MODEL_ANNOTATION = "ladts.io/model"
AIGC_EXCLUSION: dict[str, Any] = {
    "key": f'.metadata.annotations["{MODEL_ANNOTATION}"]',
    "operator": "DoesNotExist",
}
#: Pod stages that stay in force for AIGC pods (kwok finishes their deletion).
KEEP_FOR_AIGC = ("pod-delete",)


def _is_pod_stage(doc: Any) -> bool:
    """True for a ``kind: Stage`` document acting on core/v1 Pods."""
    if not isinstance(doc, dict) or doc.get("kind") != "Stage":
        return False
    ref = (doc.get("spec") or {}).get("resourceRef") or {}
    return ref.get("kind") == "Pod" and ref.get("apiGroup", "v1") == "v1"


def exclude_aigc_pods(documents: list[Any]) -> list[Any]:
    """Return the stage documents with AIGC pods excluded from the lifecycle stages.

    Args:
        documents: Parsed YAML documents of a kwok ``--config`` file (stages and others).

    Returns:
        New documents; non-Pod stages, ``pod-delete`` and non-stage documents are unchanged.
    """
    out: list[Any] = []
    for doc in documents:
        name = (doc or {}).get("metadata", {}).get("name", "") if isinstance(doc, dict) else ""
        if not _is_pod_stage(doc) or name in KEEP_FOR_AIGC:
            out.append(doc)
            continue
        spec = dict(doc["spec"])
        selector = dict(spec.get("selector") or {})
        expressions = list(selector.get("matchExpressions") or [])
        if AIGC_EXCLUSION not in expressions:
            expressions.append(dict(AIGC_EXCLUSION))
        selector["matchExpressions"] = expressions
        spec["selector"] = selector
        out.append({**doc, "spec": spec})
    return out


def write_aigc_stages(base: Path, out: Path) -> Path:
    """Read kwok's stage file ``base`` (e.g. build.sh's ``stages-fast.yaml``), write ``out``."""
    documents = [d for d in yaml.safe_load_all(base.read_text(encoding="utf-8")) if d]
    out.write_text(yaml.safe_dump_all(exclude_aigc_pods(documents), sort_keys=False), "utf-8")
    return out
