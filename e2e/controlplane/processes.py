"""Start and stop background processes in their own process groups, and prove none is left."""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import functools
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _load_libc() -> ctypes.CDLL | None:
    """libc for ``prctl`` (loaded once, before any fork; None off Linux)."""
    name = ctypes.util.find_library("c")
    if not name or not os.path.exists("/proc/self"):
        return None
    return ctypes.CDLL(name, use_errno=True)


_LIBC = _load_libc()


def _die_with_parent(parent_pid: int) -> None:
    """In the child before exec: get SIGKILL when the parent dies (Linux ``PR_SET_PDEATHSIG``).

    So a test runner or benchmark killed with SIGKILL (no atexit, no fixture teardown) takes
    its control plane with it. The signal fires when the *thread* that started the child
    exits, so the managers start processes from the main thread. Elsewhere a no-op.
    """
    if _LIBC is None:
        return
    _LIBC.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


class ProcInfo(NamedTuple):
    """The fields of ``/proc/<pid>/stat`` the manager needs."""

    state: str
    ppid: int
    pgrp: int
    start_time: int


def _proc_table() -> dict[int, ProcInfo] | None:
    """Read every process's state, parent, group and start time (None without /proc)."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    table: dict[int, ProcInfo] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        # After "pid (comm) ": state ppid pgrp session tty tpgid flags ... starttime is #22.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 19:
            table[int(entry.name)] = ProcInfo(
                fields[0], int(fields[1]), int(fields[2]), int(fields[19])
            )
    return table


def _alive(info: ProcInfo | None) -> bool:
    """True for an existing process that is not a zombie."""
    return info is not None and info.state not in ("Z", "X")


def _descendants(pid: int, table: dict[int, ProcInfo]) -> dict[int, int]:
    """Return live descendants of ``pid`` as pid -> start time (to survive pid reuse)."""
    children: dict[int, list[int]] = {}
    for child, info in table.items():
        children.setdefault(info.ppid, []).append(child)
    found: dict[int, int] = {}
    stack = list(children.get(pid, []))
    while stack:
        current = stack.pop()
        if current not in found and _alive(table.get(current)):
            found[current] = table[current].start_time
            stack.extend(children.get(current, []))
    return found


@dataclass
class ManagedProcess:
    """One started process: its name, Popen handle and log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    #: Descendants seen when stopping (pid -> start time), also those that left the group.
    descendants: dict[int, int] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        """Process id (also the process-group id, as each process leads its own group)."""
        return self.popen.pid

    def running(self) -> bool:
        """True while the process has not exited."""
        return self.popen.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """Return the last ``lines`` lines of the process's combined stdout/stderr."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"<no log: {exc}>"
        return "\n".join(text.splitlines()[-lines:])

    def survivors(self) -> list[int]:
        """Pids of this process, its group or its recorded descendants that are still alive."""
        table = _proc_table()
        if table is None:
            return [self.pid] if self.running() or _killpg_probe(self.pid) else []
        pids = {pid for pid, info in table.items() if info.pgrp == self.pid and _alive(info)}
        pids |= {
            pid
            for pid, start in self.descendants.items()
            if _alive(table.get(pid)) and table[pid].start_time == start
        }
        if self.running():
            pids.add(self.pid)
        return sorted(pids)


def _killpg_probe(pgid: int) -> bool:
    """Fallback without /proc: True when ``kill(-pgid, 0)`` finds the group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_pid(pid: int, sig: signal.Signals, group: bool) -> None:
    """Send ``sig`` to a process or process group, ignoring one that is already gone."""
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


class ProcessManager:
    """Starts processes in new sessions and stops whole process groups, newest first."""

    def __init__(self) -> None:
        """Create an empty manager; an atexit hook stops anything still running."""
        self._processes: list[ManagedProcess] = []
        atexit.register(self.stop_all)

    @property
    def processes(self) -> list[ManagedProcess]:
        """All processes started so far (running or not)."""
        return list(self._processes)

    def start(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        log_dir: Path,
        env: dict[str, str] | None = None,
    ) -> ManagedProcess:
        """Start ``argv`` with stdout+stderr to ``log_dir/<name>.log`` in a new process group."""
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                [os.fspath(a) for a in argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=log_dir,
                env=env,
                start_new_session=True,
                preexec_fn=functools.partial(_die_with_parent, os.getpid()),
            )
        proc = ManagedProcess(name=name, popen=popen, log_path=log_path)
        self._processes.append(proc)
        return proc

    def stop(self, proc: ManagedProcess, grace_s: float = 10.0) -> None:
        """SIGTERM the process group (and descendants that left it), then SIGKILL leftovers."""
        table = _proc_table()
        if table is not None:
            proc.descendants.update(_descendants(proc.pid, table))
        self._signal_all(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        try:
            proc.popen.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        while proc.survivors() and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.survivors():
            self._signal_all(proc, signal.SIGKILL)
            proc.popen.wait(timeout=grace_s)
            kill_deadline = time.monotonic() + grace_s
            while proc.survivors() and time.monotonic() < kill_deadline:
                time.sleep(0.05)

    def stop_all(self) -> None:
        """Stop every started process, newest first (consumers before their servers)."""
        for proc in reversed(self._processes):
            self.stop(proc)

    def leftovers(self) -> list[str]:
        """Describe every started process (or group member / descendant) still alive."""
        return [
            f"{p.name} (pid {p.pid}, alive {p.survivors()}, log {p.log_path})"
            for p in self._processes
            if p.survivors()
        ]

    @staticmethod
    def _signal_all(proc: ManagedProcess, sig: signal.Signals) -> None:
        """Signal the process group and every recorded descendant outside it."""
        _signal_pid(proc.pid, sig, group=True)
        for pid in proc.survivors():
            _signal_pid(pid, sig, group=False)
