"""The feature contract between training and serving, as data (numpy-free, torch-free).

The spec lists, in order, the per-node, task and global features that
:mod:`ladts_policy.features` produces, with the transform that normalises each one. Export
writes :meth:`FeatureSpec.to_dict` as JSON into the ONNX metadata; the operator calls
:func:`validate` on it when a policy loads and refuses a policy whose spec differs from the
encoder it runs. Any change to names, order, transforms, scales or the model vocabulary must
bump :data:`FEATURE_SPEC_VERSION`.

Transforms: ``identity`` gives ``x / scale``; ``log1p`` gives ``log(1 + x / scale)``.
Non-finite inputs (a model that cannot run on a node) encode as 0; padded slots are all 0.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

FEATURE_SPEC_VERSION = "ladts-features/2"
"""Version of the encoding; bump on any change to the spec below."""

TRANSFORMS = ("identity", "log1p")
"""Normalising transforms a feature may use."""

MODEL_VOCAB = ("sd15", "sd-turbo", "sdxl", "sdxl-turbo", "sd3-medium", "flux-schnell", "other")
"""Models with their own one-hot task feature; any other model name encodes as ``other``."""


class ContractError(ValueError):
    """A feature spec (e.g. from ONNX metadata) does not match this build's encoder."""


@dataclass(frozen=True)
class FeatureDef:
    """One scalar feature."""

    name: str
    """Feature name (unique within its group)."""

    transform: str
    """``identity`` or ``log1p`` (see the module docstring)."""

    scale: float
    """Divisor applied before the transform, in the raw feature's unit."""

    doc: str
    """Meaning and unit of the raw value."""


NODE_FEATURES: tuple[FeatureDef, ...] = (
    FeatureDef("present", "identity", 1.0, "1 if the node is in the cluster (padded slots 0)"),
    FeatureDef("ready", "identity", 1.0, "1 if schedulable (not cordoned, not draining)"),
    FeatureDef("fits", "identity", 1.0, "1 if the task's model can ever run (timings, VRAM)"),
    FeatureDef("resident", "identity", 1.0, "1 if the task's model is loaded on the node"),
    FeatureDef("speed", "log1p", 10.0, "estimated denoising steps/s of the task's model"),
    FeatureDef("service_s", "log1p", 1.0, "estimated warm service time of this task, s"),
    FeatureDef("load_s", "identity", 60.0, "estimated load time of the task's model, s"),
    FeatureDef("vram_gib", "identity", 80.0, "usable GPU memory, GiB"),
    FeatureDef("vram_free_gib", "identity", 80.0, "GPU memory not held by loaded models, GiB"),
    FeatureDef("queue_len", "log1p", 1.0, "unfinished pods placed on the node"),
    FeatureDef("running", "log1p", 1.0, "pods running now"),
    FeatureDef("backlog_s", "log1p", 1.0, "estimated s until the node's placed pods are done"),
    FeatureDef("concurrency", "identity", 8.0, "pods the node runs at the same time"),
    FeatureDef("requested_fraction", "identity", 1.0, "requested share of allocatable cpu/mem"),
    FeatureDef("est_delay_s", "log1p", 1.0, "estimated service delay of this task there, s"),
    FeatureDef("metrics_age_s", "log1p", 60.0, "age of the node's metrics (last scrape), s"),
    FeatureDef("memory_gib", "identity", 80.0, "GPU memory the task's model needs there, GiB"),
    FeatureDef("free_slots", "identity", 8.0, "pods the node could start now (free GPUs)"),
    FeatureDef("evicted_models", "identity", 4.0, "models a placement here would unload"),
    FeatureDef("evict_popularity", "identity", 1.0, "recent request share of those models"),
    *(FeatureDef(f"loaded={m}", "identity", 1.0, f"1 if {m} is loaded on the node now")
      for m in MODEL_VOCAB),
)
"""Per-node features, one row per node slot, in this order."""

TASK_FEATURES: tuple[FeatureDef, ...] = (
    FeatureDef("steps", "identity", 50.0, "denoising steps"),
    FeatureDef("input_mbit", "log1p", 1.0, "request payload, megabits"),
    FeatureDef("wait_s", "log1p", 1.0, "time already waited since arrival, s"),
    FeatureDef("best_service_s", "log1p", 1.0, "shortest warm service time over fitting nodes"),
    FeatureDef("popularity", "identity", 1.0, "share of the task's model in recent requests"),
    *(FeatureDef(f"model={m}", "identity", 1.0, f"1 if the model is {m}") for m in MODEL_VOCAB),
)
"""Task features, in this order."""

GLOBAL_FEATURES: tuple[FeatureDef, ...] = (
    FeatureDef("nodes_present", "log1p", 10.0, "nodes in the cluster"),
    FeatureDef("ready_fraction", "identity", 1.0, "share of present nodes that are schedulable"),
    FeatureDef("fits_fraction", "identity", 1.0, "share of ready nodes that fit the task's model"),
    FeatureDef("mean_queue_len", "log1p", 1.0, "mean unfinished pods per present node"),
    FeatureDef("busy_fraction", "identity", 1.0, "share of present nodes running a pod"),
    FeatureDef("pending", "log1p", 10.0, "pods waiting unscheduled (no node passes filters)"),
    FeatureDef("holders", "log1p", 1.0, "ready nodes that hold the task's model now"),
)
"""Cluster-wide features, in this order."""


@dataclass(frozen=True)
class FeatureSpec:
    """The whole encoding: version and the three feature groups."""

    version: str = FEATURE_SPEC_VERSION
    """Encoding version."""

    node: tuple[FeatureDef, ...] = NODE_FEATURES
    """Per-node features."""

    task: tuple[FeatureDef, ...] = TASK_FEATURES
    """Task features."""

    glob: tuple[FeatureDef, ...] = GLOBAL_FEATURES
    """Global features."""

    gpu_profiles_sha256: str = ""
    """Digest of the shipped GPU-profile table (:func:`gpu_profiles_digest`); filled in
    :data:`SPEC`. A policy trained on other profiles is refused."""

    @property
    def dims(self) -> dict[str, int]:
        """Widths ``{"node": F, "task": T, "global": G}``."""
        return {"node": len(self.node), "task": len(self.task), "global": len(self.glob)}

    def to_dict(self, node_slots: int | None = None) -> dict[str, Any]:
        """A JSON-serialisable description; ``node_slots`` is added for an exported policy."""
        out: dict[str, Any] = {
            "version": self.version,
            "dims": self.dims,
            "model_vocab": list(MODEL_VOCAB),
            "node": [_def_to_dict(d) for d in self.node],
            "task": [_def_to_dict(d) for d in self.task],
            "global": [_def_to_dict(d) for d in self.glob],
            "gpu_profiles_sha256": self.gpu_profiles_sha256,
        }
        if node_slots is not None:
            out["node_slots"] = int(node_slots)
        return out


def gpu_profiles_digest(text: str | None = None) -> str:
    """SHA-256 of a GPU-profile table (default: the shipped ``scenarios/gpu-profiles.yaml``).

    Hashes the parsed content as canonical JSON, so comments and layout do not count.
    """
    if text is None:
        text = resources.files("ladts_policy.scenarios").joinpath("gpu-profiles.yaml").read_text()
    canonical = json.dumps(yaml.safe_load(text), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


SPEC = FeatureSpec(gpu_profiles_sha256=gpu_profiles_digest())
"""The spec this build encodes."""


def _def_to_dict(d: FeatureDef) -> dict[str, Any]:
    return {"name": d.name, "transform": d.transform, "scale": d.scale}


def validate(spec_dict: Any, *, node_slots: int | None = None) -> None:
    """Check that a spec (e.g. read from ONNX metadata) matches this build's encoder.

    Args:
        spec_dict: the mapping written by :meth:`FeatureSpec.to_dict`.
        node_slots: if given, the spec must declare exactly this many node slots.

    Raises:
        ContractError: naming the first mismatch.
    """
    if not isinstance(spec_dict, dict):
        raise ContractError(f"feature spec must be a mapping, got {type(spec_dict).__name__}")
    expected = SPEC.to_dict()
    if spec_dict.get("version") != SPEC.version:
        raise ContractError(
            f"feature spec version {spec_dict.get('version')!r} != {SPEC.version!r}"
        )
    for key in ("dims", "model_vocab", "node", "task", "global", "gpu_profiles_sha256"):
        if spec_dict.get(key) != expected[key]:
            raise ContractError(f"feature spec field {key!r} differs from this build's encoder")
    if node_slots is not None and spec_dict.get("node_slots") != node_slots:
        raise ContractError(
            f"feature spec node_slots {spec_dict.get('node_slots')!r} != {node_slots}"
        )
    slots = spec_dict.get("node_slots")
    if slots is not None and (not isinstance(slots, int) or isinstance(slots, bool) or slots < 1):
        raise ContractError(f"feature spec node_slots must be a positive integer, got {slots!r}")
