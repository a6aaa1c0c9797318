"""Readiness polling, free loopback ports and small HTTP probes."""

from __future__ import annotations

import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from e2e.controlplane.processes import ManagedProcess

LOOPBACK = "127.0.0.1"
POLL_INTERVAL_S = 0.1


class NotReadyError(RuntimeError):
    """A component did not become ready in time, or exited while starting."""


def free_port() -> int:
    """Return a TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], bool],
    what: str,
    timeout_s: float,
    process: ManagedProcess | None = None,
) -> None:
    """Poll ``check`` until it returns True; fail early when ``process`` exits.

    Raises NotReadyError with the tail of the process log on timeout or exit.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if check():
            return
        if process is not None and not process.running():
            raise NotReadyError(
                f"{process.name} exited (code {process.popen.returncode}) before {what}:\n"
                f"{process.log_tail()}"
            )
        if time.monotonic() > deadline:
            tail = f":\n{process.log_tail()}" if process is not None else ""
            raise NotReadyError(f"timed out after {timeout_s:.0f}s waiting for {what}{tail}")
        time.sleep(POLL_INTERVAL_S)


def tcp_open(port: int, host: str = LOOPBACK) -> Callable[[], bool]:
    """Return a check that is True once ``host:port`` accepts TCP connections."""

    def check() -> bool:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            return False

    return check


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Return a client TLS context trusting ``ca_file``, or an unverified one when None."""
    if ca_file is not None:
        return ssl.create_default_context(cafile=str(ca_file))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def http_get(
    url: str,
    token: str | None = None,
    ca_file: Path | None = None,
    timeout_s: float = 2.0,
) -> tuple[int, str]:
    """GET ``url``; return (status, body). Status 0 means no connection."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    context = tls_context(ca_file) if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=context) as resp:
            return int(resp.status), resp.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as err:
        return int(err.code), err.read().decode("utf-8", errors="replace")
    except (OSError, ssl.SSLError):
        return 0, ""


def http_ok(url: str, token: str | None = None, ca_file: Path | None = None) -> Callable[[], bool]:
    """Return a check that is True once ``url`` answers 200."""

    def check() -> bool:
        return http_get(url, token=token, ca_file=ca_file)[0] == 200

    return check
