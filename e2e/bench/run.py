"""One emulated episode on a fresh control plane (shared by the benchmarks).

Starts the cluster with :func:`e2e.controlplane.cluster.running_cluster`, creates the scenario's
nodes, persists the cluster clock, runs the emulation controller in this process and the
submitter (:mod:`e2e.bench.submitter`) in its own, waits until every created pod ended or the
wall bound passed, and returns the records plus everything needed to judge the run
(:func:`e2e.bench.stats.run_problems`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from e2e.bench.api_requests import apiserver_metrics, per_pod, request_counts
from e2e.bench.stats import run_problems
from e2e.bench.workload import NAMESPACE, Request, capable_profiles
from e2e.controlplane.cluster import Cluster, running_cluster
from e2e.controlplane.scheduler_config import default_scheduler_config
from e2e.emulation.clock import shared_clock
from e2e.emulation.controller import DEFAULT_SELECTOR, EmulationController
from e2e.emulation.records import REJECTED, REMOVED, SUCCEEDED, PodRecord
from e2e.emulation.scenario_nodes import create_nodes, wait_nodes_ready
from e2e.emulation.service import ScenarioService
from e2e.emulation.state import EmulationState
from ladts_policy.sim.config.cluster_config import ClusterConfig, NodeSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Wall seconds between the clock's creation and cluster time 0 (the submitter starts).
SUBMITTER_HEADSTART_S = 3.0
#: Wall seconds the cluster is watched idle before the run, for the idle CPU rate.
IDLE_SAMPLE_S = 3.0
BENCH_PROCESS = "controller (bench process)"
_HIST = re.compile(r"^scheduler_scheduling_attempt_duration_seconds_(sum|count)\{(.*)\} (\S+)$")


@dataclass
class SchedulerStack:
    """What a scheduler set-up (:data:`StackSetup`) started beside the cluster's own
    kube-scheduler, e.g. the chart's ladts-scheduler and ``ladts serve``."""

    state: EmulationState | None = None
    """Exporter state the emulation controller keeps current (None: no exporter)."""
    scheduler_metrics: Callable[[], str] | None = None
    """/metrics of the kube-scheduler that binds the run's pods (None: the cluster's own)."""
    report: dict[str, Any] = field(default_factory=dict)
    """Filled by the set-up when it stops (e.g. the extender's /metrics); goes to the
    summary's ``stack`` entry."""


StackSetup = Callable[[Cluster, Sequence[NodeSpec]], AbstractContextManager[SchedulerStack]]
"""Started once the nodes are Ready, stopped after the last record (before the cluster)."""


@dataclass
class EmulatedRun:
    """What one emulated episode produced."""

    records: list[PodRecord]
    summary: dict[str, Any] = field(default_factory=dict)


def attempt_duration(metrics_text: str) -> tuple[float, int]:
    """Total seconds and count of scheduled attempts (``result="scheduled"``) from /metrics."""
    total, count = 0.0, 0
    for line in metrics_text.splitlines():
        m = _HIST.match(line)
        if not m or 'result="scheduled"' not in m.group(2):
            continue
        if m.group(1) == "sum":
            total += float(m.group(3))
        else:
            count += int(float(m.group(3)))
    return total, count


def emulate(
    cluster: ClusterConfig,
    requests: list[Request],
    *,
    time_scale: float,
    max_wall_s: float,
    out: Path,
    scheduler_name: str = "default-scheduler",
    stack: StackSetup | None = None,
) -> EmulatedRun:
    """Run ``requests`` on the emulated cluster; records go to ``out/emulated-pods.jsonl``.

    ``stack`` starts another scheduler beside the cluster's (the pods name it with
    ``scheduler_name``); None: the cluster's own kube-scheduler binds them.
    """
    from kubernetes import client

    out.mkdir(parents=True, exist_ok=True)
    log = out / "emulated-pods.jsonl"
    log.unlink(missing_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="ladts-bench-"))
    started, cpu_before = time.monotonic(), time.process_time()
    deadline = time.time() + max_wall_s
    specs = cluster.expand_nodes()
    gpus = max((s.concurrency for s in specs), default=1) if cluster.exclusive else 1
    # The cluster's kube-scheduler runs the default profile only: a stack's scheduler owns
    # its profile name alone (the fixtures' second profile, ladts-scheduler, would race it).
    own = default_scheduler_config(("default-scheduler",))
    with running_cluster(workdir, scheduler_config=own) as cl:
        api = cl.api_client()
        try:
            core = client.CoreV1Api(api)
            names = create_nodes(core, specs, gpus=gpus)
            wait_nodes_ready(core, names, timeout_s=120)
            with ExitStack() as stack_cm:
                extra = stack_cm.enter_context(
                    stack(cl, specs) if stack else nullcontext(SchedulerStack()))
                clock = shared_clock(core, time_scale, NAMESPACE, start_in_s=SUBMITTER_HEADSTART_S)
                spec = {
                    "requests": [asdict(r) for r in requests],
                    "profiles": capable_profiles(cluster),
                    "scheduler_name": scheduler_name,
                    "exclusive": cluster.exclusive,
                }
                (workdir / "requests.json").write_text(json.dumps(spec), "utf-8")
                requests_before = request_counts(apiserver_metrics(api))
                # The cluster idle (nodes heartbeating, no pods) for a moment, then the run: the
                # per-pod CPU is the run's minus the idle rate (start-up and node set-up excluded).
                idle = _cpu_snapshot(cl.processes)
                time.sleep(IDLE_SAMPLE_S)
                window = _cpu_snapshot(cl.processes)
                controller = EmulationController(
                    core, ScenarioService(specs, cluster), clock, namespace=NAMESPACE,
                    log_path=log, state=extra.state,
                )
                with controller:
                    submitted = _submit(cl.processes, workdir, cl.apiserver.kubeconfig, deadline)
                    created = submitted.get("created", [])
                    left = max(0.0, deadline - time.time())
                    finished = controller.wait_finished(len(created), left)
                    records = controller.records()
                    errors = list(controller.errors)
                pods = core.list_namespaced_pod(NAMESPACE, label_selector=DEFAULT_SELECTOR).items
                unbound = sum(1 for p in pods if not (p.spec and p.spec.node_name))
                total, count = attempt_duration((extra.scheduler_metrics or cl.scheduler.metrics)())
                api_per_pod = per_pod(requests_before, request_counts(apiserver_metrics(api)),
                                      len(created))
                cpu = {p.name: _cpu_seconds(p.pid) for p in cl.processes.processes if p.running()}
                marginal = _marginal_ms_per_pod(idle, window, _cpu_snapshot(cl.processes),
                                                len(created))
                marginal["submitter (whole process)"] = round(
                    1000.0 * submitted.get("cpu_s", float("nan")) / max(1, len(created)), 1)
                cpu["submitter"] = submitted.get("cpu_s", float("nan"))
                cpu["controller (bench process)"] = time.process_time() - cpu_before
        finally:
            api.close()
    ended = [r for r in records if r.outcome]
    summary = {
        "requests": len(requests),
        "created": len(created),
        "create_failed": submitted.get("failed", []),
        "bound": len(records),
        "unbound": unbound,
        "lost": max(0, len(created) - len(records) - unbound),
        "succeeded": sum(r.outcome == SUCCEEDED for r in records),
        "rejected": sum(r.outcome == REJECTED for r in records),
        "removed": sum(r.outcome == REMOVED for r in records),
        "unfinished": len(records) - len(ended),
        "errors": errors[:20] + submitted.get("failed", [])[:5],
        "cut": _cut(submitted, finished),
        "max_submit_lag_cluster_s": submitted.get("max_lag_cluster_s"),
        "scheduler_attempts": count,
        "scheduler_mean_attempt_ms": 1000.0 * total / count if count else None,
        "wall_s": time.monotonic() - started,
        "cpu_s": {k: round(v, 1) for k, v in cpu.items()},
        "apiserver_per_pod": api_per_pod,
        "cpu_ms_per_pod_marginal": marginal,
        "workdir": str(workdir),
        "stack": extra.report,
    }
    if not run_problems(summary):  # keep the components' logs only when the run went wrong
        shutil.rmtree(workdir, ignore_errors=True)
        summary["workdir"] = ""
    return EmulatedRun(records, summary)


def _submit(pm: Any, workdir: Path, kubeconfig: Path, deadline: float) -> dict[str, Any]:
    """Run the submitter process to its end (or the deadline); return its report."""
    out = workdir / "submitted.json"
    env = dict(os.environ)
    paths = [str(REPO_ROOT), str(REPO_ROOT / "policy" / "src"), str(REPO_ROOT / "operator" / "src")]
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")])
    argv = [
        sys.executable, "-m", "e2e.bench.submitter", "--kubeconfig", str(kubeconfig),
        "--requests", str(workdir / "requests.json"), "--out", str(out),
        "--deadline", repr(deadline),
    ]  # fmt: skip
    proc = pm.start("submitter", argv, workdir, env=env)
    while proc.running() and time.time() < deadline + 30:
        time.sleep(0.2)
    if proc.running():
        pm.stop(proc)
    if not out.exists():
        return {"failed": [f"submitter wrote no report (exit {proc.popen.returncode}):\n"
                           f"{proc.log_tail(20)}"], "stopped_at_deadline": True}  # fmt: skip
    report: dict[str, Any] = json.loads(out.read_text("utf-8"))
    return report


def _cpu_snapshot(pm: Any) -> tuple[float, dict[str, float]]:
    """(monotonic time, CPU seconds per running component and of this process)."""
    cpu = {p.name: _cpu_seconds(p.pid) for p in pm.processes
           if p.running() and p.name != "submitter"}
    cpu[BENCH_PROCESS] = time.process_time()
    return time.monotonic(), cpu


def _marginal_ms_per_pod(
    idle: tuple[float, dict[str, float]],
    start: tuple[float, dict[str, float]],
    end: tuple[float, dict[str, float]],
    pods: int,
) -> dict[str, float]:
    """CPU ms per pod of each process over the run, less its idle rate times the run's length.

    ``idle`` -> ``start`` is the idle sample, ``start`` -> ``end`` the run.
    """
    (t_idle, c_idle), (t0, c0), (t1, c1) = idle, start, end
    out = {}
    for name, before in c0.items():
        if name not in c1 or name not in c_idle:
            continue
        rate = (before - c_idle[name]) / max(t0 - t_idle, 1e-9)
        used = (c1[name] - before) - rate * (t1 - t0)
        out[name] = round(1000.0 * used / max(1, pods), 1)
    return out


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux ``/proc``; NaN elsewhere)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cut(submitted: dict[str, Any], finished: bool) -> str:
    """Why the run was cut short ("" when it ran to its end)."""
    reasons = []
    if submitted.get("stopped_at_deadline"):
        reasons.append("submission stopped at the wall bound")
    if not finished:
        reasons.append("not every created pod ended before the wall bound")
    return "; ".join(reasons)
