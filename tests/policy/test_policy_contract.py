"""The ONNX serving contract (pure: described signatures, no onnx needed)."""

from __future__ import annotations

import json

import pytest

from ladts_policy.contract import SPEC, ContractError
from ladts_policy.policy_contract import (
    INPUTS,
    KEY_SPEC,
    KEY_SPEC_HASH,
    OUTPUTS,
    fixed_dims,
    make_metadata,
    spec_hash,
    validate_metadata,
    validate_policy,
)

META = make_metadata(policy_version="v7", diffusion_steps=5, latent_dim=3,
                     training_scenario="k8s-edge", training_seed=1, created="2026-01-01")


def signature(**changes):
    info = validate_metadata(META)
    sizes = fixed_dims(info)
    def shape(dims):
        return [d if d in ("B", "N") else sizes[d] for d in dims]
    ins = [(t.name, t.dtype, shape(t.dims)) for t in INPUTS]
    outs = [(t.name, t.dtype, shape(t.dims)) for t in OUTPUTS]
    for name, (dtype, dims) in changes.items():
        ins = [(n, dtype, dims) if n == name else (n, d, s) for n, d, s in ins]
    return ins, outs


def test_valid_policy_reports_its_info():
    info = validate_policy(META, *signature())
    assert (info.policy_version, info.diffusion_steps, info.latent_dim) == ("v7", 5, 3)
    assert META[KEY_SPEC_HASH] == spec_hash(SPEC.to_dict())


@pytest.mark.parametrize(("changes", "message"), [
    ({"node_mask": ("float32", ["B", "N"])}, "dtype float32 != bool"),
    ({"node_features": ("float32", ["B", 20, SPEC.dims["node"]])}, "must be dynamic"),
    ({"node_features": ("float32", ["B", "N", 3])}, "dim F is 3"),
    ({"noise": ("float32", ["B", 4, "N", 3])}, "dim K is 4"),
    ({"latent_start": ("float32", ["B", "N"])}, "rank 2"),
])
def test_signature_mismatches_are_named(changes, message):
    with pytest.raises(ContractError, match=message):
        validate_policy(META, *signature(**changes))


def test_missing_input_and_bad_metadata_are_named():
    ins, outs = signature()
    with pytest.raises(ContractError, match="policy inputs"):
        validate_policy(META, ins[:-1], outs)
    spec = json.loads(META[KEY_SPEC])
    spec["node"] = spec["node"][:-1]
    edited = {**META, KEY_SPEC: json.dumps(spec)}
    with pytest.raises(ContractError, match="differs from this build"):
        validate_metadata(edited)
    with pytest.raises(ContractError, match="must be >= 1"):
        validate_metadata({**META, "ladts.diffusion_steps": "0"})
