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


@dataclass(frozen=True)
class _Row:
    """What one server says about a (model, steps) task.

    Valid from when it was computed until ``until``, the server's next finish (nothing
    changes before it).
    """

    until: float
    revision: int
    vram_gib: float
    vram_free_gib: float
    queue_len: float
    running: float
    busy_until: float
    concurrency: float
    resident: bool
    fits: bool
    speed: float
    load_s: float
    threshold: float
    cold: bool


class RowCache:
    """Per-server rows reused until the server changes or a pod finishes.

    Keyed weakly by the server object, so a server replaced by a new replay drops out.
    """

    def __init__(self) -> None:
        self._rows: weakref.WeakKeyDictionary[NodeServer, dict[str, _Row]] = (
            weakref.WeakKeyDictionary()
        )

    def row(self, srv: NodeServer, model: str, now: float) -> _Row:
        """The row of ``srv`` for a task of ``model`` at ``now`` (computed on a miss)."""
        rows = self._rows.get(srv)
        if rows is None:
            rows = self._rows[srv] = {}
        cached = rows.get(model)
        if cached is not None and now < cached.until and cached.revision == srv.revision:
            return cached
        row = rows[model] = _row(srv, model, now)
        return row


def _row(srv: NodeServer, model: str, now: float) -> _Row:
    fits = srv.can_run(model)
    threshold, cold = math.inf, True
    speed, load = 0.0, math.inf
    if fits:
        timing = srv.timings[model]
        threshold, cold, _ = srv.earliest_start(model)
        speed = 1.0 / timing.s_per_step if timing.s_per_step > 0 else 0.0
        load = timing.load_s
    return _Row(
        until=srv.next_change(now),
        revision=srv.revision,
        vram_gib=srv.vram_gib,
        vram_free_gib=srv.free_vram_gib(),
        queue_len=float(srv.queue_len(now)),
        running=float(srv.running(now)),
        busy_until=srv.busy_until(),
        concurrency=float(srv.concurrency),
        resident=srv.is_loaded(model),
        fits=fits,
        speed=speed,
        load_s=load,
        threshold=threshold,
        cold=cold,
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
    cols: dict[str, list[float]] = {name: [0.0] * n for name in _FLOAT_COLUMNS}
    present, ready, fits, resident = [False] * n, [False] * n, [False] * n, [False] * n
    for i, facts in enumerate(nodes):
        present[i], ready[i] = facts.present, facts.ready
        cols["requested_fraction"][i] = facts.requested_fraction
        cols["metrics_age_s"][i] = facts.metrics_age_s
        srv = facts.server
        if srv is None:
            for name in ("service_s", "est_delay_s", "load_s"):
                cols[name][i] = math.inf
            cols["vram_free_gib"][i] = facts.vram_free_gib or 0.0
            continue
        row = cache.row(srv, task.model, now) if cache is not None else _row(srv, task.model, now)
        cols["vram_gib"][i] = row.vram_gib
        cols["vram_free_gib"][i] = (
            row.vram_free_gib if facts.vram_free_gib is None else facts.vram_free_gib
        )
        cols["queue_len"][i] = row.queue_len
        cols["running"][i] = row.running
        cols["backlog_s"][i] = max(row.busy_until - now, 0.0)
        cols["concurrency"][i] = row.concurrency
        resident[i] = row.resident
        fits[i] = row.fits
        cols["speed"][i] = row.speed
        cols["load_s"][i] = row.load_s
        if not row.fits:
            cols["service_s"][i] = cols["est_delay_s"][i] = math.inf
            continue
        service = srv.service_s(task.model, task.steps, False)
        cols["service_s"][i] = service
        start = max(now, row.threshold)
        cols["est_delay_s"][i] = start + service + (row.load_s if row.cold else 0.0) - arrival
    arrays = {f"{name}_N": np.asarray(values, dtype=float) for name, values in cols.items()}
    return ClusterSnapshot(
        present_N=np.asarray(present, dtype=bool),
        ready_N=np.asarray(ready, dtype=bool),
        fits_N=np.asarray(fits, dtype=bool),
        resident_N=np.asarray(resident, dtype=bool),
        pending=pending,
        **arrays,
    )


_FLOAT_COLUMNS = (
    "speed",
    "service_s",
    "load_s",
    "vram_gib",
    "vram_free_gib",
    "queue_len",
    "running",
    "backlog_s",
    "concurrency",
    "requested_fraction",
    "est_delay_s",
    "metrics_age_s",
)
"""Float columns of :class:`ClusterSnapshot` filled per node (``<name>_N``)."""


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
