"""Emulation controller: moves bound AIGC pods through their lifecycle in cluster time.

A watch on pods (a background thread) notices when an AIGC pod (annotations ``ladts.io/model``
and ``ladts.io/steps``) is bound to a node. At that moment (the *bind* time, in cluster time)
it asks the node's service model (:class:`~e2e.emulation.service.ScenarioService`, i.e. helper
B's :class:`NodeServer`, the simulator's own FIFO / concurrency / VRAM / cold-start discipline)
for the pod's start and finish, then a timer thread patches the pod status to ``Running`` at the
start and to ``Succeeded`` (container terminated, exit code 0) at the finish. Pods without the
annotations are left to kwok.

Cluster time runs ``time_scale`` times faster than wall time (:class:`ClusterClock`), so an hour
of cluster time can take a minute. Every recorded time is cluster seconds since the clock's
origin: creation (the pod's ``ladts.io/emulation-created-s`` annotation when present, else the
moment the watch first saw it), bind, start and finish. Records go to memory
(:meth:`EmulationController.records`), to an optional JSONL log, and (``annotate=True``) to the
pod's annotations ``ladts.io/emulation-{created,bind,start,finish}-s`` / ``-cold`` at finish.

Coexistence with kwok: kwok's stock "fast" stages mark every bound pod Running at once. Start
kwok with the stage file of :mod:`e2e.emulation.kwok_stages` and kwok ignores AIGC pods (except
for deletion), so they stay Pending while queued at their node and turn Running at the modelled
start. With stock stages the controller still works: the pod shows Running from bind (kwok),
the controller refreshes the container's ``startedAt`` at the modelled start and completes it;
kwok's ``pod-complete`` stage only touches Job-owned pods, so it never races the completion.
"""

from __future__ import annotations

import functools
import heapq
import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from e2e.emulation.pods import AigcWork, parse_work
from e2e.emulation.state import EmulationState

RECORD_ANNOTATION_PREFIX = "ladts.io/emulation-"
MERGE_PATCH = "application/merge-patch+json"
WATCH_TIMEOUT_S = 1


class ClusterClock:
    """Cluster time = ``time_scale`` × wall seconds since ``origin`` (monotonic)."""

    def __init__(
        self,
        time_scale: float,
        origin: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Start the clock now (or at ``origin``, a ``monotonic()`` value)."""
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        self.time_scale = float(time_scale)
        self._monotonic = monotonic
        self.origin = monotonic() if origin is None else origin

    def now(self) -> float:
        """Current cluster time in seconds."""
        return (self._monotonic() - self.origin) * self.time_scale

    def wall_until(self, cluster_s: float) -> float:
        """Wall seconds until cluster time ``cluster_s`` (negative when past)."""
        return (cluster_s - self.now()) / self.time_scale


@dataclass(frozen=True)
class Placement:
    """Start and finish of one pod on its node (cluster seconds) and whether it loaded the model."""

    start_s: float
    finish_s: float
    cold: bool


class ServiceModel(Protocol):
    """Per-node service discipline: where the controller gets start/finish times."""

    def place(self, node: str, work: AigcWork, now_s: float) -> Placement:
        """Queue ``work`` on ``node`` at cluster time ``now_s``; raise ValueError if impossible."""
        ...

    def gpu_memory_gib(self, node: str, model: str) -> float:
        """GPU memory the model holds while running on ``node``."""
        ...


@dataclass
class PodRecord:
    """Lifecycle of one AIGC pod, cluster seconds."""

    namespace: str
    name: str
    uid: str
    node: str
    model: str
    steps: int
    created_s: float
    bind_s: float
    start_s: float
    finish_s: float
    cold: bool
    host_memory_bytes: int = 0
    running_patched: bool = False
    succeeded_patched: bool = False
    error: str = ""

    @property
    def service_delay_s(self) -> float:
        """Creation → finish (what a user waits), cluster seconds."""
        return self.finish_s - self.created_s

    @property
    def scheduling_delay_s(self) -> float:
        """Creation → bind, cluster seconds (kube-scheduler latency × time scale)."""
        return self.bind_s - self.created_s

    def annotations(self) -> dict[str, str]:
        """The record as pod annotations."""
        p = RECORD_ANNOTATION_PREFIX
        return {
            f"{p}created-s": f"{self.created_s:.3f}",
            f"{p}bind-s": f"{self.bind_s:.3f}",
            f"{p}start-s": f"{self.start_s:.3f}",
            f"{p}finish-s": f"{self.finish_s:.3f}",
            f"{p}cold": "true" if self.cold else "false",
        }


def _rfc3339(epoch_s: float) -> str:
    """Wall-clock timestamp as Kubernetes writes it (second resolution, UTC)."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _container_names(pod: Any) -> list[tuple[str, str]]:
    """(name, image) of the pod's containers."""
    return [(c.name, c.image or "") for c in (pod.spec.containers or [])]


def running_status(containers: list[tuple[str, str]], now_epoch: float) -> dict[str, Any]:
    """Status body (merge patch) of a pod whose containers just started."""
    ts = _rfc3339(now_epoch)
    conditions = [
        {"type": t, "status": "True", "lastTransitionTime": ts}
        for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
    ]
    statuses = [
        {
            "name": name,
            "image": image,
            "imageID": "",
            "ready": True,
            "started": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": ts}},
        }
        for name, image in containers
    ]
    return {
        "status": {
            "phase": "Running",
            "startTime": ts,
            "conditions": conditions,
            "containerStatuses": statuses,
        }
    }


def succeeded_status(
    containers: list[tuple[str, str]], start_epoch: float, now_epoch: float
) -> dict[str, Any]:
    """Status body (merge patch) of a pod whose containers exited 0."""
    ts, started = _rfc3339(now_epoch), _rfc3339(start_epoch)
    conditions = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": started}]
    conditions += [
        {"type": t, "status": s, "lastTransitionTime": ts, "reason": "PodCompleted"}
        for t, s in (("Initialized", "True"), ("ContainersReady", "False"), ("Ready", "False"))
    ]
    statuses = [
        {
            "name": name,
            "image": image,
            "imageID": "",
            "ready": False,
            "started": False,
            "restartCount": 0,
            "state": {
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": started,
                    "finishedAt": ts,
                }
            },
        }
        for name, image in containers
    ]
    return {
        "status": {"phase": "Succeeded", "conditions": conditions, "containerStatuses": statuses}
    }


def failed_status(message: str) -> dict[str, Any]:
    """Status body of a pod the node cannot serve (e.g. its model does not fit the GPU)."""
    return {"status": {"phase": "Failed", "reason": "EmulationRejected", "message": message}}


def _host_memory_bytes(pod: Any) -> int:
    """Sum of the containers' memory requests in bytes (0 when absent)."""
    total = 0
    for c in pod.spec.containers or []:
        requests = (c.resources.requests if c.resources else None) or {}
        if "memory" in requests:
            total += parse_memory(str(requests["memory"]))
    return total


_SUFFIX = {
    "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4,
    "k": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4,
}  # fmt: skip


def parse_memory(quantity: str) -> int:
    """Parse a Kubernetes memory quantity (``512Mi``, ``4Gi``, ``1e9``, ``1000``) to bytes."""
    for suffix in sorted(_SUFFIX, key=len, reverse=True):
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * _SUFFIX[suffix])
    return int(float(quantity))


@dataclass(order=True)
class _Due:
    """A timed action: patch ``uid`` to ``action`` at cluster time ``at_s``."""

    at_s: float
    seq: int
    action: str = ""
    uid: str = ""


class EmulationController:
    """Watches AIGC pods, places them with the service model, patches Running / Succeeded.

    Use as a context manager or :meth:`start` / :meth:`stop`; both threads (watch, timer) and
    the patch workers are joined by :meth:`stop`.
    """

    def __init__(
        self,
        core_api: Any,
        service: ServiceModel,
        clock: ClusterClock,
        *,
        state: EmulationState | None = None,
        namespace: str | None = None,
        log_path: Path | None = None,
        annotate: bool = True,
        workers: int = 4,
    ) -> None:
        """Prepare the controller.

        Args:
            core_api: A ``kubernetes.client.CoreV1Api``.
            service: Per-node service model (start/finish per placement).
            clock: The cluster clock shared with whoever creates pods.
            state: Emulation state updated at start / finish (feeds the fake exporter).
            namespace: Watch one namespace (None: all).
            log_path: Append one JSON line per finished pod.
            annotate: Write the lifecycle record into the pod's annotations at finish.
            workers: Parallel patchers (each pod always goes to the same one, in order).
        """
        self.api = core_api
        self.service = service
        self.clock = clock
        self.state = state
        self.namespace = namespace
        self.log_path = log_path
        self.annotate = annotate
        self.errors: list[str] = []
        self.max_patch_lag_s = 0.0
        self._records: dict[str, PodRecord] = {}
        self._containers: dict[str, list[tuple[str, str]]] = {}
        self._first_seen: dict[str, float] = {}
        self._lock = threading.Condition()
        self._due: list[_Due] = []
        self._seq = 0
        self._stop = threading.Event()
        self._queues: list[queue.Queue[_Due | None]] = [queue.Queue() for _ in range(workers)]
        self._threads: list[threading.Thread] = []
        self._watch: Any = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> EmulationController:
        """Start the watch, timer and patch-worker threads; returns self."""
        if self._threads:
            return self
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._watch_loop, name="emu-watch", daemon=True),
            threading.Thread(target=self._timer_loop, name="emu-timer", daemon=True),
        ]
        self._threads += [
            threading.Thread(
                target=self._worker_loop, args=(q,), name=f"emu-patch-{i}", daemon=True
            )
            for i, q in enumerate(self._queues)
        ]
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop and join every thread (pending patches are dropped)."""
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()
        with self._lock:
            self._lock.notify_all()
        for q in self._queues:
            q.put(None)
        for t in self._threads:
            t.join(timeout=timeout_s)
        alive = [t.name for t in self._threads if t.is_alive()]
        self._threads = []
        if alive:
            self.errors.append(f"threads still alive after stop: {alive}")

    def __enter__(self) -> EmulationController:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- queries

    def records(self) -> list[PodRecord]:
        """Copies of all records (bound AIGC pods), in bind order."""
        with self._lock:
            return [PodRecord(**asdict(r)) for r in self._records.values()]

    def record(self, name: str, namespace: str = "default") -> PodRecord | None:
        """The record of one pod by name, or None."""
        with self._lock:
            for r in self._records.values():
                if r.name == name and r.namespace == namespace:
                    return PodRecord(**asdict(r))
        return None

    def finished_count(self) -> int:
        """Pods patched to Succeeded so far."""
        with self._lock:
            return sum(1 for r in self._records.values() if r.succeeded_patched)

    def wait_finished(self, count: int, timeout_s: float) -> bool:
        """Block until ``count`` pods succeeded (True) or ``timeout_s`` passed (False)."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while sum(1 for r in self._records.values() if r.succeeded_patched) < count:
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return False
                self._lock.wait(timeout=min(left, 0.5))
        return True

    # ---------------------------------------------------------------- watch

    def _list_fn(self) -> Callable[..., Any]:
        if self.namespace is None:
            return self.api.list_pod_for_all_namespaces  # type: ignore[no-any-return]
        # A partial keeps the return annotation kubernetes.watch needs to deserialize events.
        return functools.partial(self.api.list_namespaced_pod, self.namespace)

    def _watch_loop(self) -> None:
        """List, then watch from the list's resourceVersion; relist on expiry."""
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        list_fn = self._list_fn()
        rv: str | None = None
        while not self._stop.is_set():
            try:
                if rv is None:
                    listed = list_fn()
                    rv = listed.metadata.resource_version
                    for pod in listed.items:
                        self.on_pod(pod)
                self._watch = watch.Watch()
                for event in self._watch.stream(
                    list_fn, resource_version=rv, timeout_seconds=WATCH_TIMEOUT_S
                ):
                    pod = event["object"]
                    rv = pod.metadata.resource_version or rv
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self.on_pod(pod)
                    if self._stop.is_set():
                        break
            except ApiException as err:
                if err.status == 410:
                    rv = None
                    continue
                self._note_error(f"watch: {err.status} {err.reason}")
                self._stop.wait(0.5)
            except Exception as err:
                if not self._stop.is_set():
                    self._note_error(f"watch: {type(err).__name__}: {err}")
                    self._stop.wait(0.5)

    def on_pod(self, pod: Any) -> None:
        """Handle one observed pod (public for tests): record first sight, or place on bind."""
        work = parse_work(pod.metadata.annotations)
        if work is None:
            return
        uid = pod.metadata.uid
        now = self.clock.now()
        with self._lock:
            if uid in self._records:
                return
            node = pod.spec.node_name
            phase = pod.status.phase if pod.status else None
            if not node:
                self._first_seen.setdefault(uid, now)
                return
            if phase in ("Succeeded", "Failed"):
                return
            created = work.created_s if work.created_s is not None else self._first_seen.get(uid)
            self._first_seen.pop(uid, None)
            self._bind(pod, work, node, created if created is not None else now, now)

    def _bind(self, pod: Any, work: AigcWork, node: str, created_s: float, now: float) -> None:
        """Place a newly bound pod and schedule its start and finish (lock held)."""
        uid = pod.metadata.uid
        try:
            placed = self.service.place(node, work, now)
        except (KeyError, ValueError) as err:
            self._note_error(f"{pod.metadata.name} on {node}: {err}")
            self._records[uid] = PodRecord(
                pod.metadata.namespace, pod.metadata.name, uid, node, work.model, work.steps,
                created_s, now, now, now, cold=False, error=str(err),
            )  # fmt: skip
            self._containers[uid] = _container_names(pod)
            self._push(now, "fail", uid)
            return
        self._records[uid] = PodRecord(
            namespace=pod.metadata.namespace,
            name=pod.metadata.name,
            uid=uid,
            node=node,
            model=work.model,
            steps=work.steps,
            created_s=created_s,
            bind_s=now,
            start_s=placed.start_s,
            finish_s=placed.finish_s,
            cold=placed.cold,
            host_memory_bytes=_host_memory_bytes(pod),
        )
        self._containers[uid] = _container_names(pod)
        self._push(placed.start_s, "run", uid)
        self._push(placed.finish_s, "finish", uid)

    def _push(self, at_s: float, action: str, uid: str) -> None:
        """Queue a timed action (lock held)."""
        self._seq += 1
        heapq.heappush(self._due, _Due(at_s, self._seq, action, uid))
        self._lock.notify_all()

    # ---------------------------------------------------------------- timer + workers

    def _timer_loop(self) -> None:
        """Hand each due action to its pod's worker at its cluster time."""
        while not self._stop.is_set():
            with self._lock:
                if not self._due:
                    self._lock.wait(timeout=0.5)
                    continue
                wait_s = self.clock.wall_until(self._due[0].at_s)
                if wait_s > 0:
                    self._lock.wait(timeout=min(wait_s, 0.5))
                    continue
                item = heapq.heappop(self._due)
            self._queues[hash(item.uid) % len(self._queues)].put(item)

    def _worker_loop(self, q: queue.Queue[_Due | None]) -> None:
        """Apply the patches of the pods assigned to this worker, in order."""
        while True:
            item = q.get()
            if item is None or self._stop.is_set():
                return
            lag = -self.clock.wall_until(item.at_s)
            self.max_patch_lag_s = max(self.max_patch_lag_s, lag)
            try:
                self._apply(item)
            except Exception as err:
                self._note_error(f"{item.action} {item.uid}: {type(err).__name__}: {err}")

    def _apply(self, item: _Due) -> None:
        """Patch one pod for one action and update state, record and log."""
        with self._lock:
            rec = self._records[item.uid]
            containers = self._containers[item.uid]
        wall = time.time()
        if item.action == "fail":
            self._patch_status(rec, failed_status(rec.error))
            return
        if item.action == "run":
            if self.state is not None:
                gib = self.service.gpu_memory_gib(rec.node, rec.model)
                self.state.start(rec.node, rec.name, gib, rec.host_memory_bytes)
            self._patch_status(rec, running_status(containers, wall))
            with self._lock:
                rec.running_patched = True
            return
        if self.state is not None:
            self.state.finish(rec.node, rec.name)
        started = wall - (rec.finish_s - rec.start_s) / self.clock.time_scale
        if self.annotate:
            # Annotations first: whoever sees the pod Succeeded also sees its record.
            self.api.patch_namespaced_pod(
                rec.name, rec.namespace, {"metadata": {"annotations": rec.annotations()}}
            )
        self._patch_status(rec, succeeded_status(containers, started, wall))
        with self._lock:
            rec.succeeded_patched = True
            self._lock.notify_all()
        self._log(rec)

    def _patch_status(self, rec: PodRecord, body: dict[str, Any]) -> None:
        """Merge-patch the pod's status subresource; a deleted pod is not an error."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.api.patch_namespaced_pod_status(
                rec.name, rec.namespace, body, _content_type=MERGE_PATCH
            )
        except ApiException as err:
            if err.status != 404:
                raise

    def _log(self, rec: PodRecord) -> None:
        """Append the finished record to the JSONL log."""
        if self.log_path is None:
            return
        line = json.dumps({**asdict(rec), "service_delay_s": rec.service_delay_s})
        with self._lock, self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def _note_error(self, message: str) -> None:
        """Remember an error (bounded list)."""
        if len(self.errors) < 1000:
            self.errors.append(message)
