"""One node's model-server FIFO with removals and rebuilds (pure, no I/O).

:class:`NodeQueue` wraps the simulator's :class:`~ladts_policy.sim.dynamics.node_service.NodeServer`
(the discipline itself: FIFO up to the concurrency, VRAM admission, cold starts) and adds what a
live cluster needs and the simulator does not:

- **removal** (pod deleted, evicted or preempted at cluster time ``t``): a pod that had started
  frees its slot at ``t`` (its model stays loaded); pods not yet started at ``t`` move up. The
  server is restored to its state right after the last placement that had started by ``t`` and
  the waiting pods are placed again at ``t`` in FIFO order. A waiting pod placed at ``bind < t``
  with start ``> t`` started at its threshold, and placing it again at ``t`` from the same state
  gives that same threshold, so nothing changes when nothing was removed;
- **rebuild** after a controller restart, from the placements persisted in pod annotations: the
  state right after the newest placement is its loaded-models snapshot plus the unfinished pods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from ladts_policy.sim.dynamics.node_service import NodeServer, ServiceTask, Stamp


@dataclass(frozen=True)
class QueueEntry:
    """One pod's place in a node's FIFO."""

    key: str
    """Pod identity (its uid)."""

    seq: int
    """Placement order (larger = placed later)."""

    task: ServiceTask
    """What the pod asks of the node."""

    bind_s: float
    """Cluster time the pod was first placed."""

    start_s: float
    """Modelled start, cluster seconds."""

    finish_s: float
    """Modelled finish, cluster seconds."""

    cold: bool
    """Whether the pod pays the model load."""

    loaded: tuple[tuple[str, Stamp], ...]
    """The server's loaded models and their LRU stamps ``(time, seq)`` right after this
    placement (``NodeServer.loaded_snapshot``)."""

    ready: tuple[tuple[str, float], ...] = ()
    """When each model's load ends, right after this placement (``NodeServer.ready_snapshot``):
    a warm pod of a model still loading waits for it."""


class NodeQueue:
    """The FIFO of one node: place, remove, forget finished pods, rebuild."""

    def __init__(self, server_factory: Callable[[], NodeServer]) -> None:
        """``server_factory`` builds the node's fresh server (preloaded models, idle)."""
        self._factory = server_factory
        self._server = server_factory()
        self._entries: dict[str, QueueEntry] = {}  # unfinished, in seq order
        self._retired: QueueEntry | None = None  # newest placement already forgotten

    @property
    def server(self) -> NodeServer:
        """The underlying server (read-only use: ``can_run``, ``service_s``, ...)."""
        return self._server

    def entries(self) -> list[QueueEntry]:
        """Unfinished pods in FIFO order."""
        return list(self._entries.values())

    def get(self, key: str) -> QueueEntry | None:
        """The entry of one pod (None when unknown or forgotten)."""
        return self._entries.get(key)

    def place(self, key: str, seq: int, task: ServiceTask, now: float) -> QueueEntry:
        """Queue a newly bound pod at ``now``; its start and finish are fixed unless a pod ahead
        is removed.

        Raises:
            ValueError: The model cannot run on this node.
        """
        if self._entries and seq <= next(reversed(self._entries.values())).seq:
            raise ValueError(f"seq {seq} is not after the last placement on this node")
        self.forget_finished(now)
        placed = self._server.place(task, now)
        entry = QueueEntry(
            key, seq, task, now, placed.start_s, placed.finish_s, placed.cold,
            self._server.loaded_snapshot(), self._server.ready_snapshot(),
        )  # fmt: skip
        self._entries[key] = entry
        return entry

    def remove(self, key: str, now: float) -> list[QueueEntry]:
        """Take a pod out at ``now``; return the entries whose start or finish changed."""
        removed = self._entries.pop(key, None)
        if removed is None or removed.finish_s <= now:
            return []
        started = [e for e in self._entries.values() if e.start_s <= now]
        waiting = [e for e in self._entries.values() if e.start_s > now]
        bases = [*started, *([removed] if removed.start_s <= now else [])]
        if self._retired is not None:
            bases.append(self._retired)
        base = max(bases, key=lambda e: e.seq, default=None)
        running = [e for e in started if e.finish_s > now]
        self._restore(base, running)
        changed = []
        for entry in waiting:
            placed = self._server.place(entry.task, now)
            new = replace(
                entry, start_s=placed.start_s, finish_s=placed.finish_s, cold=placed.cold,
                loaded=self._server.loaded_snapshot(), ready=self._server.ready_snapshot(),
            )  # fmt: skip
            self._entries[entry.key] = new  # re-insertion keeps FIFO order (waiting is ordered)
            if (new.start_s, new.finish_s, new.cold) != (entry.start_s, entry.finish_s, entry.cold):
                changed.append(new)
        self._entries = dict(sorted(self._entries.items(), key=lambda kv: kv[1].seq))
        return changed

    def forget_finished(self, now: float) -> list[QueueEntry]:
        """Drop entries finished by ``now`` (kept only as the newest retired placement)."""
        done = [e for e in self._entries.values() if e.finish_s <= now]
        for entry in done:
            del self._entries[entry.key]
            if self._retired is None or entry.seq > self._retired.seq:
                self._retired = entry
        return done

    def rebuild(self, entries: Iterable[QueueEntry], now: float) -> None:
        """Restore from persisted placements (any order; finished ones give the newest state).

        The server state is the one right after the newest placement among ``entries``; the
        unfinished ones (finish after ``now``) are queued again with their persisted times.
        """
        ordered = sorted(entries, key=lambda e: e.seq)
        base = ordered[-1] if ordered else None
        unfinished = [e for e in ordered if e.finish_s > now]
        self._restore(base, unfinished)
        self._entries = {e.key: e for e in unfinished}
        finished = [e for e in ordered if e.finish_s <= now]
        self._retired = finished[-1] if finished else None

    def _restore(self, base: QueueEntry | None, running: list[QueueEntry]) -> None:
        """Server state right after ``base``'s placement with ``running`` unfinished."""
        self._server = self._factory()
        if base is None:
            return
        self._server.restore(
            loaded=base.loaded,
            last_start=base.start_s,
            pods=[(e.task, e.start_s, e.finish_s, e.cold) for e in running],
            ready=dict(base.ready),
        )
