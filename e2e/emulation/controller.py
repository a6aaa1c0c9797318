"""Emulation controller: queues bound AIGC pods at their node's model server; kwok does the rest.

Workload model (``docs/design.md``): a bound AIGC pod (annotations ``ladts.io/model`` and
``ladts.io/steps``) is a thin client of its node's model server. kwok's stock ``pod-ready`` stage
turns it Running at once; this controller, watching pods with a label selector, places it in
that node's FIFO (:class:`~e2e.emulation.node_queue.NodeQueue` over the simulator's
``NodeServer``) at the moment it sees the bind and writes start and finish into the pod's
``emulation.ladts.io/*`` annotations in **one patch** (:mod:`e2e.emulation.annotations`). kwok's
``aigc-pod-complete`` stage (:mod:`e2e.emulation.kwok_stages`) turns the pod Succeeded at the
annotated finish. When the controller sees ``Succeeded`` it stamps the observed time next to
the modelled finish, writes the record and deletes the pod (it keeps, per node, the newest
placed pod until a newer one arrives: its annotations carry the node server's state).

Robustness:

- the clock origin lives in a ConfigMap (:func:`~e2e.emulation.clock.shared_clock`); a
  restarted controller lists the pods, rebuilds every node's queue from their annotations
  (:meth:`NodeQueue.rebuild`) and continues: no pod in flight changes its times;
- a pod deleted, evicted (phase Failed) or preempted (deletionTimestamp) leaves its FIFO;
  pods behind it move up and their annotations are rewritten (kwok re-reads ``finish-time``);
- a deleted Node drops its queue; its unfinished pods are recorded and deleted (pod GC);
- a placement is committed in memory before any I/O; its patch is retried until it lands or
  the pod is gone, so no exception after the commit loses the event;
- watches carry a label selector (default :data:`DEFAULT_SELECTOR`); nothing waits in O(n²).
"""

from __future__ import annotations

import functools
import heapq
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from e2e.emulation import annotations as ann
from e2e.emulation.clock import ClusterClock
from e2e.emulation.node_queue import NodeQueue, QueueEntry
from e2e.emulation.pods import APP_LABEL, AigcWork, memory_request_bytes, parse_work
from e2e.emulation.records import (
    NODE_DELETED,
    REJECTED,
    REMOVED,
    SUCCEEDED,
    PodRecord,
    RecordLog,
)
from e2e.emulation.service import ScenarioService
from e2e.emulation.state import EmulationState
from e2e.emulation.watch import RawWatch

# Re-exported for callers of the earlier single-module controller.
__all__ = ["DEFAULT_SELECTOR", "ClusterClock", "EmulationController", "PodRecord"]

DEFAULT_SELECTOR = f"{APP_LABEL[0]}={APP_LABEL[1]}"
MERGE_PATCH = "application/merge-patch+json"
#: Attempts of one API write before it is reported as an error (backoff 0.1 s × 2^k, ≤ 5 s).
MAX_ATTEMPTS = 8


@dataclass
class _Live:
    """A pod the controller placed (or rejected) and has not finished with."""

    record: PodRecord
    entry: QueueEntry | None
    host_bytes: int = 0
    done: bool = False


class EmulationController:
    """Places bound AIGC pods, keeps the FIFOs right, records and cleans up finished pods.

    Use as a context manager or :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        core_api: Any,
        service: ScenarioService,
        clock: ClusterClock,
        *,
        state: EmulationState | None = None,
        namespace: str | None = "default",
        log_path: Path | None = None,
        label_selector: str = DEFAULT_SELECTOR,
        delete_terminal: bool = True,
        workers: int = 4,
    ) -> None:
        """Prepare the controller.

        Args:
            core_api: A ``kubernetes.client.CoreV1Api``.
            service: The scenario's nodes (one model server each).
            clock: The cluster clock (use :func:`~e2e.emulation.clock.shared_clock` so a
                restarted controller keeps the origin).
            state: Emulation state updated at modelled start / finish (feeds the exporter).
            namespace: Watch one namespace (None: all).
            log_path: Append one JSON line per finished pod (read back on restart, so a pod is
                never recorded twice).
            label_selector: Server-side selector of the pods to watch.
            delete_terminal: Delete pods once recorded.
            workers: Parallel API writers (a pod's writes always go to the same one, in order).
        """
        self.api = core_api
        self.service = service
        self.clock = clock
        self.state = state
        self.namespace = namespace
        self.label_selector = label_selector
        self.delete_terminal = delete_terminal
        self.errors: list[str] = []
        self._log = RecordLog(log_path)
        self._lock = threading.Condition()
        self._queues: dict[str, NodeQueue] = {}
        self._live: dict[str, _Live] = {}
        self._records: dict[str, PodRecord] = {}  # finished ones, by uid, in finish order
        self._first_seen: dict[str, float] = {}  # uid -> wall epoch of first unbound sight
        self._newest: dict[str, tuple[int, str, str, str]] = {}  # node -> (seq, uid, ns, name)
        self._keep: dict[str, tuple[str, str, str]] = {}  # node -> terminal pod kept for state
        self._seq = 0
        self._finished = 0
        self._timers: list[tuple[float, int, str, str, int]] = []  # (epoch, n, action, uid, ver)
        self._timer_n = 0
        self._versions: dict[str, int] = {}
        self._stop = threading.Event()
        self._jobs: list[queue.Queue[Callable[[], None] | None]] = [
            queue.Queue() for _ in range(max(1, workers))
        ]
        self._threads: list[threading.Thread] = []
        self._watches: list[RawWatch] = []
        self._listed = False

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> EmulationController:
        """Rebuild from the cluster's pods (synchronously), then start watching; returns self."""
        if self._threads:
            return self
        self._stop.clear()
        pods = RawWatch(
            self._pod_list_fn(),
            self._on_pod_event,
            self._on_pod_list,
            self._note_error,
            label_selector=self.label_selector,
        )
        nodes = RawWatch(self.api.list_node, self._on_node_event, lambda _: None, self._note_error)
        rv_pods = pods.list_once()
        rv_nodes = nodes.list_once()
        self._watches = [pods, nodes]
        self._threads = [
            threading.Thread(target=pods.run, args=(rv_pods,), name="emu-pods", daemon=True),
            threading.Thread(target=nodes.run, args=(rv_nodes,), name="emu-nodes", daemon=True),
            threading.Thread(target=self._timer_loop, name="emu-timer", daemon=True),
        ]
        self._threads += [
            threading.Thread(target=self._worker_loop, args=(q,), name=f"emu-api-{i}", daemon=True)
            for i, q in enumerate(self._jobs)
        ]
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop watching, finish the API writes already queued, then join every thread."""
        deadline = time.monotonic() + timeout_s
        for w in self._watches:
            w.stop()
        for t in self._threads:
            if t.name in ("emu-pods", "emu-nodes"):
                t.join(timeout=max(0.1, deadline - time.monotonic()))
        for q in self._jobs:
            q.put(None)  # after every queued write: workers drain, then exit
        for t in self._threads:
            if t.name.startswith("emu-api"):
                t.join(timeout=max(0.1, deadline - time.monotonic()))
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        for t in self._threads:
            t.join(timeout=max(0.1, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        self._threads = []
        if alive:
            self._note_error(f"threads still alive after stop: {alive}")

    def __enter__(self) -> EmulationController:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- queries

    def records(self) -> list[PodRecord]:
        """Copies of every record (finished and in flight), in placement order."""
        with self._lock:
            recs = [*self._records.values(), *(lv.record for lv in self._live.values())]
        return sorted((replace(r) for r in recs), key=lambda r: r.seq)

    def record(self, name: str, namespace: str = "default") -> PodRecord | None:
        """The newest record of one pod by name, or None."""
        found = [r for r in self.records() if r.name == name and r.namespace == namespace]
        return found[-1] if found else None

    def finished_count(self) -> int:
        """Pods whose end (any outcome) was recorded."""
        with self._lock:
            return self._finished

    def wait_finished(self, count: int, timeout_s: float) -> bool:
        """Block until ``count`` pods ended (True) or ``timeout_s`` passed (False)."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._finished < count:
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return False
                self._lock.wait(timeout=min(left, 1.0))
        return True

    def pending_writes(self) -> int:
        """API writes queued and not yet done."""
        return sum(q.qsize() for q in self._jobs)

    # ---------------------------------------------------------------- pods

    def _pod_list_fn(self) -> Callable[..., Any]:
        if self.namespace is None:
            return self.api.list_pod_for_all_namespaces  # type: ignore[no-any-return]
        return functools.partial(self.api.list_namespaced_pod, self.namespace)

    def _on_pod_list(self, items: list[dict[str, Any]]) -> None:
        """First list: rebuild every node's FIFO from the annotations; a relist (after the
        watch expired) replays the listed pods as events and ends the pods that vanished."""
        now_epoch = time.time()
        now = self.clock.cluster_of(now_epoch)
        if self._listed:
            with self._lock:
                listed = {str((p.get("metadata") or {}).get("uid")) for p in items}
                for uid in [u for u in self._live if u not in listed]:
                    self._leave(uid, now, "deleted (missed while the watch was down)")
                for pod in items:
                    self._handle_pod("MODIFIED", pod, now_epoch)
            return
        self._listed = True
        by_node: dict[str, list[tuple[dict[str, Any], AigcWork, ann.PlacementNote]]] = {}
        fresh: list[dict[str, Any]] = []
        with self._lock:
            for pod in items:
                meta = pod.get("metadata") or {}
                notes = meta.get("annotations") or {}
                work = parse_work(notes)
                if work is None or meta.get("uid") in self._live:
                    continue
                note = ann.parse_note(notes)
                if note is not None and note.node == (pod.get("spec") or {}).get("nodeName"):
                    by_node.setdefault(note.node, []).append((pod, work, note))
                else:
                    fresh.append(pod)
            for node, placed in by_node.items():
                self._adopt(node, placed, now)
            for pod in sorted(fresh, key=lambda p: p["metadata"].get("creationTimestamp", "")):
                self._handle_pod("ADDED", pod, now_epoch)

    def _adopt(
        self,
        node: str,
        placed: list[tuple[dict[str, Any], AigcWork, ann.PlacementNote]],
        now: float,
    ) -> None:
        """Rebuild one node's FIFO from persisted placements (lock held)."""
        try:
            q = self._queue(node)
        except KeyError:
            self._note_error(f"pods placed on unknown node {node}")
            return
        entries = []
        for pod, work, note in placed:
            uid = pod["metadata"]["uid"]
            entry = QueueEntry(
                uid, note.seq, self.service.task(work), note.bind_s, note.start_s,
                note.finish_s, note.cold, note.loaded, note.ready,
            )  # fmt: skip
            entries.append(entry)
            self._seq = max(self._seq, note.seq)
            self._track_newest(node, note.seq, pod)
            if uid in self._log:  # recorded by an earlier controller: state only
                continue
            created = work.created_s if work.created_s is not None else note.bind_s
            latency_ms = (note.bind_s - created) / self.clock.time_scale * 1000.0
            rec = _record(pod, work, node, entry, created, latency_ms)
            self._live[uid] = _Live(rec, entry)
            self._schedule_state(uid, entry)
        q.rebuild(entries, now)
        newest = self._newest.get(node)
        for pod, _, _ in placed:
            uid = pod["metadata"]["uid"]
            if uid in self._live:  # ended while no controller ran: recorded now
                self._handle_pod("MODIFIED", pod, time.time())
            elif self.delete_terminal and newest is not None and newest[1] == uid:
                self._keep[node] = (uid, pod["metadata"]["namespace"], pod["metadata"]["name"])
            elif self.delete_terminal:
                self._delete(uid, pod["metadata"]["namespace"], pod["metadata"]["name"])

    def _on_pod_event(self, kind: str, pod: dict[str, Any]) -> None:
        """Watch callback: never raises (an error is noted and the watch goes on)."""
        try:
            with self._lock:
                self._handle_pod(kind, pod, time.time())
        except Exception as err:
            name = (pod.get("metadata") or {}).get("name")
            self._note_error(f"event {kind} {name}: {type(err).__name__}: {err}")

    def _handle_pod(self, kind: str, pod: dict[str, Any], now_epoch: float) -> None:
        """One observed pod (lock held)."""
        meta = pod.get("metadata") or {}
        notes = meta.get("annotations") or {}
        work = parse_work(notes)
        if work is None:
            return
        uid = str(meta.get("uid"))
        node = (pod.get("spec") or {}).get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        now = self.clock.cluster_of(now_epoch)
        if kind == "DELETED" or meta.get("deletionTimestamp") or phase == "Failed":
            self._leave(uid, now, _why_gone(kind, pod))
            if kind == "DELETED":
                self._first_seen.pop(uid, None)
            return
        if not node:
            self._first_seen.setdefault(uid, now_epoch)
            return
        live = self._live.get(uid)
        if live is None and uid not in self._records and uid not in self._log:
            if ann.REJECTED in notes or ann.parse_note(notes) is not None:
                return  # placed by another controller whose state we do not hold
            self._place(pod, work, node, now, now_epoch)
            live = self._live.get(uid)
        if phase == "Succeeded" and live is not None and not live.done:
            self._succeeded(uid, live, now)

    def _place(
        self, pod: dict[str, Any], work: AigcWork, node: str, now: float, now_epoch: float
    ) -> None:
        """Queue a newly bound pod and write its placement (lock held)."""
        uid = str(pod["metadata"]["uid"])
        first = self._first_seen.pop(uid, None)
        if work.created_s is not None:
            created = work.created_s
        elif first is not None:
            created = self.clock.cluster_of(first)
        else:
            created = now
        latency_ms = (now_epoch - self.clock.epoch_of(created)) * 1000.0
        # Everything that can raise happens before the placement is committed.
        try:
            host_bytes = memory_request_bytes(pod)
        except ValueError as err:
            host_bytes = 0
            self._note_error(f"{pod['metadata']['name']}: memory request: {err}")
        task = self.service.task(work)
        self._seq += 1
        seq = self._seq
        try:
            entry = self._queue(node).place(uid, seq, task, now)
        except (KeyError, ValueError) as err:
            message = f"node {node} cannot serve {work.model}: {err}"
            stub = QueueEntry(uid, seq, task, now, now, now, False, ())
            rec = _record(pod, work, node, stub, created, latency_ms)
            rec.outcome, rec.error = REJECTED, message
            self._live[uid] = _Live(rec, None)
            self._end(uid, self._live[uid])
            self._write(pod, {"metadata": {"annotations": {ann.REJECTED: message}}})
            return
        # Committed: from here on only bookkeeping that cannot fail, and a queued (retried) write.
        record = _record(pod, work, node, entry, created, latency_ms)
        self._live[uid] = _Live(record, entry, host_bytes)
        self._write(pod, self._placement_patch(node, entry))
        self._schedule_state(uid, entry)
        previous = self._keep.pop(node, None)
        if previous is not None:
            self._delete(*previous)
        self._track_newest(node, seq, pod)

    def _placement_patch(self, node: str, entry: QueueEntry) -> dict[str, Any]:
        """The annotation patch of one placement."""
        note = ann.PlacementNote(
            entry.seq, node, entry.bind_s, entry.start_s, entry.finish_s, entry.cold, entry.loaded,
            entry.ready,
        )
        notes = note.annotations(
            self.clock.epoch_of(entry.start_s), self.clock.epoch_of(entry.finish_s)
        )
        return {"metadata": {"annotations": notes}}

    def _succeeded(self, uid: str, live: _Live, now: float) -> None:
        """kwok marked the pod Succeeded: stamp, record, clean up (lock held)."""
        rec = live.record
        rec.observed_finish_s = now
        rec.outcome = SUCCEEDED
        self._end(uid, live)
        newest = self._newest.get(rec.node)
        if not self.delete_terminal:
            return
        if newest is not None and newest[1] == uid:
            self._keep[rec.node] = (uid, rec.namespace, rec.name)  # carries the server state
        else:
            self._delete(uid, rec.namespace, rec.name)

    def _leave(self, uid: str, now: float, why: str) -> None:
        """The pod left its FIFO at ``now`` (deleted / evicted / preempted) (lock held)."""
        live = self._live.get(uid)
        if live is None or live.done:
            return
        q = self._queues.get(live.record.node)
        if q is not None and live.entry is not None:
            for moved in q.remove(uid, now):
                other = self._live.get(moved.key)
                if other is None:
                    continue
                other.entry = moved
                other.record.start_s, other.record.finish_s = moved.start_s, moved.finish_s
                other.record.cold = moved.cold
                other.record.replaced += 1
                r = other.record
                self._write(
                    {"metadata": {"uid": moved.key, "name": r.name, "namespace": r.namespace}},
                    self._placement_patch(r.node, moved),
                )
                self._schedule_state(moved.key, moved)
        rec = live.record
        if live.entry is not None and live.entry.finish_s > now:
            rec.finish_s = now  # service cut short (or never started)
        rec.outcome = rec.outcome or REMOVED
        rec.error = rec.error or why
        self._end(uid, live)

    def _end(self, uid: str, live: _Live) -> None:
        """Move a pod's record to the finished ones and log it (lock held)."""
        live.done = True
        self._live.pop(uid, None)
        self._records[uid] = live.record
        self._finished += 1
        self._versions[uid] = self._versions.get(uid, 0) + 1
        if self.state is not None:
            self.state.finish(live.record.node, live.record.name)
        self._log.append(live.record)
        self._lock.notify_all()

    def _track_newest(self, node: str, seq: int, pod: dict[str, Any]) -> None:
        """Remember the newest placement per node (lock held)."""
        meta = pod["metadata"]
        if node not in self._newest or self._newest[node][0] < seq:
            self._newest[node] = (seq, str(meta["uid"]), meta["namespace"], meta["name"])

    def _queue(self, node: str) -> NodeQueue:
        """The node's FIFO (created on first use; KeyError for a node outside the scenario)."""
        q = self._queues.get(node)
        if q is None:
            q = self._queues[node] = NodeQueue(self.service.server_factory(node))
        return q

    # ---------------------------------------------------------------- nodes

    def _on_node_event(self, kind: str, node: dict[str, Any]) -> None:
        """A deleted Node drops its FIFO; its unfinished pods end and are deleted (pod GC)."""
        if kind != "DELETED":
            return
        name = str((node.get("metadata") or {}).get("name"))
        try:
            with self._lock:
                self._queues.pop(name, None)
                self._keep.pop(name, None)
                self._newest.pop(name, None)
                gone = [(u, lv) for u, lv in self._live.items() if lv.record.node == name]
                now = self.clock.now()
                for uid, live in gone:
                    rec = live.record
                    if live.entry is not None and live.entry.finish_s > now:
                        rec.finish_s = now
                    rec.outcome, rec.error = NODE_DELETED, f"node {name} deleted"
                    self._end(uid, live)
                    self._delete(uid, rec.namespace, rec.name)
        except Exception as err:
            self._note_error(f"node {name} deleted: {type(err).__name__}: {err}")

    # ---------------------------------------------------------------- API writes

    def _write(self, pod: dict[str, Any], body: dict[str, Any]) -> None:
        """Queue a merge patch of the pod's metadata (retried; 404 = gone, fine)."""
        meta = pod["metadata"]
        name, namespace = meta["name"], meta["namespace"]

        def patch() -> None:
            self.api.patch_namespaced_pod(
                name, namespace, body, _content_type=MERGE_PATCH, _preload_content=False
            )

        self._submit(str(meta["uid"]), patch, f"patch {namespace}/{name}")

    def _delete(self, uid: str, namespace: str, name: str) -> None:
        """Queue the deletion of a recorded pod (grace 0; kwok's pod-delete finishes it)."""

        def delete() -> None:
            self.api.delete_namespaced_pod(
                name, namespace, grace_period_seconds=0, _preload_content=False
            )

        self._submit(uid, delete, f"delete {namespace}/{name}")

    def _submit(self, uid: str, action: Callable[[], None], what: str) -> None:
        """Hand one write to the pod's worker, with retries."""

        def job() -> None:
            from kubernetes.client.exceptions import ApiException

            for attempt in range(MAX_ATTEMPTS):
                try:
                    action()
                    return
                except ApiException as err:
                    if err.status == 404:
                        return
                    last = f"{err.status} {err.reason}"
                except Exception as err:  # connection reset, timeout: retry
                    last = f"{type(err).__name__}: {err}"
                if self._stop.wait(min(5.0, 0.1 * 2**attempt)):
                    break
            self._note_error(f"{what}: gave up: {last}")

        self._jobs[hash(uid) % len(self._jobs)].put(job)

    def _worker_loop(self, jobs: queue.Queue[Callable[[], None] | None]) -> None:
        """Run the writes of the pods assigned to this worker, in order."""
        while True:
            job = jobs.get()
            if job is None:
                return
            job()

    # ---------------------------------------------------------------- exporter state

    def _schedule_state(self, uid: str, entry: QueueEntry) -> None:
        """Update the exporter state at the modelled start and finish (lock held)."""
        if self.state is None:
            return
        version = self._versions[uid] = self._versions.get(uid, 0) + 1
        for at_s, action in ((entry.start_s, "start"), (entry.finish_s, "finish")):
            self._timer_n += 1
            item = (self.clock.epoch_of(at_s), self._timer_n, action, uid, version)
            heapq.heappush(self._timers, item)
        self._lock.notify_all()

    def _timer_loop(self) -> None:
        """Apply due exporter-state changes (skipping superseded ones)."""
        while not self._stop.is_set():
            with self._lock:
                if not self._timers or self._timers[0][0] > time.time():
                    wait = self._timers[0][0] - time.time() if self._timers else 1.0
                    self._lock.wait(timeout=min(max(wait, 0.0), 1.0))
                    continue
                _, _, action, uid, version = heapq.heappop(self._timers)
                live = self._live.get(uid)
                if live is None or self._versions.get(uid) != version or self.state is None:
                    continue
                rec = live.record
                if action == "start":
                    gib = self.service.gpu_memory_gib(rec.node, rec.model)
                    self.state.start(rec.node, rec.name, gib, live.host_bytes)
                else:
                    self.state.finish(rec.node, rec.name)

    def _note_error(self, message: str) -> None:
        """Remember an error (bounded list)."""
        if len(self.errors) < 1000:
            self.errors.append(message)


def _record(
    pod: dict[str, Any],
    work: AigcWork,
    node: str,
    entry: QueueEntry,
    created_s: float,
    latency_ms: float,
) -> PodRecord:
    """The record of a placed pod."""
    meta = pod["metadata"]
    return PodRecord(
        namespace=meta["namespace"], name=meta["name"], uid=str(meta["uid"]), node=node,
        model=work.model, steps=work.steps, seq=entry.seq, created_s=created_s,
        bind_s=entry.bind_s, start_s=entry.start_s, finish_s=entry.finish_s, cold=entry.cold,
        scheduling_latency_wall_ms=latency_ms, observed_finish_s=math.nan,
    )  # fmt: skip


def _why_gone(kind: str, pod: dict[str, Any]) -> str:
    """Why a pod left its node: deleted, deleting (eviction / preemption), failed."""
    status = pod.get("status") or {}
    if kind == "DELETED":
        return "deleted"
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "deleting"
    return f"failed: {status.get('reason') or ''} {status.get('message') or ''}".strip()
