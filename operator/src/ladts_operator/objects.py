"""Read nodes and AIGC pods out of Kubernetes JSON objects (pure, no I/O).

Works on the plain mappings kopf hands to handlers, the client's ``to_dict()`` with camelCase
keys (``ApiClient().sanitize_for_serialization``), and the ``Pod`` / ``Node`` objects inside
extender requests. Quantities are parsed with ``kubernetes.utils.parse_quantity``.

Annotations and labels read (docs/design.md, "Who uses it and how"):

- pod ``ladts.io/model`` (required: marks an AIGC pod), ``ladts.io/steps`` (positive integer),
  ``ladts.io/input-mbit`` (optional, non-negative);
- pod ``ladts.io/decision`` (written by our bind: its ``time`` is the exact bind time);
- node label ``ladts.io/gpu-profile`` (a profile name), else ``nvidia.com/gpu.product``
  (matched to a profile's ``product_label``);
- node label ``ladts.io/concurrency`` (pods the node's model server runs at once, default 1);
- node annotation ``ladts.io/resident-models`` (comma-separated models the node's model
  server holds, least recently used first; written by the model server where it can).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubernetes.utils import parse_quantity

MODEL_ANNOTATION = "ladts.io/model"
STEPS_ANNOTATION = "ladts.io/steps"
INPUT_MBIT_ANNOTATION = "ladts.io/input-mbit"
DECISION_ANNOTATION = "ladts.io/decision"
PROFILE_LABEL = "ladts.io/gpu-profile"
PRODUCT_LABEL = "nvidia.com/gpu.product"
CONCURRENCY_LABEL = "ladts.io/concurrency"
RESIDENT_ANNOTATION = "ladts.io/resident-models"
GIB = 1024.0**3


class BadAnnotation(ValueError):
    """An AIGC pod's annotations cannot be used; the message is shown to the user."""


@dataclass(frozen=True)
class PodWork:
    """What an AIGC pod asks for."""

    model: str
    """Model name."""

    steps: int
    """Denoising steps (> 0)."""

    input_mbit: float = 0.0
    """Request payload, megabits."""


@dataclass(frozen=True)
class NodeObservation:
    """The parts of a Node object the state store keeps."""

    name: str
    """Node name."""

    ready: bool
    """Ready condition is True."""

    cordoned: bool
    """``spec.unschedulable``."""

    labels: Mapping[str, str]
    """Node labels (profile, product, concurrency)."""

    cpu: float
    """Allocatable CPU cores (0 when absent)."""

    memory_gib: float
    """Allocatable memory, GiB (0 when absent)."""

    internal_ip: str | None
    """First InternalIP address (maps node-exporter's ``instance`` to the node)."""

    concurrency: int
    """Pods the model server runs at once."""

    declared_resident: tuple[str, ...]
    """Models the node's annotation declares loaded (LRU first)."""


@dataclass(frozen=True)
class PodObservation:
    """The parts of an AIGC Pod object the state store keeps."""

    uid: str
    """Pod UID."""

    namespace: str
    """Namespace."""

    name: str
    """Name."""

    work: PodWork | None
    """Model and steps; None when the annotations are bad (see ``error``)."""

    error: str | None
    """Why the annotations are unusable, None when fine."""

    node: str | None
    """``spec.nodeName``: the node it is bound to, None while unscheduled."""

    bind_s: float | None
    """When it was bound (Unix s): our decision's time, else the PodScheduled condition."""

    finished: bool
    """Phase Succeeded or Failed."""

    finish_s: float | None
    """When its containers terminated (Unix s), None if unknown or unfinished."""

    cpu: float
    """Sum of container CPU requests, cores."""

    memory_gib: float
    """Sum of container memory requests, GiB."""

    bind_exact: bool = False
    """``bind_s`` is exact (our bind or our decision annotation), not the PodScheduled
    condition's one-second resolution."""

    created_s: float | None = None
    """``metadata.creationTimestamp`` (Unix s): the service delay runs from here to finish."""

    finish_whole_second: bool = False
    """``finish_s`` came from an RFC 3339 time without a fraction (the kubelet's and kwok's
    ``finishedAt``): the true finish lies in ``[finish_s, finish_s + 1)``
    (:func:`ladts_operator.state.refine_finish`)."""


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _str_map(obj: Any) -> dict[str, str]:
    if not isinstance(obj, Mapping):
        return {}
    return {str(k): str(v) for k, v in obj.items() if isinstance(v, str)}


def timestamp_s(value: Any) -> float | None:
    """Parse an RFC 3339 time (as the API writes it) or a datetime into Unix seconds."""
    if isinstance(value, datetime):
        return value.timestamp()
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _whole_second(value: Any) -> bool:
    """An RFC 3339 string without fractional seconds (a datetime carries its own fraction)."""
    if isinstance(value, datetime):
        return value.microsecond == 0
    return isinstance(value, str) and "." not in value


def quantity(value: Any) -> float:
    """A Kubernetes quantity as a float (0 for missing or unparsable values)."""
    if value is None:
        return 0.0
    try:
        return float(parse_quantity(value))  # type: ignore[no-untyped-call]
    except (ValueError, TypeError, ArithmeticError):
        return 0.0


def is_aigc(pod: Any) -> bool:
    """Whether a pod opts in: it carries ``ladts.io/model``."""
    return MODEL_ANNOTATION in _str_map(_get(pod, "metadata", "annotations"))


def parse_work(annotations: Mapping[str, str]) -> PodWork:
    """Model, steps and payload of an AIGC pod.

    Raises:
        BadAnnotation: the model is empty, steps is not a positive integer, or input-mbit is
            not a non-negative number.
    """
    model = annotations.get(MODEL_ANNOTATION, "").strip()
    if not model:
        raise BadAnnotation(f"annotation {MODEL_ANNOTATION} is empty")
    raw_steps = annotations.get(STEPS_ANNOTATION)
    if raw_steps is None:
        raise BadAnnotation(f"annotation {STEPS_ANNOTATION} is missing")
    try:
        steps = int(raw_steps.strip())
    except ValueError:
        steps = 0
    if steps < 1 or steps > 100_000:
        raise BadAnnotation(
            f"annotation {STEPS_ANNOTATION}={raw_steps!r} is not a positive integer"
        )
    raw_mbit = annotations.get(INPUT_MBIT_ANNOTATION, "0")
    try:
        mbit = float(raw_mbit)
    except ValueError:
        mbit = -1.0
    if not (math.isfinite(mbit) and mbit >= 0.0):
        raise BadAnnotation(
            f"annotation {INPUT_MBIT_ANNOTATION}={raw_mbit!r} is not a non-negative number"
        )
    return PodWork(model=model, steps=steps, input_mbit=mbit)


def parse_node(node: Any) -> NodeObservation:
    """Read a Node object.

    Raises:
        ValueError: the object has no ``metadata.name``.
    """
    name = _get(node, "metadata", "name")
    if not isinstance(name, str) or not name:
        raise ValueError("node object without metadata.name")
    labels = _str_map(_get(node, "metadata", "labels"))
    annotations = _str_map(_get(node, "metadata", "annotations"))
    conditions = _get(node, "status", "conditions") or []
    ready = any(
        isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True"
        for c in conditions
    )
    alloc = _get(node, "status", "allocatable") or {}
    addresses = _get(node, "status", "addresses") or []
    internal = next(
        (a.get("address") for a in addresses
         if isinstance(a, Mapping) and a.get("type") == "InternalIP"),
        None,
    )
    try:
        concurrency = max(int(labels.get(CONCURRENCY_LABEL, "1")), 1)
    except ValueError:
        concurrency = 1
    resident = tuple(
        m.strip() for m in annotations.get(RESIDENT_ANNOTATION, "").split(",") if m.strip()
    )
    return NodeObservation(
        name=name,
        ready=ready,
        cordoned=bool(_get(node, "spec", "unschedulable")),
        labels=labels,
        cpu=quantity(_get(alloc, "cpu")) if isinstance(alloc, Mapping) else 0.0,
        memory_gib=quantity(_get(alloc, "memory")) / GIB if isinstance(alloc, Mapping) else 0.0,
        internal_ip=internal if isinstance(internal, str) else None,
        concurrency=concurrency,
        declared_resident=resident,
    )


def pod_requests(pod: Any) -> tuple[float, float]:
    """Sum of the containers' (cpu cores, memory GiB) requests."""
    cpu = mem = 0.0
    for container in _get(pod, "spec", "containers") or []:
        requests = _get(container, "resources", "requests")
        if isinstance(requests, Mapping):
            cpu += quantity(requests.get("cpu"))
            mem += quantity(requests.get("memory")) / GIB
    return cpu, mem


def decision_time(annotations: Mapping[str, str]) -> float | None:
    """The bind time our decision annotation recorded, if any."""
    raw = annotations.get(DECISION_ANNOTATION)
    if not raw:
        return None
    try:
        value = json.loads(raw).get("time")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


def parse_pod(pod: Any) -> PodObservation:
    """Read an AIGC Pod object (bad annotations give ``work=None`` and an ``error``).

    Raises:
        ValueError: the object has no ``metadata.uid``.
    """
    meta = _get(pod, "metadata") or {}
    uid = _get(meta, "uid")
    if not isinstance(uid, str) or not uid:
        raise ValueError("pod object without metadata.uid")
    annotations = _str_map(_get(meta, "annotations"))
    work: PodWork | None
    try:
        work, error = parse_work(annotations), None
    except BadAnnotation as exc:
        work, error = None, str(exc)
    node = _get(pod, "spec", "nodeName")
    phase = _get(pod, "status", "phase")
    bind_s = decision_time(annotations)
    bind_exact = bind_s is not None
    if bind_s is None:
        for cond in _get(pod, "status", "conditions") or []:
            if isinstance(cond, Mapping) and cond.get("type") == "PodScheduled" and cond.get(
                "status"
            ) == "True":
                bind_s = timestamp_s(cond.get("lastTransitionTime"))
    if bind_s is None and node:
        bind_s = timestamp_s(_get(meta, "creationTimestamp"))
    finish_s, finish_raw = None, None
    for status in _get(pod, "status", "containerStatuses") or []:
        raw = _get(status, "state", "terminated", "finishedAt")
        t = timestamp_s(raw)
        if t is not None and (finish_s is None or t > finish_s):
            finish_s, finish_raw = t, raw
    cpu, mem = pod_requests(pod)
    return PodObservation(
        uid=uid,
        namespace=str(_get(meta, "namespace") or "default"),
        name=str(_get(meta, "name") or uid),
        work=work,
        error=error,
        node=node if isinstance(node, str) and node else None,
        bind_s=bind_s,
        finished=phase in ("Succeeded", "Failed"),
        finish_s=finish_s,
        cpu=cpu,
        memory_gib=mem,
        bind_exact=bind_exact,
        created_s=timestamp_s(_get(meta, "creationTimestamp")),
        finish_whole_second=_whole_second(finish_raw),
    )
