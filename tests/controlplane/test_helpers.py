"""Pure parts of the e2e control-plane helpers (no binaries needed)."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from e2e.controlplane.components import on_free_port, scaled_scrape_interval
from e2e.controlplane.processes import ProcessManager
from e2e.controlplane.readiness import LOOPBACK, NotReadyError, wait_until
from e2e.controlplane.scheduler_config import adapt_scheduler_config, load_scheduler_config
from e2e.controlplane.sockets import is_loopback, listening_addresses

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_process_manager_stops_whole_process_group(tmp_path: Path) -> None:
    """Stopping a process also stops its children, even one that left the group (setsid)."""
    manager = ProcessManager()
    script = "setsid sleep 300 & sleep 300 & echo forked; wait"
    proc = manager.start("sleepers", ["sh", "-c", script], tmp_path)
    wait_until(lambda: "forked" in proc.log_tail(), "the children to be forked", 10, proc)
    manager.stop(proc, grace_s=5)
    assert not proc.running()
    assert len(proc.descendants) == 2
    assert manager.leftovers() == []


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux-only")
def test_children_die_with_a_killed_parent(tmp_path: Path) -> None:
    """A runner killed with SIGKILL (no teardown, no atexit) takes its processes with it."""
    pid_file = tmp_path / "child.pid"
    runner = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from e2e.controlplane.processes import ProcessManager
        proc = ProcessManager().start("sleeper", ["sleep", "300"], Path({str(tmp_path)!r}))
        Path({str(pid_file)!r}).write_text(str(proc.pid))
        time.sleep(300)
    """)
    parent = subprocess.Popen([sys.executable, "-c", runner])
    try:
        wait_until(pid_file.exists, "the child to start", 30)
        child = int(pid_file.read_text())
        parent.kill()
        parent.wait(10)
        wait_until(lambda: not _alive(child), "the child to die with its parent", 10)
    finally:
        parent.kill()


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def test_taken_ports_are_retried() -> None:
    """A start that fails with 'address already in use' gets a fresh port; others raise."""
    calls: list[int] = []

    def start(port: int) -> int:
        calls.append(port)
        if len(calls) < 3:
            raise NotReadyError("kine exited: listen tcp 127.0.0.1: bind: address already in use")
        return port

    assert on_free_port(start) == calls[-1] and len(calls) == 3

    def broken(port: int) -> int:
        raise NotReadyError("kube-apiserver exited: bad flag")

    with pytest.raises(NotReadyError, match="bad flag"):
        on_free_port(broken)


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_listening_addresses_of_a_process() -> None:
    """The socket table lookup finds this process's own listener and tells loopback apart."""
    import os

    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert (LOOPBACK, port) in listening_addresses([os.getpid()])
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("0.0.0.0")
    assert not is_loopback("::")


def test_scrape_interval_follows_the_time_scale() -> None:
    assert scaled_scrape_interval(15, 1) == "15000ms"
    assert scaled_scrape_interval(15, 10) == "1500ms"
    assert scaled_scrape_interval(15, 1000) == "100ms"
    with pytest.raises(ValueError):
        scaled_scrape_interval(15, 0)


def test_adapt_scheduler_config_keeps_profiles_and_appends_extenders(tmp_path: Path) -> None:
    """A chart-style configuration keeps its profiles; kubeconfig and leader election change."""
    source = tmp_path / "sched.yaml"
    source.write_text(
        "apiVersion: kubescheduler.config.k8s.io/v1\n"
        "kind: KubeSchedulerConfiguration\n"
        "clientConnection: {kubeconfig: /etc/kubernetes/scheduler.conf, qps: 50}\n"
        "leaderElection: {leaderElect: true}\n"
        "profiles: [{schedulerName: ladts-scheduler}]\n"
        "extenders: [{urlPrefix: 'http://ladts:8888', filterVerb: filter}]\n",
        encoding="utf-8",
    )
    extra = {"urlPrefix": "http://127.0.0.1:9999", "prioritizeVerb": "prioritize", "weight": 1}
    config = adapt_scheduler_config(load_scheduler_config(source), tmp_path / "kc", [extra])
    assert config["clientConnection"] == {"kubeconfig": str(tmp_path / "kc"), "qps": 50}
    assert config["leaderElection"] == {"leaderElect": False}
    assert config["profiles"] == [{"schedulerName": "ladts-scheduler"}]
    assert [e["urlPrefix"] for e in config["extenders"]] == [
        "http://ladts:8888",
        "http://127.0.0.1:9999",
    ]
    with pytest.raises(ValueError, match="KubeSchedulerConfiguration"):
        adapt_scheduler_config({"apiVersion": "v1", "kind": "ConfigMap"}, tmp_path / "kc")
