"""Kubernetes writes of the extender: binding, the decision annotation, Events (in threads)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from ladts_operator.extender import BindArgs
from ladts_operator.objects import DECISION_ANNOTATION

log = logging.getLogger(__name__)

COMPONENT = "ladts-scheduler-extender"
"""``source.component`` / ``reportingComponent`` of our Events."""


class KubeBinder:
    """Creates ``pods/binding`` and then writes ``ladts.io/decision`` and an Event."""

    def __init__(self, api_client: Any, *, write_decision: bool = True) -> None:
        from kubernetes import client

        self.core = client.CoreV1Api(api_client)
        self.write_decision = write_decision

    def _bind(self, args: BindArgs, annotation: str) -> None:
        from kubernetes import client

        body = client.V1Binding(
            metadata=client.V1ObjectMeta(name=args.pod_name, uid=args.pod_uid),
            target=client.V1ObjectReference(api_version="v1", kind="Node", name=args.node),
        )
        # The generated client cannot deserialise the Binding status it gets back.
        self.core.create_namespaced_binding(args.pod_namespace, body, _preload_content=False)
        if not self.write_decision:
            return
        try:
            self.core.patch_namespaced_pod(
                args.pod_name, args.pod_namespace,
                {"metadata": {"annotations": {DECISION_ANNOTATION: annotation}}})
            post_event(self.core, {"namespace": args.pod_namespace, "name": args.pod_name,
                                   "uid": args.pod_uid},
                       "LadtsScheduled", f"placed on {args.node}: {annotation}", False)
        except Exception as exc:  # the pod is bound; the record is best effort
            log.warning("decision annotation/event for %s failed: %s", args.pod_name, exc)

    async def bind(self, args: BindArgs, annotation: str) -> None:
        """Bind in a thread (raises the API's error)."""
        await asyncio.to_thread(self._bind, args, annotation)


def post_event(core: Any, pod: Mapping[str, str], reason: str, message: str,
               warning: bool) -> None:
    """Create a core/v1 Event on a pod (blocking)."""
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
    core.create_namespaced_event(pod["namespace"], event)


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
