"""The chart's ladts-scheduler beside a benchmark's cluster: ``ladts serve`` + kube-scheduler.

What ``helm install`` puts in a cluster, minus the kubelet (as ``e2e/test_chart_serve.py``
runs it): the chart is rendered with helm (``helm/ladts-scheduler``), its objects (RBAC,
ConfigMaps, ServiceAccounts) applied to the benchmark's apiserver, ``ladts serve`` started
with the chart's settings file and arguments as the extender ServiceAccount, and a
kube-scheduler from the chart's ``KubeSchedulerConfiguration`` as the scheduler
ServiceAccount, its extender ``urlPrefix`` pointed at that ``ladts serve``. Only the pod's
paths (trace), the kubeconfig and the port are replaced.

Metrics: a fake dcgm-exporter / node-exporter (:mod:`e2e.emulation.exporter`) serves the
emulated GPUs' utilisation and framebuffer from the controller's state, a real Prometheus
scrapes it, and the chart's ``prometheus.url`` points ``ladts serve`` at it. The nodes declare
their preloaded models with the documented ``ladts.io/resident-models`` annotation (the
emulated model servers start with the scenario's resident models).

On stop it keeps ``ladts serve``'s /metrics (fallbacks by reason, policy info) and the policy
file's sha256 in :attr:`SchedulerStack.report`.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.bench.run import SchedulerStack
from e2e.controlplane.apply import apply_all, server_side_apply, token_for
from e2e.controlplane.binaries import find_binaries
from e2e.controlplane.chart import (
    chart_scheduler_config,
    local_serve_command,
    parse_objects,
    render_chart,
    start_chart_scheduler,
    with_extender_url,
)
from e2e.controlplane.cluster import Cluster
from e2e.controlplane.components import start_prometheus
from e2e.controlplane.kubeconfig import write_kubeconfig
from e2e.controlplane.readiness import LOOPBACK, free_port, http_get, http_ok, wait_until
from e2e.emulation.exporter import FakeExporter
from e2e.emulation.scenario_nodes import node_hardware
from e2e.emulation.state import EmulationState
from ladts_policy.bundled import bundled_policy_file
from ladts_policy.sim.config.cluster_config import NodeSpec

RELEASE = "ladts-scheduler"
NAMESPACE = "ladts-system"
SCHEDULER_NAME = "ladts-scheduler"
"""The chart's default profile name (``schedulerName``), which the pods name."""
RESIDENT_ANNOTATION = "ladts.io/resident-models"
SCRAPE_INTERVAL = "2s"
"""Prometheus scrape interval of the fake exporter (the chart's serve polls every 15 s)."""


@dataclass(frozen=True)
class LadtsStack:
    """How the chart is installed for one benchmark scheduler."""

    bundled_policy: bool = True
    """``serve.policy.bundled``: the bundled LAD-TS policy; False: the heuristic
    (``serve.heuristic``, residency-greedy), i.e. ``ladts serve --policy none``."""
    prometheus: bool = True
    """Run Prometheus over the fake exporter and set the chart's ``prometheus.url``."""

    def __call__(self, cluster: Cluster, specs: Sequence[NodeSpec]) -> Any:
        """The :data:`e2e.bench.run.StackSetup` of this installation."""
        return running_stack(cluster, specs, self)


@contextmanager
def running_stack(cluster: Cluster, specs: Sequence[NodeSpec], options: LadtsStack
                  ) -> Iterator[SchedulerStack]:
    """Start exporter, Prometheus, ``ladts serve`` and the chart's kube-scheduler; stop them
    (recording serve's /metrics first) on exit."""
    from kubernetes import client, dynamic

    pm = cluster.processes
    workdir = cluster.workdir / "ladts"
    workdir.mkdir(parents=True, exist_ok=True)
    api = cluster.api_client()
    core = client.CoreV1Api(api)
    for spec in specs:
        core.patch_node(spec.name, {"metadata": {"annotations": {
            RESIDENT_ANNOTATION: ",".join(spec.resident)}}})
    state = EmulationState([node_hardware(s) for s in specs]) if options.prometheus else None
    exporter = FakeExporter(state.snapshot).start() if state is not None else None
    set_values = [f"serve.policy.bundled={str(options.bundled_policy).lower()}"]
    prometheus = None
    if exporter is not None:
        prom = prometheus = start_prometheus(
            pm, find_binaries().get("prometheus"), workdir / "prometheus",
            {"dcgm": [exporter.target]}, scrape_interval=SCRAPE_INTERVAL)
        set_values.append(f"prometheus.url={prom.url}")
        # Serve polls at start, then every 15 s: start it once Prometheus has every node's
        # series, so the run's first decisions are not scored without metrics.
        wanted = len(specs)
        wait_until(lambda: len(prom.query("DCGM_FI_DEV_FB_FREE")) >= wanted,
                   "Prometheus scraped every emulated GPU", 60, prom.process)
    serve = scheduler = None
    report: dict[str, Any] = {}
    try:
        objects = parse_objects(render_chart(set_values=set_values, release=RELEASE,
                                             namespace=NAMESPACE))
        dyn = dynamic.DynamicClient(api)  # type: ignore[no-untyped-call]
        server_side_apply(dyn, {"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": NAMESPACE}})
        apply_all(dyn, objects)
        server = cluster.apiserver
        kubeconfig = write_kubeconfig(
            workdir / "extender-kubeconfig.yaml", server.url, server.pki.ca_cert,
            token_for(core, f"{RELEASE}-extender", NAMESPACE),
            f"system:serviceaccount:{NAMESPACE}:{RELEASE}-extender")
        port = free_port()
        argv = local_serve_command(
            objects, workdir / "settings.yaml",
            {"kubeconfig": str(kubeconfig), "port": port,
             "trace_path": str(workdir / "trace.jsonl")},
            ladts=(sys.executable, "-m", "ladts_policy.cli"))
        serve = pm.start("ladts-serve", argv, workdir)
        url = f"http://{LOOPBACK}:{port}"
        wait_until(http_ok(f"{url}/readyz"), "ladts serve /readyz", 120, serve)
        config = with_extender_url(chart_scheduler_config(objects), url)
        scheduler = start_chart_scheduler(
            pm, find_binaries().get("kube-scheduler"), workdir, server, config,
            token_for(core, RELEASE, NAMESPACE),
            f"system:serviceaccount:{NAMESPACE}:{RELEASE}")
        stack = SchedulerStack(state=state, scheduler_metrics=scheduler.metrics, report=report)
        yield stack
        report.update(serve_report(http_get(f"{url}/metrics")[1], options))
        report["serve_log_warnings"] = _log_errors(serve.log_tail(5000))
    finally:
        for proc in (scheduler.process if scheduler else None, serve,
                     prometheus.process if prometheus else None):
            if proc is not None:
                pm.stop(proc)
        if exporter is not None:
            exporter.stop()
        api.close()
    report["trace"] = trace_summary(workdir / "trace.jsonl")  # complete once serve stopped


def serve_report(metrics_text: str, options: LadtsStack) -> dict[str, Any]:
    """Fallbacks by reason, binds by result, decisions by scorer and the policy in use, from
    ``ladts serve``'s /metrics (``ladts_operator/telemetry.py``), plus the policy file's sha."""
    from prometheus_client.parser import text_string_to_metric_families

    fallbacks: dict[str, float] = {}
    binds: dict[str, float] = {}
    scorers: dict[str, float] = {}
    policy: dict[str, str] = {}
    poll_errors = 0.0
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "ladts_fallbacks_total":
                reason = sample.labels.get("reason", "")
                fallbacks[reason] = fallbacks.get(reason, 0.0) + sample.value
            elif sample.name == "ladts_binds_total":
                binds[sample.labels.get("result", "")] = sample.value
            elif sample.name == "ladts_decisions_total":
                scorer = sample.labels.get("scorer", "")
                scorers[scorer] = scorers.get(scorer, 0.0) + sample.value
            elif sample.name == "ladts_policy_info" and sample.value == 1:
                policy = dict(sample.labels)
            elif sample.name == "ladts_prometheus_poll_errors_total":
                poll_errors += sample.value
    return {
        "fallbacks": fallbacks,
        "binds": binds,
        "decisions_by_scorer": scorers,
        "policy": policy,
        "policy_sha256": policy_sha256() if options.bundled_policy else None,
        "prometheus_poll_errors": poll_errors,
    }


def trace_summary(path: Path) -> dict[str, Any]:
    """What serve's decision trace says about its view: decisions by fallback, binds to
    another node than its top-scored one (kube-scheduler's other score plugins), and its
    service time estimates against the times it observed (``completion`` records of
    ``ladts_operator/trace.py``: ``predicted_s`` vs ``observed_s``)."""
    import json

    import numpy as np

    kinds: dict[str, int] = {}
    fallbacks: dict[str, int] = {}
    ratio: list[float] = []
    chosen: dict[str, str] = {}
    bound: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text("utf-8").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            kind = str(rec.get("kind"))
            kinds[kind] = kinds.get(kind, 0) + 1
            if kind == "decision":
                chosen[str(rec.get("pod_uid"))] = str(rec.get("chosen"))
            elif kind == "bind":
                bound[str(rec.get("pod_uid"))] = str(rec.get("node"))
            if kind == "decision" and rec.get("fallback"):
                fallbacks[str(rec["fallback"])] = fallbacks.get(str(rec["fallback"]), 0) + 1
            pred, obs = rec.get("predicted_s"), rec.get("observed_s")
            if kind == "completion" and pred and obs:
                ratio.append(float(pred) / float(obs))
    arr = np.asarray(ratio, dtype=float)
    joined = [uid for uid in bound if uid in chosen]
    return {
        "records": kinds,
        "bound_elsewhere_than_chosen": sum(bound[u] != chosen[u] for u in joined),
        "decision_fallbacks": fallbacks,
        "service_estimate_over_observed": {
            "n": int(arr.size),
            "mean": float(arr.mean()) if arr.size else None,
            "median_abs_error": float(np.median(np.abs(arr - 1.0))) if arr.size else None,
        },
    }


def policy_sha256(path: Path | None = None) -> str | None:
    """sha256 of the bundled policy file (None when it is missing)."""
    path = path or bundled_policy_file()
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _log_errors(log: str) -> list[str]:
    """Lines of serve's log that report a warning, an error or a traceback (first 10)."""
    return [line for line in log.splitlines()
            if any(word in line for word in ("WARNING", "ERROR", "Traceback"))][:10]
