"""The one feature encoding of (cluster state, task), shared by the simulator and the operator.

The simulator builds a :class:`ClusterSnapshot` from its node servers
(``ClusterSimulator.snapshot``); the operator builds the same from its state store and
Prometheus. :func:`encode` turns it into fixed-width arrays for any node count up to
``node_slots`` (padded slots are zero and masked), following :data:`ladts_policy.contract.SPEC`.

Shapes: ``N`` nodes in the snapshot, ``S`` node slots (``S >= N``), ``F``/``T``/``G`` node,
task and global feature widths from the contract.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ladts_policy.contract import MODEL_VOCAB, SPEC, FeatureDef


@dataclass(frozen=True)
class ClusterSnapshot:
    """Per-node state as seen by one decision, conditioned on the task's model (``N`` nodes)."""

    present_N: np.ndarray
    """bool [N]: the node is in the cluster (a cordoned node that still drains is present)."""

    ready_N: np.ndarray
    """bool [N]: schedulable (present, not cordoned, fresh enough metrics)."""

    fits_N: np.ndarray
    """bool [N]: the task's model can ever run there (timings known, fits usable VRAM)."""

    resident_N: np.ndarray
    """bool [N]: the task's model is loaded there now (as the node's last scrape reported)."""

    speed_N: np.ndarray
    """float [N]: estimated denoising steps per second of the task's model (0 where it
    cannot run): profile corrected by ``ServiceTimeCorrector``."""

    service_s_N: np.ndarray
    """float [N]: estimated warm service time of this task, s (inf where it cannot run)."""

    load_s_N: np.ndarray
    """float [N]: estimated load (cold-start) time of the task's model, s."""

    vram_gib_N: np.ndarray
    """float [N]: usable GPU memory, GiB."""

    vram_free_gib_N: np.ndarray
    """float [N]: GPU memory not held by loaded models, GiB."""

    queue_len_N: np.ndarray
    """float [N]: unfinished pods placed on the node (running and waiting)."""

    running_N: np.ndarray
    """float [N]: pods running now."""

    backlog_s_N: np.ndarray
    """float [N]: seconds until every pod placed on the node has finished."""

    concurrency_N: np.ndarray
    """float [N]: pods the node runs at the same time."""

    requested_fraction_N: np.ndarray
    """float [N] in [0, 1]: requested share of allocatable cpu and memory (mean of both)."""

    est_delay_s_N: np.ndarray
    """float [N]: estimated service delay of this task there (the scheduler's projection of
    the node's queue, ``node_service.project``), s."""

    metrics_age_s_N: np.ndarray
    """float [N]: age of the node's metrics (its last Prometheus scrape), s."""

    memory_gib_N: np.ndarray
    """float [N]: GPU memory the task's model occupies on the node's GPU class, GiB (0 where
    it has no timings)."""

    free_slots_N: np.ndarray
    """float [N]: pods the node could start now: ``concurrency`` minus running pods
    (exclusive mode: minus unfinished pods, i.e. free GPUs), at least 0."""

    evicted_models_N: np.ndarray
    """float [N]: loaded models a pod of the task's model placed there would unload (LRU)."""

    evict_popularity_N: np.ndarray
    """float [N]: summed share of recent requests of those models (0 when none)."""

    evict_cost_s_N: np.ndarray
    """float [N]: ``sum over those models of popularity x estimated load time there``, s
    (``DecisionView.evict_cost_EN``; not encoded, used by ``residency-greedy``)."""

    cold_N: np.ndarray
    """bool [N]: a pod of the task's model placed there would load it (the projection's
    verdict, which counts the models of the pods queued ahead; not encoded)."""

    loaded_NV: np.ndarray
    """float [N, V]: multi-hot of the models loaded on the node now (last scrape) over
    ``contract.MODEL_VOCAB`` (``V`` entries; models outside it count as ``other``)."""

    pending: int = 0
    """Pods waiting unscheduled in the cluster (no node passes the filters), this one included."""

    popularity: float = 0.0
    """Share of the task's model among recent requests (the operator: pod creations of the
    last ``POPULARITY_WINDOW_S`` seconds)."""

    @property
    def num_nodes(self) -> int:
        """Number of nodes ``N``."""
        return int(self.present_N.shape[0])


@dataclass(frozen=True)
class TaskSpec:
    """The request to place."""

    model: str
    """Model name (one-hot over ``contract.MODEL_VOCAB``; unknown names count as ``other``)."""

    steps: int
    """Denoising steps."""

    input_mbit: float = 0.0
    """Request payload, megabits."""

    wait_s: float = 0.0
    """Seconds the request has already waited since it arrived."""


@dataclass(frozen=True)
class EncodedFeatures:
    """Normalised arrays for one decision (``S`` node slots)."""

    node_rows_SF: np.ndarray
    """float32 [S, F]: one row per node slot, zeros for padding."""

    task_T: np.ndarray
    """float32 [T]: task features."""

    global_G: np.ndarray
    """float32 [G]: cluster-wide features."""

    node_mask_S: np.ndarray
    """bool [S]: the slot holds a node that is ready and fits the task (a valid action)."""


NODE_FEATURE_NAMES = tuple(d.name for d in SPEC.node)
"""Per-node feature names in column order."""

TASK_FEATURE_NAMES = tuple(d.name for d in SPEC.task)
"""Task feature names in order."""

GLOBAL_FEATURE_NAMES = tuple(d.name for d in SPEC.glob)
"""Global feature names in order."""


def _normalise(raw: np.ndarray, d: FeatureDef) -> np.ndarray:
    x = np.asarray(raw, dtype=np.float64) / d.scale
    x = np.where(np.isfinite(x), x, 0.0)
    if d.transform == "log1p":
        x = np.log1p(np.maximum(x, 0.0))
    return x


_NODE_SCALE_F = np.array([d.scale for d in SPEC.node], dtype=np.float64)
"""float [F]: the scale of each node feature column (``SPEC.node`` order)."""

_NODE_LOG1P_F = np.array([d.transform == "log1p" for d in SPEC.node])
"""bool [F]: the node feature columns that take ``log1p`` after scaling."""

_TASK_SCALE_T = np.array([d.scale for d in SPEC.task], dtype=np.float64)
_TASK_LOG1P_T = np.array([d.transform == "log1p" for d in SPEC.task])
_GLOBAL_SCALE_G = np.array([d.scale for d in SPEC.glob], dtype=np.float64)
_GLOBAL_LOG1P_G = np.array([d.transform == "log1p" for d in SPEC.glob])


def _normalise_columns(raw_X: np.ndarray, scale_X: np.ndarray, log1p_X: np.ndarray
                       ) -> np.ndarray:
    """:func:`_normalise` of every column at once (the same element-wise operations)."""
    x_X = raw_X / scale_X
    x_X = np.where(np.isfinite(x_X), x_X, 0.0)
    return np.where(log1p_X, np.log1p(np.maximum(x_X, 0.0)), x_X)


def _node_raw(snapshot: ClusterSnapshot, name: str) -> np.ndarray:
    if name.startswith("loaded="):
        column = MODEL_VOCAB.index(name.removeprefix("loaded="))
        return np.asarray(snapshot.loaded_NV, dtype=np.float64)[:, column]
    return np.asarray(getattr(snapshot, f"{name}_N"), dtype=np.float64)


def loaded_multi_hot(models: list[set[str]] | list[list[str]]) -> np.ndarray:
    """Return float [N, V]: the multi-hot ``loaded_NV`` of per-node model-name collections."""
    out = np.zeros((len(models), len(MODEL_VOCAB)))
    for n, names in enumerate(models):
        for name in names:
            out[n, MODEL_VOCAB.index(name if name in MODEL_VOCAB else "other")] = 1.0
    return out


def encode(snapshot: ClusterSnapshot, task: TaskSpec, *, node_slots: int) -> EncodedFeatures:
    """Encode one decision for a policy with ``node_slots`` slots.

    Raises:
        ValueError: the snapshot has more nodes than ``node_slots``.
    """
    n = snapshot.num_nodes
    if n > node_slots:
        raise ValueError(f"snapshot has {n} nodes, more than the {node_slots} node slots")
    present = snapshot.present_N.astype(bool)
    mask_N = present & snapshot.ready_N.astype(bool) & snapshot.fits_N.astype(bool)
    rows_SF = np.zeros((node_slots, len(SPEC.node)), dtype=np.float32)
    # All columns at once (the extender encodes every decision): the same element-wise
    # operations as _normalise, column by column.
    raw_NF = np.column_stack([_node_raw(snapshot, d.name) for d in SPEC.node]).reshape(
        n, len(SPEC.node))
    x_NF = _normalise_columns(raw_NF, _NODE_SCALE_F, _NODE_LOG1P_F)
    rows_SF[:n] = np.where(present[:, None], x_NF, 0.0)
    node_mask_S = np.zeros(node_slots, dtype=bool)
    node_mask_S[:n] = mask_N
    return EncodedFeatures(
        node_rows_SF=rows_SF,
        task_T=_encode_task(snapshot, task, mask_N),
        global_G=_encode_global(snapshot, mask_N),
        node_mask_S=node_mask_S,
    )


def _encode_task(snapshot: ClusterSnapshot, task: TaskSpec, mask_N: np.ndarray) -> np.ndarray:
    service_N = np.where(mask_N, snapshot.service_s_N, np.inf)
    best = float(service_N.min()) if service_N.size else np.inf
    model = task.model if task.model in MODEL_VOCAB else "other"
    raw = {
        "steps": task.steps,
        "input_mbit": task.input_mbit,
        "wait_s": task.wait_s,
        "best_service_s": best,
        "popularity": snapshot.popularity,
        **{f"model={m}": float(m == model) for m in MODEL_VOCAB},
    }
    raw_T = np.array([raw[d.name] for d in SPEC.task], dtype=np.float64)
    return _normalise_columns(raw_T, _TASK_SCALE_T, _TASK_LOG1P_T).astype(np.float32)


def _encode_global(snapshot: ClusterSnapshot, mask_N: np.ndarray) -> np.ndarray:
    present = snapshot.present_N.astype(bool)
    ready = present & snapshot.ready_N.astype(bool)
    n_present = max(int(present.sum()), 1)
    raw = {
        "nodes_present": float(present.sum()),
        "ready_fraction": ready.sum() / n_present,
        "fits_fraction": mask_N.sum() / max(int(ready.sum()), 1),
        "mean_queue_len": float(snapshot.queue_len_N[present].sum()) / n_present,
        "busy_fraction": float((snapshot.running_N[present] > 0).sum()) / n_present,
        "pending": float(snapshot.pending),
        "holders": float((ready & snapshot.resident_N.astype(bool)).sum()),
    }
    raw_G = np.array([raw[d.name] for d in SPEC.glob], dtype=np.float64)
    return _normalise_columns(raw_G, _GLOBAL_SCALE_G, _GLOBAL_LOG1P_G).astype(np.float32)


def snapshot_fields() -> tuple[str, ...]:
    """Names of the per-node arrays of :class:`ClusterSnapshot` (for builders and tests)."""
    return tuple(f.name for f in fields(ClusterSnapshot) if f.name.endswith("_N"))
