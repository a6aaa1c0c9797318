"""kwok stages that run AIGC pods from the emulation controller's annotations (kwok v0.8.0).

Workload model (``docs/design.md``): an AIGC pod is a thin client of its node's model server, so a
bound pod turns **Running at once** (kwok's stock ``pod-ready`` stage, unchanged) and its request
waits in the server's FIFO; it turns **Succeeded** when its image is done. kwok does the timed
transition:

- ``aigc-pod-complete``: a Running, not-deleting pod with annotation
  ``emulation.ladts.io/finish-time`` moves to ``Succeeded`` (container terminated, exit code 0,
  ``startedAt`` = ``emulation.ladts.io/start-time``) after ``delay.durationFrom`` that
  annotation. kwok v0.8.0 (``pkg/utils/lifecycle/value_duration_from.go``) parses a string that
  is an RFC 3339 time as ``time - now``; a Modified event re-matches the pod and replaces its
  pending job (``pod_controller.go``, ``addStageJob``), so a re-placed pod's new finish applies.
- ``aigc-pod-reject``: a Running pod with ``emulation.ladts.io/rejected`` (its node cannot serve
  the model) moves to ``Failed`` with that message at once.
- kwok's stock ``pod-complete`` (Job-owned pods complete after ~1 s) skips AIGC pods
  (annotation ``ladts.io/model``), so only the modelled finish completes them.

Every other stage (node heartbeats, ``pod-ready``, ``pod-delete``) stays as kwok ships it.

The same file carries a ``KwokConfiguration`` raising ``podPlayStageParallelism`` from kwok's
default 4 to :data:`POD_PLAY_STAGE_PARALLELISM`: each stage play is one synchronous API call
and every AIGC pod needs two (Running, Succeeded), so with 4 workers and a ~100 ms apiserver
round trip on a loaded machine kwok caps near 20 pods/s and Succeeded falls behind the
modelled finish (measured: 38 s late on average at 20 pods/s, 200 nodes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from e2e.emulation.annotations import FINISH_TIME, REJECTED, START_TIME

MODEL_ANNOTATION = "ladts.io/model"
#: kwok workers applying pod stages (kwok's default: 4).
POD_PLAY_STAGE_PARALLELISM = 32
AIGC_EXCLUSION: dict[str, Any] = {
    "key": f'.metadata.annotations["{MODEL_ANNOTATION}"]',
    "operator": "DoesNotExist",
}
#: Stock Pod stages that would move an AIGC pod on their own schedule.
EXCLUDE_AIGC_FROM = ("pod-complete",)
_POD_REF = {"apiGroup": "v1", "kind": "Pod"}
_NOT_DELETING = {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}
_RUNNING = {"key": ".status.phase", "operator": "In", "values": ["Running"]}

_SUCCEEDED_TEMPLATE = f"""\
{{{{ $now := Now }}}}
{{{{ $started := or (index .metadata.annotations "{START_TIME}") $now }}}}
conditions:
- lastTransitionTime: {{{{ $now | Quote }}}}
  status: "False"
  reason: PodCompleted
  type: Ready
- lastTransitionTime: {{{{ $now | Quote }}}}
  status: "False"
  reason: PodCompleted
  type: ContainersReady
containerStatuses:
{{{{ range .spec.containers }}}}
- image: {{{{ .image | Quote }}}}
  name: {{{{ .name | Quote }}}}
  ready: false
  restartCount: 0
  started: false
  state:
    terminated:
      exitCode: 0
      finishedAt: {{{{ $now | Quote }}}}
      reason: Completed
      startedAt: {{{{ $started | Quote }}}}
{{{{ end }}}}
phase: Succeeded
"""

_FAILED_TEMPLATE = f"""\
{{{{ $now := Now }}}}
containerStatuses:
{{{{ range .spec.containers }}}}
- image: {{{{ .image | Quote }}}}
  name: {{{{ .name | Quote }}}}
  ready: false
  restartCount: 0
  started: false
  state:
    terminated:
      exitCode: 1
      finishedAt: {{{{ $now | Quote }}}}
      reason: EmulationRejected
      startedAt: {{{{ $now | Quote }}}}
{{{{ end }}}}
message: {{{{ index .metadata.annotations "{REJECTED}" | Quote }}}}
reason: EmulationRejected
phase: Failed
"""


def _annotation_key(name: str) -> str:
    """kwok's jq path of one annotation."""
    return f'.metadata.annotations["{name}"]'


def aigc_stages() -> list[dict[str, Any]]:
    """The two stages this module adds (documents of a kwok ``--config`` file)."""
    complete = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": "aigc-pod-complete"},
        "spec": {
            "resourceRef": dict(_POD_REF),
            "selector": {
                "matchExpressions": [
                    dict(_NOT_DELETING),
                    dict(_RUNNING),
                    {"key": _annotation_key(FINISH_TIME), "operator": "Exists"},
                ]
            },
            "delay": {
                "durationMilliseconds": 0,
                "durationFrom": {"jq": {"expression": _annotation_key(FINISH_TIME)}},
            },
            "next": {"statusTemplate": _SUCCEEDED_TEMPLATE},
        },
    }
    reject = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": "aigc-pod-reject"},
        "spec": {
            "resourceRef": dict(_POD_REF),
            "selector": {
                "matchExpressions": [
                    dict(_NOT_DELETING),
                    dict(_RUNNING),
                    {"key": _annotation_key(REJECTED), "operator": "Exists"},
                    {"key": _annotation_key(FINISH_TIME), "operator": "DoesNotExist"},
                ]
            },
            "next": {"statusTemplate": _FAILED_TEMPLATE},
        },
    }
    return [complete, reject]


def _is_pod_stage(doc: Any) -> bool:
    """True for a ``kind: Stage`` document acting on core/v1 Pods."""
    if not isinstance(doc, dict) or doc.get("kind") != "Stage":
        return False
    ref = (doc.get("spec") or {}).get("resourceRef") or {}
    return ref.get("kind") == "Pod" and ref.get("apiGroup", "v1") == "v1"


def with_aigc_stages(documents: list[Any]) -> list[Any]:
    """kwok's stage documents with AIGC pods excluded from stock completion, plus ours.

    Args:
        documents: Parsed YAML documents of a kwok ``--config`` file (stages and others).
    """
    out: list[Any] = []
    for doc in documents:
        name = (doc.get("metadata") or {}).get("name", "") if isinstance(doc, dict) else ""
        if not _is_pod_stage(doc) or name not in EXCLUDE_AIGC_FROM:
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
    return out + aigc_stages()


def kwok_configuration(pod_parallelism: int = POD_PLAY_STAGE_PARALLELISM) -> dict[str, Any]:
    """The ``KwokConfiguration`` document of the stage file (kwok reads it from ``--config``)."""
    return {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokConfiguration",
        # A KwokConfiguration read from a file is not defaulted: every option kwok needs is
        # spelled out with kwok v0.8.0's defaults (zz_generated.defaults.go) but ours.
        "options": {
            "cidr": "10.0.0.0/24",
            "podPlayStageParallelism": pod_parallelism,
            "nodePlayStageParallelism": 4,
            "nodeLeaseParallelism": 4,
            "podsOnNodeSyncParallelism": 1,
            "enableDebuggingHandlers": True,
            "enableContentionProfiling": False,
            "enableProfilingHandler": True,
            "enablePodsOnNodeSyncListPager": True,
            "enablePodsOnNodeSyncStreamWatch": False,
        },
    }


def write_aigc_stages(base: Path, out: Path) -> Path:
    """Read kwok's stage file ``base`` (build.sh's ``stages-fast.yaml``), write ``out``."""
    documents = [d for d in yaml.safe_load_all(base.read_text(encoding="utf-8")) if d]
    documents = with_aigc_stages(documents)
    if not any(isinstance(d, dict) and d.get("kind") == "KwokConfiguration" for d in documents):
        documents.append(kwok_configuration())
    out.write_text(yaml.safe_dump_all(documents, sort_keys=False), "utf-8")
    return out
