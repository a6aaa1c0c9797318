"""List-then-watch over raw JSON (no model deserialisation: several times faster per event).

:class:`RawWatch` runs in the caller's thread: :meth:`RawWatch.run` lists (``on_list`` gets the
items), then watches from the list's resourceVersion, relisting after ``410 Gone``, until
:meth:`RawWatch.stop`. Label and field selectors are passed to the server, so only the objects
the caller wants cross the wire.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from kubernetes.watch.watch import iter_resp_lines

#: Server-side timeout of one watch request; the loop re-watches from the last version.
WATCH_TIMEOUT_S = 30


class RawWatch:
    """List + watch one collection through a ``kubernetes`` list function."""

    def __init__(
        self,
        list_fn: Callable[..., Any],
        on_event: Callable[[str, dict[str, Any]], None],
        on_list: Callable[[list[dict[str, Any]]], None],
        on_error: Callable[[str], None],
        **selectors: str,
    ) -> None:
        """Prepare the watch.

        Args:
            list_fn: e.g. ``CoreV1Api.list_namespaced_pod`` bound to a namespace (a partial).
            on_event: Called with ``(type, object)`` for ADDED / MODIFIED / DELETED.
            on_list: Called with the items of every (re)list before watching.
            on_error: Called with a message when a request fails (the loop retries).
            **selectors: ``label_selector`` / ``field_selector`` for the server.
        """
        self._list_fn = list_fn
        self._on_event = on_event
        self._on_list = on_list
        self._on_error = on_error
        self._selectors = {k: v for k, v in selectors.items() if v}
        self._stop = threading.Event()
        self._response: Any = None

    def list_once(self) -> str:
        """List, hand the items to ``on_list``; return the resourceVersion."""
        resp = self._list_fn(_preload_content=False, **self._selectors)
        body = json.loads(resp.data)
        self._on_list(body.get("items") or [])
        return str(body["metadata"]["resourceVersion"])

    def run(self, resource_version: str | None = None) -> None:
        """Watch until :meth:`stop` (list first unless a resourceVersion is given)."""
        rv = resource_version
        while not self._stop.is_set():
            try:
                if rv is None:
                    rv = self.list_once()
                rv = self._watch_from(rv)
            except Exception as err:  # network, 5xx, decode: retry after a pause
                if self._stop.is_set():
                    return
                self._on_error(f"watch: {type(err).__name__}: {err}")
                self._stop.wait(0.5)

    def _watch_from(self, rv: str) -> str | None:
        """One watch request; return the version to continue from (None: relist)."""
        resp = self._list_fn(
            watch=True,
            resource_version=rv,
            allow_watch_bookmarks=True,
            timeout_seconds=WATCH_TIMEOUT_S,
            _preload_content=False,
            **self._selectors,
        )
        self._response = resp
        try:
            # stop() sets the flag, then closes the response it finds; this thread stores the
            # response, then reads the flag: one of the two sees the other, so a stop while
            # this request was being opened cannot leave it blocked until the server timeout.
            if self._stop.is_set():
                return rv
            for line in iter_resp_lines(resp):  # type: ignore[no-untyped-call]
                if self._stop.is_set():
                    return rv
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        return None
                    raise RuntimeError(f"watch error {obj.get('code')}: {obj.get('message')}")
                rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    self._on_event(str(kind), obj)
        finally:
            self._response = None
            # A watch left mid-stream has unread chunks: returned to the pool as is, the
            # connection would hand them to the next request of the shared client as its
            # status line. Closed, the pool opens a fresh one (one per watch request).
            resp.close()
            resp.release_conn()
        return rv

    def stop(self) -> None:
        """Ask :meth:`run` to return (closes the open watch request)."""
        self._stop.set()
        resp = self._response
        if resp is not None:
            try:
                resp.shutdown() if hasattr(resp, "shutdown") else resp.close()
            except Exception:  # already closed by the reader
                pass
