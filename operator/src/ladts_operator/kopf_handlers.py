"""kopf handlers that keep the state store current (thin: parsing lives in ``objects``).

Only ``@kopf.on.event`` handlers are registered: they are stateless, so kopf stores no
progress and no last-handled configuration on the objects, and with event posting off it
writes nothing at all (the e2e tests check that a watched pod is left unmodified). The
persistence settings point at annotations with our own prefix anyway, so that a future
stateful handler could never touch kopf's default keys on user pods unnoticed.

Before kopf starts, :func:`initial_sync` lists nodes and pods through the Kubernetes client
and fills the state, so the extender answers from a complete picture and /readyz turns ready
only then; a restarted operator rebuilds the same state from that list.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ladts_operator.objects import MODEL_ANNOTATION, is_aigc, parse_node, parse_pod
from ladts_operator.state import ClusterState

log = logging.getLogger(__name__)


def build_registry(state: ClusterState) -> kopf.OperatorRegistry:
    """A kopf registry whose handlers feed ``state``."""
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.enabled = False
        settings.peering.standalone = True
        settings.scanning.disabled = True
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
            prefix="ladts-kopf.ladts.io")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix="ladts-kopf.ladts.io", key="last-handled")
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330

    @kopf.on.event("", "v1", "nodes", registry=registry)
    def node_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        name = body.get("metadata", {}).get("name")
        if type == "DELETED":
            if name:
                state.delete_node(name)
            return
        try:
            state.upsert_node(parse_node(dict(body)))
        except ValueError as exc:
            log.warning("node event ignored: %s", exc)

    @kopf.on.event("", "v1", "pods", registry=registry,
                   annotations={MODEL_ANNOTATION: kopf.PRESENT})
    def pod_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        uid = body.get("metadata", {}).get("uid")
        if type == "DELETED":
            if uid:
                state.delete_pod(uid)
            return
        try:
            state.upsert_pod(parse_pod(dict(body)))
        except ValueError as exc:
            log.warning("pod event ignored: %s", exc)

    return registry


def initial_sync(state: ClusterState, api_client: Any, namespace: str | None) -> None:
    """List nodes and AIGC pods and load them into the state (blocking; run in a thread)."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    nodes = core.list_node()
    for node in api_client.sanitize_for_serialization(nodes)["items"]:
        state.upsert_node(parse_node(node))
    pods = (core.list_namespaced_pod(namespace) if namespace
            else core.list_pod_for_all_namespaces())
    items = [p for p in api_client.sanitize_for_serialization(pods)["items"] if is_aigc(p)]
    # Unfinished pods first in bind order, then completions in finish order.
    parsed = [parse_pod(p) for p in items]
    parsed.sort(key=lambda p: (p.finished, p.finish_s or 0.0, p.bind_s or 0.0))
    for pod in parsed:
        state.upsert_pod(pod)
    state.synced = True
    log.info("state synced: %s", state.summary())
