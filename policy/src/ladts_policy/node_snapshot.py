"""A :class:`~ladts_policy.features.ClusterSnapshot` from per-node :class:`NodeServer` objects.

The operator rebuilds each node's server from the API (:mod:`ladts_policy.node_replay`) and
calls :func:`snapshot_from_servers`; the tests check that on the simulator's own servers it
gives the same arrays as ``ClusterSimulator.snapshot`` (est_delay, backlog, queue, ...), so
a policy sees the same numbers in simulation and in a cluster.

:func:`decision_view` turns a snapshot into the one-environment
:class:`~ladts_policy.sim.base.DecisionView` the heuristics of :mod:`ladts_policy.baselines`
act on, so a heuristic serves through the same snapshot as the policy.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ladts_policy.features import ClusterSnapshot, TaskSpec
from ladts_policy.sim.base import DecisionView
from ladts_policy.sim.node_service import NodeServer


@dataclass(frozen=True)
class NodeFacts:
    """What is known of one node besides its server."""

    server: NodeServer | None
    """The node's server, None when the node has no known GPU profile (nothing fits)."""

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


ROW_FIELDS = (
    "vram_gib", "vram_free_gib", "queue_len", "running", "busy_until", "concurrency",
    "resident", "fits", "speed", "load_s", "threshold", "cold", "overhead_s", "s_per_step",
)
"""Values of a row, in this order (one row per server and model)."""

NO_SERVER_ROW = (0.0, 0.0, 0.0, 0.0, -math.inf, 0.0, 0.0, 0.0, 0.0, math.inf, math.inf, 1.0,
                 math.inf, math.inf)
"""The row of a node without a server (no GPU profile): nothing fits."""

FLAG_FIELDS = ("present", "ready", "requested_fraction", "metrics_age_s", "vram_free_gib")
"""Per-node facts besides the row, in this order (``vram_free_gib`` NaN: use the row's)."""


@dataclass(frozen=True)
class _Row:
    """What one server says about tasks of one model.

    Valid from when it was computed until ``until``, the server's next finish (nothing
    changes before it), while the server's ``revision`` is unchanged.
    """

    until: float
    revision: int
    values: tuple[float, ...]


class RowCache:
    """Per-server rows reused until the server changes or a pod finishes.

    Keyed weakly by the server object, so a server replaced by a new replay drops out.
    """

    def __init__(self) -> None:
        self._rows: weakref.WeakKeyDictionary[NodeServer, dict[str, _Row]] = (
            weakref.WeakKeyDictionary()
        )

    def row(self, srv: NodeServer, model: str, now: float) -> tuple[float, ...]:
        """The row values of ``srv`` for a task of ``model`` at ``now``."""
        rows = self._rows.get(srv)
        if rows is None:
            rows = self._rows[srv] = {}
        cached = rows.get(model)
        if cached is not None and now < cached.until and cached.revision == srv.revision:
            return cached.values
        row = rows[model] = _Row(srv.next_change(now), srv.revision, row_values(srv, model, now))
        return row.values


def row_values(srv: NodeServer, model: str, now: float) -> tuple[float, ...]:
    """One server's facts for a task of ``model`` (``ROW_FIELDS`` order).

    Unchanged until ``srv.next_change(now)`` while ``srv.revision`` is unchanged.
    """
    fits = srv.can_run(model)
    threshold, cold = math.inf, True
    speed, load, overhead, per_step = 0.0, math.inf, math.inf, math.inf
    if fits:
        timing = srv.timings[model]
        threshold, cold, _ = srv.earliest_start(model)
        speed = 1.0 / timing.s_per_step if timing.s_per_step > 0 else 0.0
        load, overhead, per_step = timing.load_s, timing.overhead_s, timing.s_per_step
    return (
        srv.vram_gib, srv.free_vram_gib(), float(srv.queue_len(now)), float(srv.running(now)),
        srv.busy_until(), float(srv.concurrency), float(srv.is_loaded(model)), float(fits),
        speed, load, threshold, float(cold), overhead, per_step,
    )


def snapshot_from_servers(
    nodes: Sequence[NodeFacts],
    task: TaskSpec,
    *,
    now: float,
    arrival_s: float | None = None,
    pending: int = 0,
    cache: RowCache | None = None,
) -> ClusterSnapshot:
    """Build the snapshot of one decision for ``task`` arriving at ``arrival_s`` (default now).

    ``est_delay_s`` is the task's finish (``NodeServer`` FIFO and memory rules, cold start
    included) minus its arrival; ``backlog_s`` is the time until every placed pod is done.
    ``cache`` reuses per-server rows between decisions (same results, less work).
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
        elif cache is not None:
            rows.append(cache.row(srv, model, now))
        else:
            rows.append(row_values(srv, model, now))
        free = facts.vram_free_gib
        flags.append((facts.present, facts.ready, facts.requested_fraction, facts.metrics_age_s,
                      math.nan if free is None else free))
    r = np.array(rows, dtype=float).reshape(n, len(ROW_FIELDS))
    f = np.array(flags, dtype=float).reshape(n, len(FLAG_FIELDS))
    return snapshot_from_rows(r, f, task, now=now, arrival_s=arrival, pending=pending)


def snapshot_from_rows(
    rows_NR: np.ndarray,
    flags_NF: np.ndarray,
    task: TaskSpec,
    *,
    now: float,
    arrival_s: float | None = None,
    pending: int = 0,
) -> ClusterSnapshot:
    """The snapshot from row values (``ROW_FIELDS`` columns) and facts (``FLAG_FIELDS``).

    The one assembly of :func:`snapshot_from_servers` (which builds the matrices from
    servers) and of the operator's column store (which keeps them as arrays between
    decisions, ``ladts_operator/columns.py``); all arithmetic is over whole columns.
    """
    arrival = now if arrival_s is None else arrival_s
    r, f = rows_NR, flags_NF
    col = {name: r[:, j] for j, name in enumerate(ROW_FIELDS)}
    fits = col["fits"] > 0
    cold = col["cold"] > 0
    with np.errstate(invalid="ignore"):
        # ModelTiming.service_s (overhead + steps x s/step), for every node at once.
        service = np.where(fits, col["overhead_s"] + task.steps * col["s_per_step"], np.inf)
        start = np.maximum(now, col["threshold"])
        est = np.where(fits, start + service + np.where(cold, col["load_s"], 0.0) - arrival,
                       np.inf)
    measured = f[:, 4]
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
        pending=pending,
    )


def valid_mask(snapshot: ClusterSnapshot) -> np.ndarray:
    """Return bool [N]: present, ready and the task fits (the mask ``features.encode`` uses)."""
    return np.asarray(
        snapshot.present_N.astype(bool) & snapshot.ready_N.astype(bool)
        & snapshot.fits_N.astype(bool)
    )


def decision_view(snapshot: ClusterSnapshot, mask_N: np.ndarray | None = None) -> DecisionView:
    """The one-environment view of a snapshot for the heuristics (``E = 1``).

    ``requested_fraction`` is the node's current share, without the pod being placed.
    """
    mask = valid_mask(snapshot) if mask_N is None else np.asarray(mask_N, dtype=bool)
    return DecisionView(
        active_E=np.ones(1, dtype=bool),
        node_mask_EN=mask[None, :],
        capacity_EN=snapshot.speed_N[None, :].astype(float),
        queue_len_EN=snapshot.queue_len_N[None, :].astype(float),
        expected_delay_EN=np.where(snapshot.fits_N, snapshot.est_delay_s_N, np.inf)[None, :],
        requested_fraction_EN=snapshot.requested_fraction_N[None, :].astype(float),
        local_node_E=np.full(1, -1, dtype=np.int64),
    )
