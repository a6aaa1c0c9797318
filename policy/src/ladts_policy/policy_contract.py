"""The ONNX serving contract: what an exported policy takes, returns and declares (no numpy).

A policy file is one ONNX graph with these inputs (``B`` batch, ``N`` nodes: both dynamic,
so one policy serves any node count; ``F``/``T``/``G`` the widths of
:data:`ladts_policy.contract.SPEC`; ``K`` diffusion steps and ``L`` the per-node latent width,
both from the metadata):

==================  =========  ===============  ==============================================
input               dtype      shape            meaning
==================  =========  ===============  ==============================================
``node_features``   float32    [B, N, F]        ``features.encode`` node rows (unpadded)
``node_mask``       bool       [B, N]           valid actions (present, ready, fits)
``task_features``   float32    [B, T]           ``features.encode`` task row
``global_features`` float32    [B, G]           ``features.encode`` global row
``latent_start``    float32    [B, N, L]        warm start of the chain (previous latent of the
                                                same task class), zeros when none
``noise``           float32    [B, K, N, L]     standard normal noise, one draw per denoising
                                                step (an input, never baked in: the operator
                                                seeds it per decision and records the seed)
==================  =========  ===============  ==============================================

Outputs: ``action_probs`` float32 [B, N] (zero on masked nodes, rows sum to 1) and
``latent`` float32 [B, N, L] (the chain's final latent, stored as the next warm start).

Metadata (``metadata_props``, all strings): :data:`METADATA_KEYS`. ``ladts.feature_spec`` is
the JSON of ``contract.SPEC.to_dict()``, checked with :func:`ladts_policy.contract.validate`;
``ladts.feature_spec_hash`` is :func:`spec_hash` of it.

:func:`validate_policy` checks a policy's declared inputs, outputs and metadata against this
module. It works on plain descriptions (name, element type, shape) so it needs neither onnx
nor onnxruntime; :func:`describe_onnx_session` in the operator builds them from a session.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ladts_policy.contract import SPEC, ContractError, validate

CONTRACT_VERSION = "ladts-policy-onnx/1"
"""Version of this serving contract (``ladts.contract_version`` in the metadata)."""


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of the graph."""

    name: str
    """Tensor name in the graph."""

    dtype: str
    """``float32`` or ``bool``."""

    dims: tuple[str, ...]
    """Symbolic dims: ``B``, ``N`` (dynamic) or ``F``/``T``/``G``/``K``/``L`` (fixed)."""


INPUTS: tuple[TensorSpec, ...] = (
    TensorSpec("node_features", "float32", ("B", "N", "F")),
    TensorSpec("node_mask", "bool", ("B", "N")),
    TensorSpec("task_features", "float32", ("B", "T")),
    TensorSpec("global_features", "float32", ("B", "G")),
    TensorSpec("latent_start", "float32", ("B", "N", "L")),
    TensorSpec("noise", "float32", ("B", "K", "N", "L")),
)
"""Graph inputs, in this order."""

OUTPUTS: tuple[TensorSpec, ...] = (
    TensorSpec("action_probs", "float32", ("B", "N")),
    TensorSpec("latent", "float32", ("B", "N", "L")),
)
"""Graph outputs, in this order."""

DYNAMIC_DIMS = ("B", "N")
"""Dims the graph must leave symbolic (any batch size, any node count)."""

KEY_CONTRACT = "ladts.contract_version"
KEY_SPEC = "ladts.feature_spec"
KEY_SPEC_VERSION = "ladts.feature_spec_version"
KEY_SPEC_HASH = "ladts.feature_spec_hash"
KEY_DIFFUSION_STEPS = "ladts.diffusion_steps"
KEY_LATENT_DIM = "ladts.latent_dim"
KEY_POLICY_VERSION = "ladts.policy_version"
KEY_SCENARIO = "ladts.training_scenario"
KEY_SEED = "ladts.training_seed"
KEY_DATE = "ladts.created"

METADATA_KEYS = (
    KEY_CONTRACT,
    KEY_SPEC,
    KEY_SPEC_VERSION,
    KEY_SPEC_HASH,
    KEY_DIFFUSION_STEPS,
    KEY_LATENT_DIM,
    KEY_POLICY_VERSION,
    KEY_SCENARIO,
    KEY_SEED,
    KEY_DATE,
)
"""Metadata every policy file carries (string values)."""


@dataclass(frozen=True)
class PolicyInfo:
    """What a validated policy declares."""

    policy_version: str
    """Free-form version of the trained policy (shown in /metrics and every decision)."""

    diffusion_steps: int
    """``K``: denoising steps of the actor (the noise input's second dim)."""

    latent_dim: int
    """``L``: per-node latent width."""

    training_scenario: str
    """Scenario the policy was trained on."""

    training_seed: int
    """Training seed."""

    created: str
    """Export date (ISO 8601)."""


def spec_hash(spec_dict: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a feature spec (sorted keys, no spaces)."""
    text = json.dumps(spec_dict, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def fixed_dims(info: PolicyInfo) -> dict[str, int]:
    """Sizes of the fixed symbolic dims for a policy."""
    dims = SPEC.dims
    return {
        "F": dims["node"],
        "T": dims["task"],
        "G": dims["global"],
        "K": info.diffusion_steps,
        "L": info.latent_dim,
    }


def make_metadata(
    *,
    policy_version: str,
    diffusion_steps: int,
    latent_dim: int,
    training_scenario: str,
    training_seed: int,
    created: str,
) -> dict[str, str]:
    """The metadata an exporter writes (the current feature spec included)."""
    spec = SPEC.to_dict()
    return {
        KEY_CONTRACT: CONTRACT_VERSION,
        KEY_SPEC: json.dumps(spec, sort_keys=True),
        KEY_SPEC_VERSION: SPEC.version,
        KEY_SPEC_HASH: spec_hash(spec),
        KEY_DIFFUSION_STEPS: str(diffusion_steps),
        KEY_LATENT_DIM: str(latent_dim),
        KEY_POLICY_VERSION: policy_version,
        KEY_SCENARIO: training_scenario,
        KEY_SEED: str(training_seed),
        KEY_DATE: created,
    }


def _positive_int(meta: Mapping[str, str], key: str) -> int:
    try:
        value = int(meta[key])
    except ValueError:
        raise ContractError(f"metadata {key} must be an integer, got {meta[key]!r}") from None
    if value < 1:
        raise ContractError(f"metadata {key} must be >= 1, got {value}")
    return value


def validate_metadata(meta: Mapping[str, str]) -> PolicyInfo:
    """Check the metadata of a policy file; return what it declares.

    Raises:
        ContractError: naming the first missing key or mismatch.
    """
    missing = [k for k in METADATA_KEYS if k not in meta]
    if missing:
        raise ContractError(f"policy metadata lacks {', '.join(missing)}")
    if meta[KEY_CONTRACT] != CONTRACT_VERSION:
        raise ContractError(f"contract version {meta[KEY_CONTRACT]!r} != {CONTRACT_VERSION!r}")
    try:
        spec = json.loads(meta[KEY_SPEC])
    except json.JSONDecodeError as exc:
        raise ContractError(f"metadata {KEY_SPEC} is not JSON: {exc}") from None
    validate(spec)
    if meta[KEY_SPEC_VERSION] != SPEC.version:
        raise ContractError(f"feature spec version {meta[KEY_SPEC_VERSION]!r} != {SPEC.version!r}")
    if meta[KEY_SPEC_HASH] != spec_hash(spec):
        raise ContractError(f"{KEY_SPEC_HASH} does not match the embedded feature spec")
    try:
        seed = int(meta[KEY_SEED])
    except ValueError:
        raise ContractError(f"metadata {KEY_SEED} must be an integer") from None
    return PolicyInfo(
        policy_version=meta[KEY_POLICY_VERSION],
        diffusion_steps=_positive_int(meta, KEY_DIFFUSION_STEPS),
        latent_dim=_positive_int(meta, KEY_LATENT_DIM),
        training_scenario=meta[KEY_SCENARIO],
        training_seed=seed,
        created=meta[KEY_DATE],
    )


def validate_signature(
    inputs: Sequence[tuple[str, str, Sequence[int | str | None]]],
    outputs: Sequence[tuple[str, str, Sequence[int | str | None]]],
    info: PolicyInfo,
) -> None:
    """Check the graph's inputs and outputs against the contract.

    Each is ``(name, dtype, shape)``, shape entries an int for a fixed dim and a string or
    None for a symbolic one.

    Raises:
        ContractError: naming the first mismatch.
    """
    sizes = fixed_dims(info)
    for kind, specs, got in (("input", INPUTS, inputs), ("output", OUTPUTS, outputs)):
        by_name = {name: (dtype, tuple(shape)) for name, dtype, shape in got}
        expected_names = [s.name for s in specs]
        if sorted(by_name) != sorted(expected_names):
            raise ContractError(
                f"policy {kind}s {sorted(by_name)} != contract {sorted(expected_names)}"
            )
        for spec in specs:
            dtype, shape = by_name[spec.name]
            if dtype != spec.dtype:
                raise ContractError(f"{kind} {spec.name}: dtype {dtype} != {spec.dtype}")
            if len(shape) != len(spec.dims):
                raise ContractError(
                    f"{kind} {spec.name}: rank {len(shape)} != {len(spec.dims)} {spec.dims}"
                )
            for dim, actual in zip(spec.dims, shape, strict=True):
                if dim in DYNAMIC_DIMS:
                    if isinstance(actual, int):
                        raise ContractError(
                            f"{kind} {spec.name}: dim {dim} must be dynamic, is fixed {actual}"
                        )
                elif actual != sizes[dim]:
                    raise ContractError(
                        f"{kind} {spec.name}: dim {dim} is {actual!r}, expected {sizes[dim]}"
                    )


def validate_policy(
    meta: Mapping[str, str],
    inputs: Sequence[tuple[str, str, Sequence[int | str | None]]],
    outputs: Sequence[tuple[str, str, Sequence[int | str | None]]],
) -> PolicyInfo:
    """:func:`validate_metadata` then :func:`validate_signature`; return the policy info."""
    info = validate_metadata(meta)
    validate_signature(inputs, outputs, info)
    return info
