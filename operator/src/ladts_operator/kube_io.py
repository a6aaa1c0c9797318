"""Kubernetes writes of the extender: binding, the decision annotation, Events (in threads)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ladts_operator.extender import BindArgs
from ladts_operator.objects import DECISION_ANNOTATION
from ladts_operator.telemetry import Telemetry

log = logging.getLogger(__name__)

COMPONENT = "ladts-scheduler-extender"
"""``source.component`` / ``reportingComponent`` of our Events."""

RECORD_TIMEOUT_S = 10.0
"""Bound on each API call of a background decision record (annotation patch, Event), s."""


class KubeBinder:
    """Creates ``pods/binding``; then, in the background, ``ladts.io/decision`` and an Event.

    The bind answer waits only for the Binding (what kube-scheduler needs): the decision
    annotation patch and the ``LadtsScheduled`` Event are two more API round trips, written
    afterwards by a small thread pool of their own so they never hold a bind or take the
    threads binds run in. Each record's outcome is counted in
    ``ladts_decision_records_total{result="ok"|"error"|"dropped"}`` and failures are logged;
    more than ``max_pending`` records waiting (an API that stopped answering) are dropped
    and counted rather than queued without bound; :meth:`drain` waits for the pending ones
    at shutdown.
    """

    def __init__(self, api_client: Any, *, write_decision: bool = True,
                 telemetry: Telemetry | None = None, max_pending: int = 10_000) -> None:
        from kubernetes import client

        self.core = client.CoreV1Api(api_client)
        self.write_decision = write_decision
        self.telemetry = telemetry or Telemetry()
        self.max_pending = max_pending
        self._records: set[asyncio.Future[None]] = set()
        self._pool: ThreadPoolExecutor | None = None

    def _bind(self, args: BindArgs) -> None:
        from kubernetes import client

        body = client.V1Binding(
            metadata=client.V1ObjectMeta(name=args.pod_name, uid=args.pod_uid),
            target=client.V1ObjectReference(api_version="v1", kind="Node", name=args.node),
        )
        # The generated client cannot deserialise the Binding status it gets back.
        self.core.create_namespaced_binding(args.pod_namespace, body, _preload_content=False)

    def _record(self, args: BindArgs, annotation: str) -> None:
        self.core.patch_namespaced_pod(
            args.pod_name, args.pod_namespace,
            {"metadata": {"annotations": {DECISION_ANNOTATION: annotation}}},
            _request_timeout=RECORD_TIMEOUT_S)
        post_event(self.core, {"namespace": args.pod_namespace, "name": args.pod_name,
                               "uid": args.pod_uid},
                   "LadtsScheduled", f"placed on {args.node}: {annotation}", False,
                   request_timeout_s=RECORD_TIMEOUT_S)

    async def bind(self, args: BindArgs, annotation: str) -> None:
        """Bind in a thread (raises the API's error); the record follows in the background.

        The record is queued by the bind thread itself once the Binding is accepted, so a
        handler cancelled while it waits (shutdown) still records a pod it placed.
        """
        loop = asyncio.get_running_loop()

        def bind_then_queue() -> None:
            self._bind(args)
            if self.write_decision:
                loop.call_soon_threadsafe(self._record_later, args, annotation)

        await asyncio.to_thread(bind_then_queue)

    def _record_later(self, args: BindArgs, annotation: str) -> None:
        records = self.telemetry.decision_records
        if len(self._records) >= self.max_pending:
            records.labels(result="dropped").inc()
            log.warning("decision record for %s/%s dropped: %d records pending",
                        args.pod_namespace, args.pod_name, len(self._records))
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ladts-record")
        future = asyncio.get_running_loop().run_in_executor(
            self._pool, self._record, args, annotation)
        self._records.add(future)

        def done(f: asyncio.Future[None]) -> None:
            self._records.discard(f)
            if f.cancelled():  # drain() gave up on it at shutdown
                records.labels(result="dropped").inc()
                log.warning("decision record for %s/%s dropped at shutdown",
                            args.pod_namespace, args.pod_name)
                return
            exc = f.exception()
            if exc is None:
                records.labels(result="ok").inc()
                return
            records.labels(result="error").inc()
            # the pod is bound; its annotation and Event are a record, not the placement
            log.warning("decision annotation/event for %s/%s failed: %s", args.pod_namespace,
                        args.pod_name, exc)

        future.add_done_callback(done)

    @property
    def pending(self) -> int:
        """Decision records not written yet."""
        return len(self._records)

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait (at most ``timeout_s``) for the pending records, then stop the pool."""
        if self._records:
            await asyncio.wait(set(self._records), timeout=timeout_s)
        if self._pool is not None:
            # records not started yet are cancelled (counted as dropped), so a hung apiserver
            # cannot keep the process alive at exit; the ones running end by their timeout
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def post_event(core: Any, pod: Mapping[str, str], reason: str, message: str,
               warning: bool, *, request_timeout_s: float | None = None) -> None:
    """Create a core/v1 Event on a pod (blocking; ``request_timeout_s`` bounds the call)."""
    from kubernetes import client

    now = dt.datetime.now(dt.UTC)
    event = client.CoreV1Event(
        metadata=client.V1ObjectMeta(generate_name=f"{pod['name'] or 'pod'}.ladts-"),
        involved_object=client.V1ObjectReference(
            api_version="v1", kind="Pod", namespace=pod["namespace"], name=pod["name"],
            uid=pod["uid"] or None),
        reason=reason, message=message[:1024], type="Warning" if warning else "Normal",
        source=client.V1EventSource(component=COMPONENT), first_timestamp=now,
        last_timestamp=now, count=1, reporting_component=COMPONENT,
        reporting_instance=COMPONENT,
    )
    if request_timeout_s is None:
        core.create_namespaced_event(pod["namespace"], event)
    else:
        core.create_namespaced_event(pod["namespace"], event, _request_timeout=request_timeout_s)


class KubeEvents:
    """``extender.EventSink`` that posts Events from a thread, never blocking the caller."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        self.core = client.CoreV1Api(api_client)
        self._tasks: set[asyncio.Task[None]] = set()

    def emit(self, pod: Mapping[str, Any], reason: str, message: str, warning: bool) -> None:
        """Schedule the Event (errors are logged)."""
        async def send() -> None:
            try:
                await asyncio.to_thread(post_event, self.core, pod, reason, message, warning)
            except Exception as exc:
                log.warning("event %s on %s failed: %s", reason, pod.get("name"), exc)

        try:
            task = asyncio.get_running_loop().create_task(send())
        except RuntimeError:
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
