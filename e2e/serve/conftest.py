"""Fixtures for ``ladts serve`` against the real control plane (its own process per test)."""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from e2e.controlplane.processes import ProcessManager
from e2e.controlplane.readiness import free_port

REPO = Path(__file__).resolve().parents[2]


class Serve:
    """A ``ladts serve`` child process, started and stopped by the session's ProcessManager
    (own process group, dies with the test runner, counted in the leftover check)."""

    def __init__(self, processes: ProcessManager, kubeconfig: Path, workdir: Path, *extra: str,
                 port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO / "policy/src"), str(REPO / "operator/src"), env.get("PYTHONPATH", "")])
        self._processes = processes
        self.process = processes.start(
            f"serve-{self.port}",
            [sys.executable, "-m", "ladts_policy.cli", "serve", "--kubeconfig", str(kubeconfig),
             "--host", "127.0.0.1", "--port", str(self.port), *extra],
            workdir / "serve", env=env)

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        req = urllib.request.Request(self.url + path, data=body,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.process.running():
                raise RuntimeError(f"ladts serve exited: {self.process.log_tail()}")
            try:
                if self.get("/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"ladts serve not ready: {self.process.log_tail()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s (a no-op once stopped)."""
        self._processes.stop(self.process, grace_s=15.0)


ServeFactory = Callable[..., Serve]
"""``serve_factory(*extra_args, port=None)``: a started, ready ``ladts serve`` process."""


@pytest.fixture
def serve_factory(kubeconfig_path: Path, e2e_workdir: Path, e2e_processes: ProcessManager
                  ) -> Iterator[ServeFactory]:
    started: list[Serve] = []

    def start(*extra: str, port: int | None = None) -> Serve:
        s = Serve(e2e_processes, kubeconfig_path, e2e_workdir, *extra, port=port)
        started.append(s)
        s.wait_ready()
        return s

    yield start
    for s in started:
        s.stop()
