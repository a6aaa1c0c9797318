"""The decision snapshot's columns, kept as numpy arrays between decisions.

A filter or prioritize call over N nodes must not walk N Python objects: the state store
(:class:`~ladts_operator.state.ClusterState`) marks a node here whenever it changes (its
``_bump``), and a decision reads whole-cluster arrays, recomputing only

- the rows of nodes marked since the last decision (per model), and
- the rows whose validity ran out: a row of a node's replayed server holds until that
  server's next finish (``NodeServer.next_change``) or the next start of a queued pod
  (``ClusterState.replay_valid_until``), because nothing in the server changes between.

Row values are :func:`ladts_policy.node_snapshot.row_values`, in ``ROW_FIELDS`` order, so the
snapshot assembled from these arrays (:func:`ladts_policy.node_snapshot.snapshot_from_rows`)
equals the one built from the servers directly (``tests/operator/test_columns.py``).

Node indices only grow (a deleted node keeps its index and reads as absent); the filter
verdict per (node, model) is cached the same way, because it depends only on the node object,
its GPU profile and the model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ladts_operator.objects import NodeObservation
from ladts_policy.node_snapshot import FLAG_FIELDS, NO_SERVER_ROW, ROW_FIELDS, row_values
from ladts_policy.sim.config.cluster_config import GpuProfile

if TYPE_CHECKING:
    from ladts_operator.state import ClusterState

NOT_SEEN_NOTE = "node not seen by the watch yet"
"""``profile_note`` of a node known only from a pod bound to it."""


def filter_reason(
    obs: NodeObservation, profile: GpuProfile | None, note: str, model: str
) -> str | None:
    """Why a pod of ``model`` can never run on this node (preemption cannot help), or None."""
    if obs.cordoned:
        return "node is cordoned (spec.unschedulable)"
    if not obs.ready:
        return "node is not Ready"
    if profile is None:
        return note
    if model not in profile.timings:
        return f"model {model} has no timings in GPU profile {profile.name}"
    if not profile.can_run(model):
        need = profile.timings[model].memory_gib
        return (f"model {model} needs {need:g} GiB GPU memory, profile {profile.name} has "
                f"{profile.vram_gib:g} GiB usable")
    return None


class _ModelColumns:
    """Rows and filter verdicts of every node for tasks of one model."""

    def __init__(self, capacity: int) -> None:
        self.rows_CR = np.zeros((capacity, len(ROW_FIELDS)))
        self.until_C = np.full(capacity, -math.inf)
        self.row_dirty_C = np.ones(capacity, dtype=bool)
        self.reason_C = np.full(capacity, None, dtype=object)
        self.reason_dirty_C = np.ones(capacity, dtype=bool)

    def grow(self, capacity: int) -> None:
        old = self.until_C.shape[0]
        rows = np.zeros((capacity, len(ROW_FIELDS)))
        rows[:old] = self.rows_CR
        self.rows_CR = rows
        self.until_C = np.concatenate([self.until_C, np.full(capacity - old, -math.inf)])
        self.row_dirty_C = np.concatenate([self.row_dirty_C, np.ones(capacity - old, bool)])
        self.reason_C = np.concatenate([self.reason_C,
                                        np.full(capacity - old, None, dtype=object)])
        self.reason_dirty_C = np.concatenate([self.reason_dirty_C,
                                              np.ones(capacity - old, bool)])


class NodeColumns:
    """Per-node snapshot columns of a :class:`ClusterState` (see the module docstring)."""

    def __init__(self, state: ClusterState, capacity: int = 64) -> None:
        self.state = state
        self.index: dict[str, int] = {}
        self.names: list[str] = []
        self._capacity = capacity
        self._node_dirty_C = np.ones(capacity, dtype=bool)
        self.present_C = np.zeros(capacity, dtype=bool)
        """The node is in the state store (possibly only from a pod bound to it)."""
        self.seen_C = np.zeros(capacity, dtype=bool)
        """The watch delivered the node object (not a placeholder)."""
        self.has_profile_C = np.zeros(capacity, dtype=bool)
        self.ready_C = np.zeros(capacity, dtype=bool)
        self.requested_C = np.zeros(capacity)
        self._models: dict[str, _ModelColumns] = {}
        self._lookup_key: tuple[int, list[str]] | None = None
        self._lookup_idx = np.zeros(0, dtype=np.int64)

    # --- marking (called by the state store) -----------------------------------------

    def mark(self, name: str) -> None:
        """The node changed (or appeared or vanished): recompute its rows when next read."""
        i = self.index.get(name)
        if i is None:
            i = self._add(name)
        self._node_dirty_C[i] = True
        for cols in self._models.values():
            cols.row_dirty_C[i] = True
            cols.reason_dirty_C[i] = True

    def mark_all(self) -> None:
        """Every node changed (e.g. the service-time factors were replaced)."""
        self._node_dirty_C[:] = True
        for cols in self._models.values():
            cols.row_dirty_C[:] = True
            cols.reason_dirty_C[:] = True

    def _add(self, name: str) -> int:
        i = len(self.names)
        if i >= self._capacity:
            capacity = 2 * self._capacity
            grow = capacity - self._capacity
            self._node_dirty_C = np.concatenate([self._node_dirty_C, np.ones(grow, bool)])
            for attr in ("present_C", "seen_C", "has_profile_C", "ready_C"):
                setattr(self, attr, np.concatenate([getattr(self, attr), np.zeros(grow, bool)]))
            self.requested_C = np.concatenate([self.requested_C, np.zeros(grow)])
            for cols in self._models.values():
                cols.grow(capacity)
            self._capacity = capacity
        self.index[name] = i
        self.names.append(name)
        return i

    # --- reading ---------------------------------------------------------------------

    def lookup(self, names: Sequence[str]) -> np.ndarray:
        """Return int64 [N]: each name's index, -1 for a name the state store never held.

        kube-scheduler sends the same candidate list call after call, so the answer for the
        last list is kept (a list comparison, not N dictionary lookups).
        """
        key = self._lookup_key
        if key is not None and key[0] == len(self.names) and key[1] == names:
            return self._lookup_idx
        get = self.index.get
        idx = np.fromiter((get(n, -1) for n in names), dtype=np.int64, count=len(names))
        self._lookup_key = (len(self.names), list(names))
        self._lookup_idx = idx
        return idx

    def refresh_nodes(self, idx_K: np.ndarray) -> None:
        """Recompute the node-level facts of the marked nodes among ``idx_K`` (all >= 0)."""
        dirty = idx_K[self._node_dirty_C[idx_K]]
        if dirty.size == 0:
            return
        nodes = self.state.nodes
        for i in np.unique(dirty).tolist():
            name = self.names[i]
            entry = nodes.get(name)
            self._node_dirty_C[i] = False
            if entry is None:
                self.present_C[i] = self.seen_C[i] = self.has_profile_C[i] = False
                self.ready_C[i] = False
                self.requested_C[i] = 0.0
                continue
            self.present_C[i] = True
            self.seen_C[i] = entry.profile_note != NOT_SEEN_NOTE
            self.has_profile_C[i] = entry.profile is not None
            self.ready_C[i] = entry.obs.ready and not entry.obs.cordoned
            self.requested_C[i] = self.state.requested_fraction(name)

    def _model(self, model: str) -> _ModelColumns:
        cols = self._models.get(model)
        if cols is None:
            cols = self._models[model] = _ModelColumns(self._capacity)
        return cols

    def rows(self, model: str, idx_K: np.ndarray, now: float) -> np.ndarray:
        """Return float [K, R]: rows of present nodes ``idx_K`` for a ``model`` task at ``now``.

        Call :meth:`refresh_nodes` first; a node without a GPU profile gets ``NO_SERVER_ROW``.
        """
        cols = self._model(model)
        stale = cols.row_dirty_C[idx_K] | (cols.until_C[idx_K] <= now)
        if stale.any():
            for i in np.unique(idx_K[stale]).tolist():
                name = self.names[i]
                cols.row_dirty_C[i] = False
                if not self.has_profile_C[i]:
                    cols.rows_CR[i] = NO_SERVER_ROW
                    cols.until_C[i] = math.inf
                    continue
                srv = self.state.replay(name, now=now).server
                # residency as observed (metrics, else completions), not the replay's end state
                cols.rows_CR[i] = row_values(srv, model, now, self.state.resident(name))
                cols.until_C[i] = min(srv.next_change(now),
                                      self.state.replay_valid_until(name, now))
        return np.asarray(cols.rows_CR[idx_K])

    def flags(self, idx_K: np.ndarray) -> np.ndarray:
        """Return float [K, F] in ``FLAG_FIELDS`` order, no metrics (age 0, free GPU memory NaN)."""
        out = np.zeros((idx_K.shape[0], len(FLAG_FIELDS)))
        out[:, 0] = self.present_C[idx_K]
        out[:, 1] = self.ready_C[idx_K]
        out[:, 2] = self.requested_C[idx_K]
        out[:, 4] = np.nan
        return out

    def filter_reasons(self, model: str, idx_K: np.ndarray) -> np.ndarray:
        """Return object [K]: why nodes ``idx_K`` (watch-seen) can never run ``model``, or None."""
        cols = self._model(model)
        dirty = idx_K[cols.reason_dirty_C[idx_K]]
        if dirty.size:
            nodes = self.state.nodes
            for i in np.unique(dirty).tolist():
                entry = nodes.get(self.names[i])
                cols.reason_dirty_C[i] = False
                cols.reason_C[i] = (
                    "node not in the state" if entry is None
                    else filter_reason(entry.obs, entry.profile, entry.profile_note, model)
                )
        return np.asarray(cols.reason_C[idx_K])


class MetricsColumns:
    """Sample timestamps and free GPU memory per node index, from a metrics view.

    Rebuilt when the view's ``generation`` changes (the poller bumps it once per poll, so
    at most once per ``prometheus_interval_s``); a view without ``generation`` is read on
    every call.
    """

    def __init__(self, columns: NodeColumns) -> None:
        self.columns = columns
        self.timestamp_C = np.zeros(0)
        self.free_C = np.zeros(0)
        self._key: tuple[object, int] | None = None

    def arrays(self, metrics: object, idx_K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(timestamp_K, free_gib_K) of nodes ``idx_K``; NaN where never seen or not said."""
        generation = getattr(metrics, "generation", None)
        key = (generation, len(self.columns.names))
        if generation is None or key != self._key:
            node_metrics = metrics.node_metrics  # type: ignore[attr-defined]
            stamps, free = [], []
            for name in self.columns.names:
                m = node_metrics(name)
                stamps.append(math.nan if m is None else m.timestamp_s)
                free.append(math.nan if m is None or m.vram_free_gib is None
                            else m.vram_free_gib)
            self.timestamp_C = np.array(stamps, dtype=float)
            self.free_C = np.array(free, dtype=float)
            self._key = key
        return self.timestamp_C[idx_K], self.free_C[idx_K]
