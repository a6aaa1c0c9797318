"""Fixtures for ``ladts serve`` against the real control plane (its own process per test)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from e2e.controlplane.readiness import free_port

REPO = Path(__file__).resolve().parents[2]


class Serve:
    """A ``ladts serve`` child process."""

    def __init__(self, kubeconfig: Path, workdir: Path, *extra: str, port: int | None = None
                 ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"serve-{self.port}.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO / "policy/src"), str(REPO / "operator/src"), env.get("PYTHONPATH", "")])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ladts_policy.cli", "serve", "--kubeconfig", str(kubeconfig),
             "--host", "127.0.0.1", "--port", str(self.port), *extra],
            stdout=self.log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=REPO)

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
            if self.proc.poll() is not None:
                raise RuntimeError(f"ladts serve exited: {self.log.read_text()[-2000:]}")
            try:
                if self.get("/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"ladts serve not ready: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


ServeFactory = Callable[..., Serve]
"""``serve_factory(*extra_args, port=None)``: a started, ready ``ladts serve`` process."""


@pytest.fixture
def serve_factory(kubeconfig_path: Path, e2e_workdir: Path) -> Iterator[ServeFactory]:
    started: list[Serve] = []

    def start(*extra: str, port: int | None = None) -> Serve:
        s = Serve(kubeconfig_path, e2e_workdir, *extra, port=port)
        started.append(s)
        s.wait_ready()
        return s

    yield start
    for s in started:
        s.stop()
