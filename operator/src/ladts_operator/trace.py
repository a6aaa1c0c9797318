"""The decision trace: JSONL records of decisions, binds and completions, size-rotated.

One JSON object per line with ``kind``: ``decision`` (pod UID, node names, encoded features,
mask, preferences and scores, chosen node, scorer, version, noise seed, fallback),
``bind`` (pod UID and the node it went to), ``completion`` (:func:`completion_record`: pod
UID, node, model, steps, creation, bind, start and finish times, the service delay
creation -> finish, observed and predicted service seconds), ``node`` (:func:`node_record`:
the node's GPU profile, allocatable, concurrency and resident models, written when first seen
and when one of them changes) and ``node_deleted`` (node). Records join by ``pod_uid``; this
is what ``ladts calibrate`` (and later ``ladts train --from-traces``) reads. The file
rotates at ``max_bytes`` into ``PATH.1`` ... ``PATH.<backups>`` (the oldest dropped), so its
disk use is bounded by ``(backups + 1) x max_bytes``.

The trace is also the service-time estimator's memory: :func:`restore_corrector` replays its
``completion`` and ``node_deleted`` records, oldest file first, into a fresh
:class:`~ladts_policy.service_estimate.ServiceTimeCorrector`, which then holds the factors
the process had before it stopped (the same observations in the same order). Records
rotated out are lost to it; their EWMA weight is at most ``(1 - alpha)^k`` after ``k`` newer
completions of the same (node, model), so a trace that keeps a few hundred completions per
pair loses nothing measurable.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ladts_operator import jsonio
from ladts_policy.service_estimate import ServiceTimeCorrector

if TYPE_CHECKING:
    from ladts_operator.state import Completion, NodeEntry

log = logging.getLogger(__name__)


_STOP = object()
"""Tells the writer thread to finish."""


class TraceLog:
    """Append-only JSONL with rotation, written by a background thread (writes never raise).

    :meth:`write` only queues the record (or a function that builds it), so encoding and
    file I/O stay off the extender's request path: a 500-node decision record is tens of
    kilobytes. The queue is bounded (``max_pending``); a record that does not fit is dropped
    and counted (``dropped``) rather than slowing scheduling. :meth:`flush` waits until
    every queued record is on disk; :meth:`close` flushes and stops the thread.
    """

    def __init__(self, path: Path, *, max_bytes: int, backups: int,
                 max_pending: int = 10_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._handler = RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_pending)
        self.errors = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="ladts-trace", daemon=True)
        self._thread.start()

    def write(self, record: dict[str, Any] | Callable[[], dict[str, Any]]) -> None:
        """Queue one record (or a function returning it, called on the writer thread)."""
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("trace writer behind: %d records dropped", self.dropped)

    def flush(self) -> None:
        """Wait until every record queued so far is written and flushed."""
        if self._thread.is_alive():
            self._queue.join()

    def close(self) -> None:
        """Write what is queued, stop the writer and close the file."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        self._handler.close()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                self._write_now(item() if callable(item) else item)
                if self._queue.empty():
                    stream = self._handler.stream
                    if stream is not None:
                        stream.flush()
            except Exception as exc:  # a bad record must not stop the writer
                self.errors += 1
                log.error("trace write failed: %s", exc)
            finally:
                self._queue.task_done()

    def _write_now(self, record: dict[str, Any]) -> None:
        line = jsonio.dumps(record).decode()
        rec = logging.LogRecord("ladts.trace", logging.INFO, "", 0, line, None, None)
        if self._handler.shouldRollover(rec):
            self._handler.doRollover()
        stream = self._handler.stream or self._handler._open()
        self._handler.stream = stream
        stream.write(line + "\n")


def completion_record(done: Completion, *, now: float) -> dict[str, Any]:
    """The ``completion`` record of a finished pod."""
    pod = done.pod
    return {
        "kind": "completion",
        "time": now,
        "pod_uid": pod.uid,
        "pod": f"{pod.namespace}/{pod.name}",
        "node": done.node,
        "model": done.model,
        "steps": pod.work.steps if pod.work is not None else None,
        "created_s": pod.created_s,
        "bind_s": pod.bind_s,
        "start_s": done.start_s,
        "finish_s": done.finish_s,
        "service_delay_s": done.service_delay_s,
        "observed_s": done.observed_s,
        "predicted_s": done.predicted_s,
    }


def node_record(entry: NodeEntry, *, now: float) -> dict[str, Any]:
    """The ``node`` record of a node as the store holds it."""
    obs = entry.obs
    return {
        "kind": "node",
        "time": now,
        "node": obs.name,
        "profile": entry.profile.name if entry.profile is not None else None,
        "cpu": obs.cpu,
        "memory_gib": obs.memory_gib,
        "concurrency": obs.concurrency,
        "resident": list(obs.declared_resident),
    }


class NodeRecorder:
    """Writes a node's ``node`` record when it is new or its recorded facts changed."""

    def __init__(self, trace: TraceLog) -> None:
        self.trace = trace
        self._last: dict[str, tuple[Any, ...]] = {}

    def __call__(self, entry: NodeEntry) -> bool:
        """Record ``entry`` if needed; return whether a record was written."""
        record = node_record(entry, now=time.time())
        facts = (record["profile"], record["cpu"], record["memory_gib"], record["concurrency"],
                 tuple(record["resident"]))
        if self._last.get(record["node"]) == facts:
            return False
        self._last[record["node"]] = facts
        self.trace.write(record)
        return True


def trace_files(path: Path, backups: int) -> list[Path]:
    """The trace's files that exist, oldest first (``PATH.<backups>`` ... ``PATH.1``, PATH)."""
    candidates = [path.with_name(f"{path.name}.{k}") for k in range(backups, 0, -1)] + [path]
    return [p for p in candidates if p.is_file()]


def read_records(path: Path, backups: int) -> Iterator[dict[str, Any]]:
    """Every record of the trace, oldest first; unreadable lines are skipped and logged."""
    for file in trace_files(path, backups):
        with open(file, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                try:
                    record = json.loads(line)
                except ValueError:
                    log.warning("%s:%d: not a JSON record, skipped", file, number)
                    continue
                if isinstance(record, dict):
                    yield record


def restore_corrector(corrector: ServiceTimeCorrector, records: Iterator[dict[str, Any]]
                      ) -> int:
    """Replay ``completion`` and ``node_deleted`` records into ``corrector``; return how many.

    A record missing a field or with a wrong type is skipped (a truncated last line after a
    crash, or a hand-edited file, must not stop the process from starting).
    """
    used = 0
    for record in records:
        kind = record.get("kind")
        if kind == "node_deleted" and isinstance(record.get("node"), str):
            corrector.forget_node(record["node"])
            used += 1
        elif kind == "completion":
            node, model = record.get("node"), record.get("model")
            observed, predicted = record.get("observed_s"), record.get("predicted_s")
            if (isinstance(node, str) and isinstance(model, str)
                    and isinstance(observed, int | float) and isinstance(predicted, int | float)):
                corrector.observe(node, model, observed_s=float(observed),
                                  predicted_s=float(predicted))
                used += 1
    return used
