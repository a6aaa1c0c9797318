"""Faults around the extender in a real control plane: nothing lost, scheduling never blocked.

Each test runs its own kube-scheduler process (profile ``ladts-scheduler``, the extender
``ignorable`` with ``bindVerb``, as the chart configures it), its own ``ladts serve`` on a
fixed port (so a restarted one is found at the same ``urlPrefix``) and GPU nodes without a
kubelet. What each fault must not break is asserted on the apiserver's objects (bindings,
annotations, Events) and on the processes' own /metrics and /debug/state.

Covered elsewhere and not repeated here: a policy file that does not load at start
(``test_serve_state.py``), ``ladts rollout``/``rollback`` and the reload time of an idle
``--offline`` extender (``test_rollout.py``, whose ``KubeletMount`` the swap under load here
reuses), the Prometheus poller's node mappings (``test_metrics_source.py``).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from e2e.conftest import require_binaries
from e2e.controlplane.binaries import Binaries
from e2e.controlplane.components import ApiServer, Scheduler, start_prometheus, start_scheduler
from e2e.controlplane.processes import ManagedProcess, ProcessManager
from e2e.controlplane.readiness import free_port
from ladts_policy.bundled import bundled_policy_path
from ladts_policy.contract import SPEC
from ladts_policy.features import NODE_FEATURE_NAMES

from .conftest import Serve, ServeFactory
from .kit import (
    SCHEDULER,
    create_ready_node,
    debug_state,
    gpu_node,
    meta,
    metric_sum,
    node_of,
    pod,
    scheduler_config,
    wait_bound,
    wait_decision,
)
from .test_metrics_source import Exporter, dcgm

BUNDLED_POLICY = bundled_policy_path()  # the shipped file; a clear error when it is missing
LABEL = {"e2e": "faults"}


@dataclass
class FaultCluster:
    """A namespace, GPU nodes and the means to start ``ladts serve`` and kube-scheduler."""

    ns: str
    port: int
    """The extender's fixed port (a restarted ``ladts serve`` listens there again)."""

    start_serve: Callable[..., Serve]
    """``start_serve(*extra_args)``: ``ladts serve --namespace ns`` on ``port``, ready."""

    start_scheduler: Callable[[], Scheduler]
    """Start the kube-scheduler that calls the extender at ``port``."""

    nodes: list[str]
    """Nodes created (deleted at teardown when they still exist)."""


@pytest.fixture
def fault_cluster(core_v1: client.CoreV1Api, e2e_workdir: Path, e2e_processes: ProcessManager,
                  e2e_binaries: Binaries, kube_apiserver: ApiServer,
                  serve_factory: ServeFactory) -> Iterator[FaultCluster]:
    require_binaries(e2e_binaries, "kube-scheduler")
    ns = f"faults-{uuid.uuid4().hex[:6]}"
    core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    port = free_port()
    schedulers: list[Scheduler] = []

    def serve(*extra: str) -> Serve:
        return serve_factory("--namespace", ns, *extra, port=port)

    def scheduler() -> Scheduler:
        s = start_scheduler(e2e_processes, e2e_binaries.get("kube-scheduler"),
                            e2e_workdir / f"scheduler-{ns}", kube_apiserver,
                            source_config=scheduler_config(SCHEDULER, f"http://127.0.0.1:{port}"),
                            name=f"ladts-kube-scheduler-{ns}")
        schedulers.append(s)
        return s

    cluster = FaultCluster(ns, port, serve, scheduler, [])
    yield cluster
    for s in schedulers:
        e2e_processes.stop(s.process)
    core_v1.delete_namespace(ns)
    for name in cluster.nodes:
        try:
            core_v1.delete_node(name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise


def add_nodes(core_v1: client.CoreV1Api, cluster: FaultCluster,
              nodes: dict[str, tuple[str, str]]) -> None:
    for name, (profile, resident) in nodes.items():
        create_ready_node(core_v1, gpu_node(name, profile, resident, LABEL))
        cluster.nodes.append(name)


def kill(processes: ProcessManager, proc: ManagedProcess) -> None:
    """SIGKILL a process this test started (no chance to clean up), then reap it."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.popen.wait(timeout=30)
    processes.stop(proc, grace_s=1.0)  # reaps any group member left (none expected)


def wait_until(predicate: Callable[[], Any], what: str, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"not reached within {timeout_s} s: {what}")


def scheduled_events(core_v1: client.CoreV1Api, ns: str) -> dict[str, list[str]]:
    """Reason list per pod name of the namespace's Events."""
    out: dict[str, list[str]] = {}
    for e in core_v1.list_namespaced_event(ns).items:
        out.setdefault(str(e.involved_object.name), []).append(str(e.reason))
    return out


def assert_each_bound_once(core_v1: client.CoreV1Api, ns: str, names: list[str]) -> None:
    """Every pod bound, exactly one ``Scheduled`` Event each, no ``FailedScheduling``."""
    for name in names:
        assert node_of(core_v1.read_namespaced_pod(name, ns)), f"{name} still Pending"
    events = wait_until(
        lambda: (lambda ev: ev if all("Scheduled" in ev.get(n, []) for n in names) else None)(
            scheduled_events(core_v1, ns)), "a Scheduled Event for every pod")
    for name in names:
        assert events[name].count("Scheduled") == 1, (name, events[name])
        assert "FailedScheduling" not in events[name], (name, events[name])


# ---------------------------------------------------------------------------------------


def test_serve_killed_pods_still_schedule_and_restart_rebuilds(
        fault_cluster: FaultCluster, core_v1: client.CoreV1Api,
        e2e_processes: ProcessManager) -> None:
    c = fault_cluster
    add_nodes(core_v1, c, {"f-a10": ("a10", "sdxl"), "f-orin": ("agx-orin-64", "sd15"),
                           "f-4090": ("rtx-4090", "sd15")})
    serve = c.start_serve()
    scheduler = c.start_scheduler()
    core_v1.create_namespaced_pod(c.ns, pod("before", "sd15", 20, LABEL))
    wait_bound(core_v1, c.ns, "before")
    assert wait_decision(core_v1, c.ns, "before")["scorer"]  # ladts decided and bound it

    # ladts serve dies without warning: the extender is ignorable, so kube-scheduler
    # filters, scores and binds these without it.
    kill(e2e_processes, serve.process)
    down = [f"down-{i}" for i in range(3)]
    for i, name in enumerate(down):
        core_v1.create_namespaced_pod(c.ns, pod(name, ("sd15", "sdxl")[i % 2], 20, LABEL))
    for name in down:
        bound = wait_bound(core_v1, c.ns, name, timeout_s=90.0)
        assert "ladts.io/decision" not in (meta(bound).annotations or {})

    # Restarted at the same address, it rebuilds every queue from the API (the pods it
    # did not see bound included) and decides again.
    again = c.start_serve()
    nodes = debug_state(again)["nodes"]
    for name in ["before", *down]:
        p = core_v1.read_namespaced_pod(name, c.ns)
        assert meta(p).uid in nodes[str(node_of(p))]["queue"], (name, nodes)
    core_v1.create_namespaced_pod(c.ns, pod("after", "sd15", 20, LABEL))
    wait_bound(core_v1, c.ns, "after")
    decision = wait_decision(core_v1, c.ns, "after")
    assert decision["scorer"] and not decision.get("fallback"), decision
    assert metric_sum(again, 'ladts_binds_total{result="ok"}') == 1
    assert metric_sum(again, 'ladts_binds_total{result="error"}') == 0
    assert_each_bound_once(core_v1, c.ns, ["before", *down, "after"])
    assert "scheduler_schedule_attempts_total" in scheduler.metrics()


def test_prometheus_killed_scheduling_continues_and_metrics_resume(
        fault_cluster: FaultCluster, core_v1: client.CoreV1Api, e2e_processes: ProcessManager,
        e2e_binaries: Binaries, e2e_workdir: Path) -> None:
    require_binaries(e2e_binaries, "prometheus")
    c = fault_cluster
    free_mib = {"f-a10": 9000.0, "f-orin": 30000.0, "f-4090": 12000.0}
    add_nodes(core_v1, c, {"f-a10": ("a10", "sdxl"), "f-orin": ("agx-orin-64", "sd15"),
                           "f-4090": ("rtx-4090", "sd15")})
    exporter = Exporter("127.0.0.1", "".join(dcgm("Hostname", n, [free])
                                             for n, free in free_mib.items()))
    ttl_s = 4.0
    try:
        prom = start_prometheus(e2e_processes, e2e_binaries.get("prometheus"),
                                e2e_workdir / f"prometheus-{c.ns}", {"dcgm": [exporter.target]})
        serve = c.start_serve("--prometheus-url", prom.url, "--prometheus-interval-s", "1",
                              "--prometheus-timeout-s", "1", "--metrics-ttl-s", str(ttl_s))
        c.start_scheduler()

        def ages() -> dict[str, float]:
            return {n: metric_sum(serve, f'ladts_node_metrics_age_seconds{{node="{n}"}}')
                    for n in free_mib if f'node="{n}"' in serve.get("/metrics")[1].decode()}

        def fresh() -> bool:
            a = ages()
            return len(a) == len(free_mib) and all(v < ttl_s for v in a.values())

        wait_until(fresh, "fresh Prometheus metrics for every node")
        stale = 'ladts_fallbacks_total{reason="stale_metrics"}'
        fresh_vram = vram_feature(core_v1, serve, c.ns, "m-0")
        for n, free in free_mib.items():  # scored from Prometheus' free memory
            assert fresh_vram[n] == pytest.approx(free / 1024 / vram_scale(), rel=1e-4)
        assert metric_sum(serve, stale) == 0

        # Prometheus is killed: polls fail, values age past the TTL, scheduling goes on
        # from API state with the fallback counted.
        kill(e2e_processes, prom.process)
        wait_until(lambda: metric_sum(serve, "ladts_prometheus_poll_errors_total") > 0,
                   "a failed poll counted")
        wait_until(lambda: all(v > ttl_s for v in ages().values()), "metrics older than TTL")
        stale_vram = vram_feature(core_v1, serve, c.ns, "m-1")
        assert metric_sum(serve, stale) >= len(free_mib)
        for n, free in free_mib.items():
            assert stale_vram[n] != pytest.approx(free / 1024 / vram_scale(), rel=1e-4), n

        # Prometheus is back (same address, same data): fresh values again, no new fallback.
        argv = prom.process.popen.args  # the same flags: address, config, data
        assert isinstance(argv, list)
        again = e2e_processes.start("prometheus-again", [str(a) for a in argv],
                                    e2e_workdir / f"prometheus-{c.ns}")
        wait_until(lambda: http_ok(f"{prom.url}/-/ready"), "Prometheus ready again")
        wait_until(fresh, "metrics resumed")
        before = metric_sum(serve, stale)
        resumed_vram = vram_feature(core_v1, serve, c.ns, "m-2")
        assert metric_sum(serve, stale) == before
        for n, free in free_mib.items():
            assert resumed_vram[n] == pytest.approx(free / 1024 / vram_scale(), rel=1e-4)
        assert_each_bound_once(core_v1, c.ns, ["m-0", "m-1", "m-2"])
        e2e_processes.stop(again)
    finally:
        exporter.stop()


def vram_scale() -> float:
    """The feature scale of ``vram_free_gib`` (ladts_policy/features.py)."""
    return float(SPEC.node[NODE_FEATURE_NAMES.index("vram_free_gib")].scale)


def vram_feature(core_v1: client.CoreV1Api, serve: Serve, ns: str, name: str
                 ) -> dict[str, float]:
    """Schedule one sd15 pod; return the free-VRAM feature its decision saw, per node."""
    core_v1.create_namespaced_pod(ns, pod(name, "sd15", 20, LABEL))
    uid = meta(wait_bound(core_v1, ns, name)).uid
    wait_decision(core_v1, ns, name)
    decision = next(d for d in debug_state(serve)["decisions"] if d["pod_uid"] == uid)
    col = NODE_FEATURE_NAMES.index("vram_free_gib")
    rows = decision["features"]["node_rows"]
    return {n: float(rows[k][col]) for k, n in enumerate(decision["nodes"])}


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def test_broken_policy_swapped_in_keeps_the_running_one(
        fault_cluster: FaultCluster, core_v1: client.CoreV1Api, tmp_path: Path) -> None:
    c = fault_cluster
    add_nodes(core_v1, c, {"f-a10": ("a10", "sdxl"), "f-orin": ("agx-orin-64", "sd15")})
    policy = tmp_path / "policy.onnx"
    shutil.copyfile(BUNDLED_POLICY, policy)
    serve = c.start_serve("--policy", str(policy), "--policy-poll-s", "0.5")
    c.start_scheduler()
    core_v1.create_namespaced_pod(c.ns, pod("good-0", "sd15", 20, LABEL))
    wait_bound(core_v1, c.ns, "good-0")
    first = wait_decision(core_v1, c.ns, "good-0")
    assert first["scorer"] == "onnx" and not first.get("fallback"), first
    version = first["version"]

    # A truncated file replaces the policy (an atomic rename, as a ConfigMap update does).
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(BUNDLED_POLICY.read_bytes()[:4096])
    os.replace(broken, policy)
    wait_until(lambda: metric_sum(serve, "ladts_policy_load_failures_total") >= 1,
               "the failed reload counted")
    status, ready = serve.get("/readyz")
    assert status == 200 and b"last reload failed" in ready, ready
    assert debug_state(serve)["scorer"] == {"name": "onnx", "version": version}

    core_v1.create_namespaced_pod(c.ns, pod("good-1", "sd15", 20, LABEL))
    wait_bound(core_v1, c.ns, "good-1")
    second = wait_decision(core_v1, c.ns, "good-1")
    assert second["scorer"] == "onnx" and second["version"] == version, second
    assert not second.get("fallback"), second
    assert metric_sum(serve, 'ladts_fallbacks_total{reason="policy_error"}') == 0
    assert_each_bound_once(core_v1, c.ns, ["good-0", "good-1"])


def test_node_cordoned_deleted_and_added(fault_cluster: FaultCluster,
                                         core_v1: client.CoreV1Api,
                                         api_client: client.ApiClient) -> None:
    c = fault_cluster
    # Every node holds sd15 and only sd15 pods are placed: no cold start, so no warming
    # credit; the fastest warm queue wins (times from the shipped GPU profiles).
    add_nodes(core_v1, c, {"f-a10": ("a10", "sd15"), "f-orin": ("agx-orin-64", "sd15"),
                           "f-nx": ("orin-nx-16", "sd15")})
    for i in range(2):  # pods queued on f-a10 before anything happens to it
        core_v1.create_namespaced_pod(c.ns, pod(f"queued-{i}", "sd15", 30, LABEL, node="f-a10"))
    # The heuristic scorer, named: this tests the node events, not the policy (which does
    # not pick the idle RTX 4090 below; see test_placement_policy.py).
    serve = c.start_serve("--policy", "none")
    c.start_scheduler()
    queued = {meta(core_v1.read_namespaced_pod(f"queued-{i}", c.ns)).uid for i in range(2)}
    wait_until(lambda: set(debug_state(serve)["nodes"]["f-a10"]["queue"]) == queued,
               "the queue on f-a10 in the extender's state")

    # Cordoned: the extender rejects it with its reason, keeps its queue, nothing lands there.
    core_v1.patch_node("f-a10", {"spec": {"unschedulable": True}})
    wait_until(lambda: debug_state(serve)["nodes"]["f-a10"]["cordoned"], "cordon seen")
    probe = core_v1.create_namespaced_pod(c.ns, pod("probe", "sd15", 30, LABEL,
                                                    scheduler="nobody"))
    body = api_client.sanitize_for_serialization(probe)  # type: ignore[no-untyped-call]
    status, reply = serve.post("/filter", json.dumps(
        {"Pod": body, "NodeNames": ["f-a10", "f-orin", "f-nx"]}).encode())
    answer = json.loads(reply)
    assert status == 200 and "cordoned" in answer["FailedAndUnresolvableNodes"]["f-a10"]
    assert set(debug_state(serve)["nodes"]["f-a10"]["queue"]) == queued
    core_v1.create_namespaced_pod(c.ns, pod("while-cordoned", "sd15", 30, LABEL))
    assert node_of(wait_bound(core_v1, c.ns, "while-cordoned")) != "f-a10"

    # Deleted with its queue: it leaves the state, new pods go to the nodes that exist.
    core_v1.delete_node("f-a10")
    wait_until(lambda: "f-a10" not in debug_state(serve)["nodes"], "deletion seen")
    core_v1.create_namespaced_pod(c.ns, pod("after-delete", "sd15", 30, LABEL))
    assert node_of(wait_bound(core_v1, c.ns, "after-delete")) in ("f-orin", "f-nx")

    # Added: an idle RTX 4090 with sd15 warm (0.1 + 30 x 0.024 = 0.82 s) beats the AGX Orin
    # (0.4 + 30 x 0.09 = 3.1 s before its queue) and the Orin NX (1.0 + 30 x 0.23 = 7.9 s):
    # once the extender has seen it, the next pod lands there.
    add_nodes(core_v1, c, {"f-4090": ("rtx-4090", "sd15")})
    wait_until(lambda: debug_state(serve)["nodes"].get("f-4090", {}).get("ready"),
               "the new node in the extender's state")
    core_v1.create_namespaced_pod(c.ns, pod("after-add", "sd15", 30, LABEL))
    assert node_of(wait_bound(core_v1, c.ns, "after-add")) == "f-4090"
    decision = wait_decision(core_v1, c.ns, "after-add")
    assert decision["scores"]["f-4090"] == 10 and not decision.get("fallback"), decision
    assert_each_bound_once(core_v1, c.ns, ["while-cordoned", "after-delete", "after-add"])


def test_policy_swapped_under_load(fault_cluster: FaultCluster, core_v1: client.CoreV1Api,
                                   tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A ConfigMap update while pods stream through kube-scheduler: no failed request, every
    pod bound once, the new version in every decision made a poll interval (plus the load of
    this shared machine) after the kubelet-style swap, the old one in every decision before."""
    from ladts_policy.untrained_policy import write_untrained_policy

    from .test_rollout import KubeletMount

    c = fault_cluster
    add_nodes(core_v1, c, {"f-a10": ("a10", "sd15"), "f-orin": ("agx-orin-64", "sd15"),
                           "f-4090": ("rtx-4090", "sd15")})
    key, poll_s, slack_s = "policy.onnx", 1.0, 5.0
    core_v1.create_namespaced_config_map(c.ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="ladts-policy"),
        binary_data={key: base64.b64encode(BUNDLED_POLICY.read_bytes()).decode()}))
    mount = KubeletMount(tmp_path / "mount")
    mount.sync(core_v1.read_namespaced_config_map("ladts-policy", c.ns))
    serve = c.start_serve("--policy", str(mount.root / key), "--policy-poll-s", str(poll_s))
    c.start_scheduler()
    old = debug_state(serve)["scorer"]
    assert old["name"] == "onnx"
    new_file = write_untrained_policy(tmp_path / "v2.onnx", policy_version="e2e-load-v2")

    names = [f"load-{i}" for i in range(50)]
    swapped_at = 0.0
    for i, name in enumerate(names):  # ~4 pods/s for ~12 s; the swap after the 11th
        core_v1.create_namespaced_pod(c.ns, pod(name, "sd15", 20, LABEL))
        if i == 10:
            core_v1.patch_namespaced_config_map("ladts-policy", c.ns, {"binaryData": {
                key: base64.b64encode(new_file.read_bytes()).decode()}})
            swapped_at = time.time()  # before the swap: no decision before it can be new
            mount.sync(core_v1.read_namespaced_config_map("ladts-policy", c.ns))
        time.sleep(0.25)
    assert_each_bound_once(core_v1, c.ns, names)
    decisions = {n: wait_decision(core_v1, c.ns, n) for n in names}
    for n, d in decisions.items():
        assert d["scorer"] == "onnx" and not d.get("fallback"), (n, d)
        if d["time"] < swapped_at:
            assert d["version"] == old["version"], (n, d)
        elif d["time"] > swapped_at + poll_s + slack_s:
            assert d["version"] == "e2e-load-v2", (n, d)
    first_new = min((d["time"] for d in decisions.values() if d["version"] == "e2e-load-v2"),
                    default=None)
    assert first_new is not None, "no decision with the new version"
    assert sum(d["time"] > swapped_at + poll_s + slack_s for d in decisions.values()) >= 5
    text = serve.get("/metrics")[1].decode()
    assert 'code="5xx"' not in text and 'code="4xx"' not in text
    assert metric_sum(serve, "ladts_rejected_requests_total") == 0
    assert metric_sum(serve, "ladts_policy_load_failures_total") == 0
    assert metric_sum(serve, 'ladts_fallbacks_total{reason="policy_error"}') == 0
    with capsys.disabled():
        print(f"\npolicy swap under load: first decision with the new version "
              f"{first_new - swapped_at:.2f} s after the swap (poll {poll_s} s; shared machine)")
