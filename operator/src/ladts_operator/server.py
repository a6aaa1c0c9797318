"""The aiohttp application: a thin shell over :class:`ladts_operator.extender.Extender`.

``POST /filter``, ``/prioritize``, ``/bind``; ``GET /healthz``, ``/readyz``, ``/metrics``,
``/debug/state``. Handlers do no blocking I/O: binding goes through an async
:class:`Binder` (the Kubernetes API in a thread, or the offline cluster).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from ladts_operator import jsonio
from ladts_operator.extender import (
    BindArgs,
    Extender,
    RequestError,
    parse_bind_args,
    parse_json,
)

log = logging.getLogger(__name__)

EXTENDER_KEY = web.AppKey("extender", Extender)


class Binder(Protocol):
    """Creates the ``pods/binding`` subresource and records the decision."""

    async def bind(self, args: BindArgs, annotation: str) -> None:
        """Bind the pod (raise with a message on failure)."""
        ...


BINDER_KEY: web.AppKey[Binder] = web.AppKey("binder")
READY_KEY: web.AppKey[Callable[[], tuple[bool, str]]] = web.AppKey("ready")


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, body=jsonio.dumps(body),
                        content_type="application/json")


async def _read(request: web.Request, extender: Extender) -> bytes:
    if request.content_length is not None and request.content_length > extender.max_body_bytes:
        raise RequestError(413, "too_large",
                           f"body of {request.content_length} bytes exceeds "
                           f"{extender.max_body_bytes}")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise RequestError(413, "too_large",
                           f"body exceeds {extender.max_body_bytes} bytes") from None


def _verb(verb: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        extender = request.app[EXTENDER_KEY]
        start = time.perf_counter()
        try:
            raw = await _read(request, extender)
            reply = extender.handle(verb, raw)
            status, body = reply.status, reply.body
        except RequestError as exc:
            extender.telemetry.rejected.labels(verb=verb, reason=exc.reason).inc()
            status, body = exc.status, {"Error": str(exc)}
        extender.telemetry.latency.labels(verb=verb, code=f"{status // 100}xx").observe(
            time.perf_counter() - start)
        return _json(status, body)

    return handler


async def _bind(request: web.Request) -> web.Response:
    extender = request.app[EXTENDER_KEY]
    start = time.perf_counter()
    status, body = 200, {"Error": ""}
    try:
        args = parse_bind_args(parse_json(await _read(request, extender),
                                          extender.max_body_bytes))
    except RequestError as exc:
        extender.telemetry.rejected.labels(verb="bind", reason=exc.reason).inc()
        status, body = exc.status, {"Error": str(exc)}
    else:
        now = time.time()
        try:
            await request.app[BINDER_KEY].bind(args, extender.decision_annotation(args, now=now))
        except Exception as exc:  # reported to kube-scheduler, which retries
            extender.telemetry.binds.labels(result="error").inc()
            log.warning("bind %s/%s -> %s failed: %s", args.pod_namespace, args.pod_name,
                        args.node, exc)
            body = {"Error": f"bind failed: {exc}"}
        else:
            extender.bound(args, extender.pod_for_bind(args.pod_uid), now=now)
    extender.telemetry.latency.labels(verb="bind", code=f"{status // 100}xx").observe(
        time.perf_counter() - start)
    return _json(status, body)


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def _readyz(request: web.Request) -> web.Response:
    ready, message = request.app[READY_KEY]()
    return web.Response(status=200 if ready else 503, text=message + "\n")


async def _metrics(request: web.Request) -> web.Response:
    extender = request.app[EXTENDER_KEY]
    summary = extender.state.summary()
    extender.telemetry.state_nodes.set(float(summary["nodes"]))  # type: ignore[arg-type]
    extender.telemetry.state_pods.set(float(summary["unfinished_pods"]))  # type: ignore[arg-type]
    return web.Response(body=extender.telemetry.render(),
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def _debug_state(request: web.Request) -> web.Response:
    extender = request.app[EXTENDER_KEY]
    try:
        limit = int(request.query.get("limit", str(extender.debug_decisions)))
    except ValueError:
        return _json(400, {"Error": "limit must be an integer"})
    return web.Response(text=json.dumps(extender.debug_state(max(limit, 0)), default=str),
                        content_type="application/json")


def build_app(extender: Extender, binder: Binder, ready: Callable[[], tuple[bool, str]]
              ) -> web.Application:
    """The extender's aiohttp application."""
    app = web.Application(client_max_size=extender.max_body_bytes)
    app[EXTENDER_KEY] = extender
    app[BINDER_KEY] = binder
    app[READY_KEY] = ready
    app.router.add_post("/filter", _verb("filter"))
    app.router.add_post("/prioritize", _verb("prioritize"))
    app.router.add_post("/bind", _bind)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/debug/state", _debug_state)
    return app
