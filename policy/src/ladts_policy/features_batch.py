"""The feature encoding of many decisions at once: :func:`ladts_policy.features.encode` over ``E``.

A vectorised simulator
(``ladts_policy.sim.dynamics.cluster_vec.VecClusterSimulator.snapshot_batch``) holds every
environment's :class:`~ladts_policy.features.ClusterSnapshot` as ``[E, N]`` arrays;
:func:`encode_batch` turns them into the arrays :func:`~ladts_policy.features.encode` gives for
each row, with the same element-wise operations in the same order (checked row by
row against ``encode`` in ``tests/policy/test_cluster_vec.py``). ``encode`` stays the one
definition: this module only batches it.

Shapes: ``E`` environments, ``N`` nodes, ``S`` node slots, ``V`` model vocabulary,
``F``/``T``/``G`` node, task and global widths from :data:`ladts_policy.contract.SPEC`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ladts_policy.contract import MODEL_VOCAB, SPEC, FeatureDef


@dataclass(frozen=True)
class SnapshotBatch:
    """Every environment's ``ClusterSnapshot`` and ``TaskSpec`` as ``[E, ...]`` arrays."""

    active_E: np.ndarray
    """bool [E]: the environment has a pending task (rows of the others are zero)."""

    arrays: dict[str, np.ndarray]
    """``{ClusterSnapshot field name: [E, N] array}`` for every ``*_N`` field."""

    loaded_ENV: np.ndarray
    """float [E, N, V]: ``ClusterSnapshot.loaded_NV`` stacked."""

    pending_E: np.ndarray
    """float [E]: ``ClusterSnapshot.pending``."""

    popularity_E: np.ndarray
    """float [E]: ``ClusterSnapshot.popularity``."""

    model_E: tuple[str, ...]
    """``TaskSpec.model`` per environment (``""`` where inactive)."""

    steps_E: np.ndarray
    """float [E]: ``TaskSpec.steps``."""

    input_mbit_E: np.ndarray
    """float [E]: ``TaskSpec.input_mbit``."""

    wait_s_E: np.ndarray
    """float [E]: ``TaskSpec.wait_s``."""


@dataclass(frozen=True)
class EncodedBatch:
    """:class:`ladts_policy.features.EncodedFeatures` of ``E`` decisions."""

    node_rows_ESF: np.ndarray
    """float32 [E, S, F]."""

    task_ET: np.ndarray
    """float32 [E, T]."""

    global_EG: np.ndarray
    """float32 [E, G]."""

    node_mask_ES: np.ndarray
    """bool [E, S]."""


_NODE_SCALE_F = np.array([d.scale for d in SPEC.node], dtype=np.float64)
_NODE_LOG1P_F = np.array([d.transform == "log1p" for d in SPEC.node])


def _normalise(raw: np.ndarray, d: FeatureDef) -> np.ndarray:
    # ladts_policy.features._normalise, element-wise over a batch
    x = np.asarray(raw, dtype=np.float64) / d.scale
    x = np.where(np.isfinite(x), x, 0.0)
    if d.transform == "log1p":
        x = np.log1p(np.maximum(x, 0.0))
    return x


def encode_batch(batch: SnapshotBatch, *, node_slots: int) -> EncodedBatch:
    """Encode every row of ``batch`` as ``features.encode`` does (inactive rows: zeros).

    Raises:
        ValueError: the snapshots have more nodes than ``node_slots``.
    """
    present_EN = batch.arrays["present_N"].astype(bool)
    e, n = present_EN.shape
    if n > node_slots:
        raise ValueError(f"snapshot has {n} nodes, more than the {node_slots} node slots")
    ready_EN = present_EN & batch.arrays["ready_N"].astype(bool)
    mask_EN = ready_EN & batch.arrays["fits_N"].astype(bool)
    raw_ENF = np.empty((e, n, len(SPEC.node)))
    for f, d in enumerate(SPEC.node):
        if d.name.startswith("loaded="):
            raw_ENF[:, :, f] = batch.loaded_ENV[:, :, MODEL_VOCAB.index(d.name[len("loaded="):])]
        else:
            raw_ENF[:, :, f] = batch.arrays[f"{d.name}_N"]
    x_ENF = raw_ENF / _NODE_SCALE_F
    x_ENF = np.where(np.isfinite(x_ENF), x_ENF, 0.0)
    x_ENF = np.where(_NODE_LOG1P_F, np.log1p(np.maximum(x_ENF, 0.0)), x_ENF)
    rows_ESF = np.zeros((e, node_slots, len(SPEC.node)), dtype=np.float32)
    rows_ESF[:, :n] = np.where(present_EN[:, :, None], x_ENF, 0.0)
    node_mask_ES = np.zeros((e, node_slots), dtype=bool)
    node_mask_ES[:, :n] = mask_EN
    active_E1 = batch.active_E[:, None]
    rows_ESF[~batch.active_E] = 0.0
    node_mask_ES &= active_E1
    task_ET = _encode_task(batch, mask_EN) * active_E1
    global_EG = _encode_global(batch, present_EN, ready_EN, mask_EN) * active_E1
    return EncodedBatch(node_rows_ESF=rows_ESF, task_ET=task_ET.astype(np.float32),
                        global_EG=global_EG.astype(np.float32), node_mask_ES=node_mask_ES)


def _encode_task(batch: SnapshotBatch, mask_EN: np.ndarray) -> np.ndarray:
    service_EN = np.where(mask_EN, batch.arrays["service_s_N"], np.inf)
    best_E = service_EN.min(axis=1) if service_EN.shape[1] else np.full(len(mask_EN), np.inf)
    model_E1 = np.array([m if m in MODEL_VOCAB else "other" for m in batch.model_E])[:, None]
    onehot_EV = (model_E1 == np.array(MODEL_VOCAB)[None, :]).astype(float)
    raw = {
        "steps": batch.steps_E,
        "input_mbit": batch.input_mbit_E,
        "wait_s": batch.wait_s_E,
        "best_service_s": best_E,
        "popularity": batch.popularity_E,
        **{f"model={v}": onehot_EV[:, i] for i, v in enumerate(MODEL_VOCAB)},
    }
    # float32 per value, as encode builds its array from the float64 results
    return np.stack([_normalise(raw[d.name], d) for d in SPEC.task], axis=1).astype(np.float32)


def _encode_global(batch: SnapshotBatch, present_EN: np.ndarray, ready_EN: np.ndarray,
                   mask_EN: np.ndarray) -> np.ndarray:
    n_present_E = np.maximum(present_EN.sum(axis=1), 1)
    ready_E = ready_EN.sum(axis=1)
    raw = {
        "nodes_present": present_EN.sum(axis=1).astype(float),
        "ready_fraction": ready_E / n_present_E,
        "fits_fraction": mask_EN.sum(axis=1) / np.maximum(ready_E, 1),
        "mean_queue_len": np.where(present_EN, batch.arrays["queue_len_N"], 0.0).sum(axis=1)
        / n_present_E,
        "busy_fraction": (present_EN & (batch.arrays["running_N"] > 0)).sum(axis=1)
        / n_present_E,
        "pending": batch.pending_E.astype(float),
        "holders": (ready_EN & batch.arrays["resident_N"].astype(bool)).sum(axis=1).astype(float),
    }
    return np.stack([_normalise(raw[d.name], d) for d in SPEC.glob], axis=1).astype(np.float32)
