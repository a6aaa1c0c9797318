"""Feature encoding and the contract."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from ladts_policy.contract import (
    MODEL_VOCAB,
    SPEC,
    ContractError,
    FeatureSpec,
    gpu_profiles_digest,
    validate,
)
from ladts_policy.features import (
    GLOBAL_FEATURE_NAMES,
    NODE_FEATURE_NAMES,
    TASK_FEATURE_NAMES,
    ClusterSnapshot,
    TaskSpec,
    encode,
    loaded_multi_hot,
    snapshot_fields,
)
from ladts_policy.sim.config.scenario import load_scenario
from ladts_policy.sim.dynamics.cluster import ClusterSimulator


def snapshot(n: int, **overrides: np.ndarray) -> ClusterSnapshot:
    values = {name: np.ones(n) for name in snapshot_fields()}
    for flag in ("present_N", "ready_N", "fits_N", "resident_N"):
        values[flag] = np.ones(n, dtype=bool)
    values["loaded_NV"] = np.zeros((n, len(MODEL_VOCAB)))
    values.update(overrides)
    return ClusterSnapshot(**values)


def test_shapes_and_names() -> None:
    enc = encode(snapshot(5), TaskSpec("sdxl", 25, 0.1), node_slots=8)
    assert enc.node_rows_SF.shape == (8, len(NODE_FEATURE_NAMES))
    assert enc.task_T.shape == (len(TASK_FEATURE_NAMES),)
    assert enc.global_G.shape == (len(GLOBAL_FEATURE_NAMES),)
    assert enc.node_rows_SF.dtype == np.float32 and enc.node_mask_S.dtype == bool
    assert NODE_FEATURE_NAMES[0] == "present" and len(set(NODE_FEATURE_NAMES)) == len(
        NODE_FEATURE_NAMES
    )
    scalar = [d.name for d in SPEC.node if not d.name.startswith("loaded=")]
    assert set(f"{name}_N" for name in scalar) <= set(snapshot_fields())
    assert [d.name for d in SPEC.node if d.name.startswith("loaded=")] == [
        f"loaded={m}" for m in MODEL_VOCAB]


def test_v2_fields_loaded_multi_hot_holders_and_profile_hash() -> None:
    loaded = loaded_multi_hot([["sd15", "sdxl"], [], ["my-model"]])
    resident = np.array([True, False, True])
    ready = np.array([True, True, False])
    enc = encode(snapshot(3, loaded_NV=loaded, resident_N=resident, ready_N=ready),
                 TaskSpec("sd15", 20), node_slots=4)
    col = {name: j for j, name in enumerate(NODE_FEATURE_NAMES)}
    assert enc.node_rows_SF[0, col["loaded=sd15"]] == 1.0
    assert enc.node_rows_SF[0, col["loaded=sdxl"]] == 1.0
    assert enc.node_rows_SF[1, col["loaded=sd15"]] == 0.0
    assert enc.node_rows_SF[2, col["loaded=other"]] == 1.0
    holders = GLOBAL_FEATURE_NAMES.index("holders")
    assert enc.global_G[holders] == pytest.approx(np.log1p(1.0))  # node 2 holds it, not ready
    assert SPEC.version == "ladts-features/2"
    assert SPEC.gpu_profiles_sha256 == gpu_profiles_digest()
    assert gpu_profiles_digest("profiles: []") != SPEC.gpu_profiles_sha256
    with pytest.raises(ContractError, match="gpu_profiles_sha256"):
        validate({**SPEC.to_dict(), "gpu_profiles_sha256": gpu_profiles_digest("profiles: []")})


def test_padding_and_mask() -> None:
    ready = np.array([True, False, True, True])
    fits = np.array([True, True, False, True])
    present = np.array([True, True, True, False])
    enc = encode(
        snapshot(4, ready_N=ready, fits_N=fits, present_N=present),
        TaskSpec("sd15", 20),
        node_slots=6,
    )
    assert enc.node_mask_S.tolist() == [True, False, False, False, False, False]
    assert np.all(enc.node_rows_SF[3:] == 0)  # absent node and padding
    assert np.all(np.isfinite(enc.node_rows_SF))


def test_non_finite_values_encode_as_zero() -> None:
    service = np.array([1.0, np.inf])
    enc = encode(
        snapshot(2, service_s_N=service, est_delay_s_N=service), TaskSpec("x", 1), node_slots=2
    )
    col = NODE_FEATURE_NAMES.index("service_s")
    assert enc.node_rows_SF[1, col] == 0.0 and enc.node_rows_SF[0, col] > 0
    assert enc.task_T[TASK_FEATURE_NAMES.index("model=other")] == 1.0


def test_node_count_agnostic() -> None:
    """The same nodes encode identically whatever the slot count or extra absent nodes."""
    task = TaskSpec("sd15", 20, 0.05)
    small = encode(snapshot(3), task, node_slots=4)
    big = encode(snapshot(3), task, node_slots=64)
    np.testing.assert_array_equal(small.node_rows_SF, big.node_rows_SF[:4])
    np.testing.assert_array_equal(small.task_T, big.task_T)
    np.testing.assert_array_equal(small.global_G, big.global_G)
    with pytest.raises(ValueError, match="more than"):
        encode(snapshot(5), task, node_slots=4)


def test_simulator_snapshot_encodes() -> None:
    sim = ClusterSimulator(
        dataclasses.replace(load_scenario("k8s-edge").cluster, horizon_s=120), num_envs=2
    )
    view = sim.reset([1, 2])
    for _ in range(30):
        assert view is not None
        snap, task = sim.snapshot(1)
        enc = encode(snap, task, node_slots=32)
        np.testing.assert_array_equal(enc.node_mask_S[: sim.num_nodes], view.node_mask_EN[1])
        np.testing.assert_allclose(
            snap.est_delay_s_N[view.node_mask_EN[1]],
            view.expected_delay_EN[1][view.node_mask_EN[1]],
        )
        view = sim.step(
            np.argmin(np.where(view.node_mask_EN, view.expected_delay_EN, np.inf), axis=1)
        )[1]


def test_spec_json_round_trip_and_validation() -> None:
    spec = json.loads(json.dumps(SPEC.to_dict(node_slots=32)))
    validate(spec, node_slots=32)
    assert spec["dims"] == {
        "node": len(NODE_FEATURE_NAMES),
        "task": len(TASK_FEATURE_NAMES),
        "global": len(GLOBAL_FEATURE_NAMES),
    }
    with pytest.raises(ContractError, match="node_slots"):
        validate(spec, node_slots=16)
    with pytest.raises(ContractError, match="version"):
        validate({**spec, "version": "ladts-features/0"})
    swapped = dict(spec)
    swapped["node"] = list(reversed(spec["node"]))
    with pytest.raises(ContractError, match="'node'"):
        validate(swapped)
    other = FeatureSpec(node=SPEC.node[:-1]).to_dict()
    with pytest.raises(ContractError):
        validate(other)
    with pytest.raises(ContractError, match="mapping"):
        validate([1, 2])


def _reference_node_rows(snap: ClusterSnapshot, node_slots: int) -> np.ndarray:
    """The contract read literally, one node and one column at a time (plain Python math)."""
    rows = np.zeros((node_slots, len(SPEC.node)), dtype=np.float32)
    for i in range(snap.num_nodes):
        if not snap.present_N[i]:
            continue
        for j, d in enumerate(SPEC.node):
            if d.name.startswith("loaded="):
                raw = float(snap.loaded_NV[i, MODEL_VOCAB.index(d.name.removeprefix("loaded="))])
            else:
                raw = float(getattr(snap, f"{d.name}_N")[i])
            x = raw / d.scale
            x = x if np.isfinite(x) else 0.0
            if d.transform == "log1p":
                x = float(np.log1p(max(x, 0.0)))
            rows[i, j] = x
    return rows


def test_node_rows_match_a_per_element_reference_on_simulator_states() -> None:
    sim = ClusterSimulator(
        dataclasses.replace(load_scenario("k8s-edge").cluster, horizon_s=120), num_envs=1
    )
    view = sim.reset([3])
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert view is not None
        snap, task = sim.snapshot(0)
        # Also some non-finite and absent entries, which the encoder zeroes.
        bad = dataclasses.replace(
            snap,
            backlog_s_N=np.where(rng.random(snap.num_nodes) < 0.2, np.inf, snap.backlog_s_N),
            present_N=rng.random(snap.num_nodes) < 0.9,
        )
        for s in (snap, bad):
            enc = encode(s, task, node_slots=s.num_nodes + 3)
            np.testing.assert_array_equal(enc.node_rows_SF,
                                          _reference_node_rows(s, s.num_nodes + 3))
        view = sim.step(
            np.argmin(np.where(view.node_mask_EN, view.expected_delay_EN, np.inf), axis=1)
        )[1]


def test_task_and_global_features_match_the_per_feature_normalisation() -> None:
    """``encode`` normalises task and global features as one array: the same as one at a time."""
    from ladts_policy.features import (
        GLOBAL_FEATURE_NAMES,
        TASK_FEATURE_NAMES,
        _normalise,
    )

    sim = ClusterSimulator(
        dataclasses.replace(load_scenario("k8s-edge").cluster, horizon_s=120), num_envs=1
    )
    view = sim.reset([5])
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(20):
        assert view is not None
        snap, task = sim.snapshot(0)
        odd = dataclasses.replace(  # large, non-finite and negative raw values
            task, steps=int(rng.integers(1, 10_000)), wait_s=float(rng.choice(
                [-3.0, 0.0, 1e9, np.inf, rng.exponential(30.0)])),
            input_mbit=float(rng.exponential(50.0)))
        for s, t in ((snap, task), (dataclasses.replace(snap, pending=int(rng.integers(0, 5000)),
                                                        popularity=float(rng.random())), odd)):
            enc = encode(s, t, node_slots=s.num_nodes)
            mask_N = enc.node_mask_S[: s.num_nodes]
            service_N = np.where(mask_N, s.service_s_N, np.inf)
            model = t.model if t.model in MODEL_VOCAB else "other"
            raw_task = {"steps": t.steps, "input_mbit": t.input_mbit, "wait_s": t.wait_s,
                        "best_service_s": float(service_N.min()) if service_N.size else np.inf,
                        "popularity": s.popularity,
                        **{f"model={m}": float(m == model) for m in MODEL_VOCAB}}
            want_T = np.array([_normalise(np.asarray(raw_task[d.name]), d) for d in SPEC.task],
                              dtype=np.float32)
            present = s.present_N.astype(bool)
            ready = present & s.ready_N.astype(bool)
            n = max(int(present.sum()), 1)
            raw_glob = {
                "nodes_present": float(present.sum()), "ready_fraction": ready.sum() / n,
                "fits_fraction": mask_N.sum() / max(int(ready.sum()), 1),
                "mean_queue_len": float(s.queue_len_N[present].sum()) / n,
                "busy_fraction": float((s.running_N[present] > 0).sum()) / n,
                "pending": float(s.pending),
                "holders": float((ready & s.resident_N.astype(bool)).sum()),
            }
            want_G = np.array([_normalise(np.asarray(raw_glob[d.name]), d) for d in SPEC.glob],
                              dtype=np.float32)
            assert set(raw_task) == set(TASK_FEATURE_NAMES)
            assert set(raw_glob) == set(GLOBAL_FEATURE_NAMES)
            np.testing.assert_array_equal(enc.task_T, want_T)
            np.testing.assert_array_equal(enc.global_G, want_G)
            checked += 1
        view = sim.step(
            np.argmin(np.where(view.node_mask_EN, view.expected_delay_EN, np.inf), axis=1)
        )[1]
    assert checked == 40
