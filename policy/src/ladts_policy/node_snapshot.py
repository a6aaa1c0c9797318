"""A :class:`~ladts_policy.features.ClusterSnapshot` from per-node :class:`NodeServer` objects.

The operator rebuilds each node's server from the API (:mod:`ladts_policy.node_replay`) and
calls :func:`snapshot_from_servers` (or, through its column cache, :func:`snapshot_from_rows`);
the tests check that on the simulator's own servers it gives the same arrays as
``ClusterSimulator.snapshot`` (every ``ladts-features/2`` field: est_delay, backlog, the cold
verdict, what a placement would evict, residency, free slots, ...), so a policy sees the same
numbers in simulation and in a cluster. ``docs/features.md`` says where each input comes from.

The one snapshot-to-view bridge for the heuristics is
:func:`ladts_policy.snapshot_view.decision_view`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ladts_policy.contract import MODEL_VOCAB
from ladts_policy.features import ClusterSnapshot, TaskSpec
from ladts_policy.sim.config.cluster_config import warm_service_s
from ladts_policy.sim.dynamics.node_service import AnyNodeServer, ExclusiveNodeServer


@dataclass(frozen=True)
class NodeFacts:
    """What is known of one node besides its server."""

    server: AnyNodeServer | None
    """The node's server (its projection: estimated run times, the models seen loaded as
    the start), None when the node has no known GPU profile (nothing fits)."""

    ready: bool
    """Schedulable: Ready condition true, not cordoned."""

    present: bool = True
    """In the cluster (False only for a padded or vanished node)."""

    requested_fraction: float = 0.0
    """Requested share of allocatable cpu and memory (mean of both), in [0, 1]."""

    metrics_age_s: float = 0.0
    """Age of the node's Prometheus metrics, s (0 when unknown or in simulation)."""

    vram_free_gib: float | None = None
    """Free GPU memory measured by Prometheus, GiB; None: use the server's bookkeeping."""

    loaded: Sequence[str] | None = None
    """Models the node reports loaded now (its last scrape; the operator: ``ClusterState.
    resident``), None: the server's own bookkeeping. Gives ``resident`` and ``loaded=<m>``."""


ROW_SCALARS = (
    "vram_gib", "vram_free_gib", "queue_len", "running", "busy_until", "concurrency",
    "resident", "fits", "speed", "load_s", "threshold", "cold", "overhead_s", "s_per_step",
    "memory_gib", "free_slots", "evicted_models",
)
"""Scalar values of a row (one row per server and model), in this order."""

V = len(MODEL_VOCAB)

ROW_FIELDS = (
    *ROW_SCALARS,
    *(f"evicted={m}" for m in MODEL_VOCAB),
    *(f"evict_load_s={m}" for m in MODEL_VOCAB),
    *(f"loaded={m}" for m in MODEL_VOCAB),
)
"""Values of a row, in this order: the scalars, then three ``V``-column blocks over
``contract.MODEL_VOCAB``: the models a placement would evict (multi-hot), their estimated
load times there (s, summed per vocabulary entry) and the models loaded now (multi-hot)."""

_EVICTED = len(ROW_SCALARS)
_EVICT_LOAD = _EVICTED + V
_LOADED = _EVICT_LOAD + V

NO_SERVER_ROW = (0.0, 0.0, 0.0, 0.0, -math.inf, 0.0, 0.0, 0.0, 0.0, math.inf, math.inf, 1.0,
                 math.inf, math.inf, 0.0, 0.0, 0.0, *([0.0] * (3 * V)))
"""The row of a node without a server (no GPU profile): nothing fits."""

FLAG_FIELDS = ("present", "ready", "requested_fraction", "metrics_age_s", "vram_free_gib")
"""Per-node facts besides the row, in this order (``vram_free_gib`` NaN: use the row's)."""


def vocab_index(model: str) -> int:
    """The model's column in ``contract.MODEL_VOCAB`` (others: ``other``)."""
    return MODEL_VOCAB.index(model if model in MODEL_VOCAB else "other")


def vocab_shares(shares: Mapping[str, float]) -> np.ndarray:
    """Return float [V]: per-model request shares summed per ``MODEL_VOCAB`` entry."""
    out = np.zeros(V)
    for model, share in shares.items():
        out[vocab_index(model)] += share
    return out


def row_values(
    srv: AnyNodeServer, model: str, now: float, loaded: Sequence[str] | None = None
) -> tuple[float, ...]:
    """One server's facts for a task of ``model`` (``ROW_FIELDS`` order).

    ``loaded`` is what the node reports loaded now (None: the server's bookkeeping). What a
    placement would evict and whether it loads come from ``srv.earliest_start`` (the same
    call the simulator makes on its projection, ``cluster_state._refresh_node``). Unchanged
    until the server's next finish or start after ``now`` while its ``revision`` and
    ``loaded`` are unchanged (``ladts_operator/columns.py`` caches rows on that rule).
    """
    fits = srv.can_run(model)
    threshold, cold = math.inf, True
    speed, load, overhead, per_step, memory = 0.0, math.inf, math.inf, math.inf, 0.0
    blocks = [0.0] * (3 * V)
    if fits:
        timing = srv.timings[model]
        threshold, cold, evicted = srv.earliest_start(model)
        speed = 1.0 / timing.s_per_step if timing.s_per_step > 0 else 0.0
        load, overhead, per_step = timing.load_s, timing.overhead_s, timing.s_per_step
        memory = timing.memory_gib
        for k in evicted:
            j = vocab_index(k)
            blocks[j] = 1.0
            blocks[V + j] += srv.timings[k].load_s
    else:
        evicted = ()
    seen = srv.loaded_models() if loaded is None else tuple(loaded)
    for k in seen:
        blocks[2 * V + vocab_index(k)] = 1.0
    running = srv.running(now)
    busy = srv.queue_len(now) if isinstance(srv, ExclusiveNodeServer) else running
    used = sum(srv.timings[k].memory_gib for k in seen if k in srv.timings)
    return (
        srv.vram_gib, max(srv.vram_gib - used, 0.0), float(srv.queue_len(now)), float(running),
        srv.busy_until(), float(srv.concurrency), float(model in seen), float(fits),
        speed, load, threshold, float(cold), overhead, per_step,
        memory, float(max(srv.concurrency - busy, 0)), float(len(evicted)), *blocks,
    )


def snapshot_from_servers(
    nodes: Sequence[NodeFacts],
    task: TaskSpec,
    *,
    now: float,
    arrival_s: float | None = None,
    pending: int = 0,
    popularity: Mapping[str, float] | None = None,
) -> ClusterSnapshot:
    """Build the snapshot of one decision for ``task`` arriving at ``arrival_s`` (default now).

    ``est_delay_s`` is the task's finish (``NodeServer`` FIFO and memory rules, cold start
    included) minus its arrival; ``backlog_s`` is the time until every placed pod is done.
    ``popularity`` is each model's share of recent requests (None: none known, all 0).
    """
    arrival = now if arrival_s is None else arrival_s
    n = len(nodes)
    rows: list[tuple[float, ...]] = []
    flags: list[tuple[float, float, float, float, float]] = []
    model = task.model
    for facts in nodes:
        srv = facts.server
        if srv is None:
            rows.append(NO_SERVER_ROW)
        else:
            rows.append(row_values(srv, model, now, facts.loaded))
        free = facts.vram_free_gib
        flags.append((facts.present, facts.ready, facts.requested_fraction, facts.metrics_age_s,
                      math.nan if free is None else free))
    r = np.array(rows, dtype=float).reshape(n, len(ROW_FIELDS))
    f = np.array(flags, dtype=float).reshape(n, len(FLAG_FIELDS))
    return snapshot_from_rows(r, f, task, now=now, arrival_s=arrival, pending=pending,
                              popularity=popularity)


def snapshot_from_rows(
    rows_NR: np.ndarray,
    flags_NF: np.ndarray,
    task: TaskSpec,
    *,
    now: float,
    arrival_s: float | None = None,
    pending: int = 0,
    popularity: Mapping[str, float] | None = None,
) -> ClusterSnapshot:
    """The snapshot from row values (``ROW_FIELDS`` columns) and facts (``FLAG_FIELDS``).

    The one assembly of :func:`snapshot_from_servers` (which builds the matrices from
    servers) and of the operator's column store (which keeps them as arrays between
    decisions, ``ladts_operator/columns.py``); all arithmetic is over whole columns.
    ``evict_popularity`` and ``evict_cost_s`` weight the evicted models by ``popularity``
    summed per ``MODEL_VOCAB`` entry (exact unless two evicted models fall in ``other``).
    """
    arrival = now if arrival_s is None else arrival_s
    r, f = rows_NR, flags_NF
    col = {name: r[:, j] for j, name in enumerate(ROW_SCALARS)}
    fits = col["fits"] > 0
    cold = col["cold"] > 0
    with np.errstate(invalid="ignore"):
        # ModelTiming.service_s for every node at once
        service = np.where(fits, warm_service_s(col["overhead_s"], col["s_per_step"],
                                                task.steps), np.inf)
        start = np.maximum(now, col["threshold"])
        est = np.where(fits, start + service + np.where(cold, col["load_s"], 0.0) - arrival,
                       np.inf)
    measured = f[:, 4]
    pop_V = vocab_shares(popularity or {})
    evicted_NV = r[:, _EVICTED:_EVICT_LOAD]
    return ClusterSnapshot(
        present_N=f[:, 0] > 0,
        ready_N=f[:, 1] > 0,
        fits_N=fits,
        resident_N=col["resident"] > 0,
        speed_N=col["speed"].copy(),
        service_s_N=service,
        load_s_N=np.where(fits, col["load_s"], np.inf),
        vram_gib_N=col["vram_gib"].copy(),
        vram_free_gib_N=np.where(np.isnan(measured), col["vram_free_gib"], measured),
        queue_len_N=col["queue_len"].copy(),
        running_N=col["running"].copy(),
        backlog_s_N=np.maximum(col["busy_until"] - now, 0.0),
        concurrency_N=col["concurrency"].copy(),
        requested_fraction_N=f[:, 2].copy(),
        est_delay_s_N=est,
        metrics_age_s_N=f[:, 3].copy(),
        memory_gib_N=col["memory_gib"].copy(),
        free_slots_N=col["free_slots"].copy(),
        evicted_models_N=col["evicted_models"].copy(),
        evict_popularity_N=evicted_NV @ pop_V,
        evict_cost_s_N=r[:, _EVICT_LOAD:_LOADED] @ pop_V,
        cold_N=cold.copy(),
        loaded_NV=r[:, _LOADED:].copy(),
        pending=pending,
        popularity=float((popularity or {}).get(task.model, 0.0)),
    )
