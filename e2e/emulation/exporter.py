"""A fake dcgm-exporter + node-exporter for every emulated node, on 127.0.0.1.

One HTTP endpoint (``/metrics``) serves, per emulated node and GPU, the dcgm-exporter series
``DCGM_FI_DEV_GPU_UTIL`` (%), ``DCGM_FI_DEV_FB_USED`` and ``DCGM_FI_DEV_FB_FREE`` (MiB) with the
labels ``gpu``, ``UUID``, ``device``, ``modelName`` and the host label, whose casing is
switchable: ``Hostname`` (dcgm-exporter releases through 4.5.3-4.8.2, the default) or
``hostname`` (later releases). Per node it also serves node-exporter's
``node_memory_MemAvailable_bytes`` / ``node_memory_MemTotal_bytes`` with a ``node`` label (the
scrape's own ``instance`` label is the exporter's address, as one exporter serves all nodes).

Values come from an :class:`~e2e.emulation.state.EmulationState` snapshot at scrape time:
running pods' model memory is framebuffer used, utilisation is 100 while a pod runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from e2e.emulation.state import Snapshot

HOST_LABELS = ("Hostname", "hostname")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_DCGM_HELP = {
    "DCGM_FI_DEV_GPU_UTIL": "GPU utilization (in %).",
    "DCGM_FI_DEV_FB_USED": "Framebuffer memory used (in MiB).",
    "DCGM_FI_DEV_FB_FREE": "Framebuffer memory free (in MiB).",
}
_NODE_HELP = {
    "node_memory_MemAvailable_bytes": "Memory information field MemAvailable_bytes.",
    "node_memory_MemTotal_bytes": "Memory information field MemTotal_bytes.",
}


def _escape(value: str) -> str:
    """Escape a label value for the Prometheus text format."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: dict[str, str]) -> str:
    """Render ``{k="v",...}``."""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs.items()) + "}"


def _number(value: float) -> str:
    """Render a sample value (integers without a trailing ``.0``)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render_metrics(snapshot: Snapshot, host_label: str = "Hostname") -> str:
    """Render a snapshot in the Prometheus text exposition format.

    Args:
        snapshot: Per-GPU and per-host values.
        host_label: ``Hostname`` or ``hostname``.

    Returns:
        The exposition text, one ``# HELP`` / ``# TYPE`` block per metric family.

    Raises:
        ValueError: ``host_label`` is neither casing.
    """
    if host_label not in HOST_LABELS:
        raise ValueError(f"host_label must be one of {HOST_LABELS}, got {host_label!r}")
    lines: list[str] = []
    fields: dict[str, Callable[[float, float, float], float]] = {
        "DCGM_FI_DEV_GPU_UTIL": lambda util, used, free: util,
        "DCGM_FI_DEV_FB_USED": lambda util, used, free: used,
        "DCGM_FI_DEV_FB_FREE": lambda util, used, free: free,
    }
    for metric, pick in fields.items():
        lines += [f"# HELP {metric} {_DCGM_HELP[metric]}", f"# TYPE {metric} gauge"]
        for g in snapshot.gpus:
            labels = {
                "gpu": str(g.gpu_index),
                "UUID": g.uuid,
                "device": f"nvidia{g.gpu_index}",
                "modelName": g.model_name,
                host_label: g.node,
            }
            value = pick(g.util_pct, g.fb_used_mib, g.fb_free_mib)
            lines.append(f"{metric}{_labels(labels)} {_number(value)}")
    for metric, attr in (
        ("node_memory_MemAvailable_bytes", "mem_available_bytes"),
        ("node_memory_MemTotal_bytes", "mem_total_bytes"),
    ):
        lines += [f"# HELP {metric} {_NODE_HELP[metric]}", f"# TYPE {metric} gauge"]
        for h in snapshot.hosts:
            lines.append(f"{metric}{_labels({'node': h.node})} {_number(getattr(h, attr))}")
    return "\n".join(lines) + "\n"


class FakeExporter:
    """Serves :func:`render_metrics` of a snapshot source on ``http://127.0.0.1:<port>/metrics``.

    Use as a context manager or call :meth:`start` / :meth:`stop`. ``host_label`` may be changed
    while running; ``source`` may be swapped to drive missing or stale metrics.
    """

    def __init__(
        self,
        source: Callable[[], Snapshot],
        host_label: str = "Hostname",
        port: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        """Prepare (not start) an exporter; ``port=0`` picks a free port at start."""
        if host_label not in HOST_LABELS:
            raise ValueError(f"host_label must be one of {HOST_LABELS}, got {host_label!r}")
        self.source = source
        self.host_label = host_label
        self.scrapes = 0
        self._address = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (only valid once started)."""
        if self._server is None:
            raise RuntimeError("exporter not started")
        return int(self._server.server_address[1])

    @property
    def target(self) -> str:
        """``127.0.0.1:<port>``: the Prometheus static scrape target."""
        return f"{self._address[0]}:{self.port}"

    @property
    def url(self) -> str:
        """The metrics URL."""
        return f"http://{self.target}/metrics"

    def body(self) -> bytes:
        """Render the current exposition text (what a scrape returns)."""
        return render_metrics(self.source(), self.host_label).encode("utf-8")

    def start(self) -> FakeExporter:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        server = ThreadingHTTPServer(self._address, _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="fake-exporter", kwargs={"poll_interval": 0.1}
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and join the thread (idempotent)."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5.0)

    def running(self) -> bool:
        """True while the serving thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> FakeExporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler_for(exporter: FakeExporter) -> type[BaseHTTPRequestHandler]:
    """Build a request handler class bound to ``exporter``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404)
                return
            body = exporter.body()
            exporter.scrapes += 1
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Silence per-request logging."""

    return Handler
