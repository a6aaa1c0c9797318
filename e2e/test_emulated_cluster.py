"""Emulated GPU cluster on the real control plane: workload model, FIFO, restarts, cleanup, metrics.

Uses the session fixtures of ``e2e/conftest.py`` (apiserver, scheduler, kwok with the AIGC
stages, Prometheus) and one emulation controller per module. Every assertion reads the
apiserver's objects (phases, annotations kwok acted on, container states) or Prometheus; the
reference for modelled times is a fresh ``NodeServer`` (``ScenarioService.expected``).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from e2e.controlplane.components import Prometheus
from e2e.controlplane.readiness import wait_until
from e2e.emulation import annotations as ann
from e2e.emulation.clock import CLOCK_CONFIGMAP, ClusterClock, shared_clock
from e2e.emulation.controller import EmulationController
from e2e.emulation.exporter import FakeExporter
from e2e.emulation.pods import APP_LABEL, aigc_pod_manifest
from e2e.emulation.records import NODE_DELETED, REMOVED, SUCCEEDED, read_records
from e2e.emulation.scenario_nodes import (
    create_nodes,
    delete_nodes,
    load_cluster,
    node_hardware,
    wait_nodes_ready,
)
from e2e.emulation.service import ScenarioService
from e2e.emulation.state import EmulationState, NodeHardware
from e2e.emulation.watch import RawWatch
from ladts_operator.metrics_source.parse import per_node_values
from ladts_operator.metrics_source.queries import DCGM_QUERIES, MetricQuery

NAMESPACE = "default"
TIME_SCALE = 10.0
#: Allowed wall-clock error of an observed transition (kwok + watch + apiserver), seconds.
WALL_TOLERANCE_S = 1.5

SMALL_SCENARIO: dict[str, Any] = {
    "kind": "k8s-edge",
    "name": "e2e-small",
    "description": "three GPU nodes for the emulation e2e tests",
    "cluster": {
        "horizon_s": 60,
        "arrivals": {"process": "poisson", "rate_per_s": 0.1},
        "models": [
            {"name": "sd15", "weight": 1, "steps": [20, 20], "cpu": 1, "memory_gib": 2},
            {"name": "sdxl", "weight": 1, "steps": [20, 20], "cpu": 1, "memory_gib": 2},
        ],
        "nodes": [
            {"profile": "rtx-4090", "count": 1, "name_prefix": "emu-4090", "resident": ["sd15"]},
            {"profile": "a10", "count": 1, "name_prefix": "emu-a10", "resident": ["sdxl"]},
            {"profile": "a10", "count": 1, "name_prefix": "emu-gone", "resident": ["sdxl"]},
        ],
    },
}


@dataclass
class Emulation:
    """What the tests need from one running emulation."""

    nodes: list[str]
    state: EmulationState
    service: ScenarioService
    controller: EmulationController
    clock: ClusterClock
    log_path: Path
    hardware: dict[str, NodeHardware]


@pytest.fixture(scope="module")
def emulation(
    core_v1: client.CoreV1Api,
    kwok: Any,
    kube_scheduler: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Emulation]:
    """Scenario nodes (Ready) + a running emulation controller; all removed afterwards."""
    folder = tmp_path_factory.mktemp("emulation")
    path = folder / "e2e-small.yaml"
    path.write_text(yaml.safe_dump(SMALL_SCENARIO), encoding="utf-8")
    cluster = load_cluster(path)
    specs = cluster.expand_nodes()
    names = create_nodes(core_v1, specs)
    state = EmulationState([node_hardware(s) for s in specs])
    service = ScenarioService(specs, cluster)
    clock = shared_clock(core_v1, TIME_SCALE, NAMESPACE)
    log_path = folder / "pods.jsonl"
    controller = EmulationController(
        core_v1, service, clock, state=state, namespace=NAMESPACE, log_path=log_path
    ).start()
    hardware = {s.name: node_hardware(s) for s in specs}
    emu = Emulation(names, state, service, controller, clock, log_path, hardware)
    try:
        wait_nodes_ready(core_v1, names, timeout_s=60)
        yield emu
    finally:
        emu.controller.stop()
        core_v1.delete_collection_namespaced_pod(
            NAMESPACE, label_selector=f"{APP_LABEL[0]}={APP_LABEL[1]}", grace_period_seconds=0
        )
        delete_nodes(core_v1, names)
        core_v1.delete_namespaced_config_map(CLOCK_CONFIGMAP, NAMESPACE)
    assert emu.controller.errors == []


def _create(
    core_v1: client.CoreV1Api, node: str, model: str = "sdxl", steps: int = 20, **kw: Any
) -> str:
    """Create an AIGC pod pinned to ``node``; return its name."""
    name = f"aigc-{uuid.uuid4().hex[:8]}"
    body = aigc_pod_manifest(name, model, steps, cpu=1, memory_gib=2, **kw)
    body["spec"]["nodeSelector"] = {"kubernetes.io/hostname": node}
    core_v1.create_namespaced_pod(NAMESPACE, body)  # type: ignore[arg-type]
    return name


def _read(core_v1: client.CoreV1Api, name: str) -> client.V1Pod | None:
    """The pod, or None once deleted."""
    try:
        return core_v1.read_namespaced_pod(name, NAMESPACE)
    except ApiException as err:
        if err.status == 404:
            return None
        raise


class Watcher:
    """Polls pods and stamps the wall time each (pod, phase) was first seen."""

    def __init__(self, core_v1: client.CoreV1Api, names: list[str]) -> None:
        self.core_v1, self.names = core_v1, names
        self.seen: dict[tuple[str, str], float] = {}
        self.last: dict[str, client.V1Pod | None] = {}

    def poll(self) -> None:
        now = time.time()
        for name in self.names:
            pod = _read(self.core_v1, name)
            self.last[name] = pod if pod is not None else self.last.get(name)
            phase = "Deleted" if pod is None else pod.status.phase
            if pod is not None and pod.spec.node_name:
                self.seen.setdefault((name, "Bound"), now)
            self.seen.setdefault((name, str(phase)), now)

    def until(self, done: Any, what: str, timeout_s: float = 60) -> None:
        def check() -> bool:
            self.poll()
            return bool(done(self))

        wait_until(check, what, timeout_s)


def _finished(w: Watcher, name: str) -> bool:
    return (name, "Succeeded") in w.seen or (name, "Deleted") in w.seen


def _placed(pod: client.V1Pod | None) -> bool:
    """True once the controller's placement annotations are on the pod."""
    return pod is not None and ann.FINISH_TIME in (pod.metadata.annotations or {})


def _note(pod: client.V1Pod) -> ann.PlacementNote:
    note = ann.parse_note(pod.metadata.annotations)
    assert note is not None, pod.metadata.annotations
    return note


def test_bound_pod_runs_at_once_and_succeeds_at_the_modelled_finish(
    core_v1: client.CoreV1Api, emulation: Emulation
) -> None:
    """Running at bind (thin client); kwok marks Succeeded at the annotated, modelled finish."""
    node = "emu-a10-0"  # sdxl resident there: sd15 pays the load (cold start)
    name = _create(core_v1, node, model="sd15")
    w = Watcher(core_v1, [name])
    w.until(lambda w: (name, "Running") in w.seen, f"{name} Running")
    assert w.seen[(name, "Running")] - w.seen[(name, "Bound")] < WALL_TOLERANCE_S
    w.until(lambda w: _finished(w, name), f"{name} Succeeded")
    pod = w.last[name]
    assert pod is not None
    note = _note(pod)
    modelled = emulation.service.expected(node, "sd15", 20, cold=True)
    assert note.cold and note.node == node
    assert note.finish_s - note.start_s == pytest.approx(modelled)
    assert note.start_s == pytest.approx(note.bind_s)  # the node was idle
    finish_wall = emulation.clock.epoch_of(note.finish_s)
    assert abs(w.seen[(name, "Succeeded")] - finish_wall) < WALL_TOLERANCE_S
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 0
    started = datetime.fromisoformat(
        pod.metadata.annotations[ann.START_TIME].replace("Z", "+00:00")
    )
    assert abs(terminated.started_at.timestamp() - started.timestamp()) < 1.0


def test_queued_pod_is_running_while_it_waits_in_the_fifo(
    core_v1: client.CoreV1Api, emulation: Emulation
) -> None:
    """Two pods on a concurrency-1 node: both Running at once; the second finishes a service
    time after the first."""
    node = "emu-4090-0"
    first = _create(core_v1, node)
    second = _create(core_v1, node)
    w = Watcher(core_v1, [first, second])
    w.until(
        lambda w: (first, "Running") in w.seen and (second, "Running") in w.seen, "both Running"
    )
    assert not _finished(w, first), "both pods are Running while the first is served"
    w.until(lambda w: _finished(w, first) and _finished(w, second), "both done")
    notes = [_note(p) for p in (w.last[first], w.last[second]) if p is not None]
    a, b = sorted(notes, key=lambda n: n.seq)
    assert b.start_s == pytest.approx(max(a.finish_s, b.bind_s))
    warm = emulation.service.expected(node, "sdxl", 20, cold=False)
    assert b.finish_s - b.start_s == pytest.approx(warm)
    # Order in which the apiserver showed them Succeeded (the controller's watch saw it).
    rec_a, rec_b = (emulation.controller.record(n) for n in (first, second))
    assert rec_a is not None and rec_b is not None
    assert rec_a.observed_finish_s < rec_b.observed_finish_s


def test_exclusive_pod_b_binds_when_a_succeeds(
    core_v1: client.CoreV1Api, emulation: Emulation
) -> None:
    """Exclusive mode: B requests the node's only GPU and stays unscheduled until A is done."""
    node = "emu-a10-0"
    a = _create(core_v1, node, exclusive=True)
    w = Watcher(core_v1, [a])
    w.until(lambda w: (a, "Running") in w.seen, f"{a} Running")
    b = _create(core_v1, node, exclusive=True)
    w.names.append(b)
    w.until(lambda w: (b, "Running") in w.seen, f"{b} Running", timeout_s=90)
    assert (a, "Succeeded") in w.seen or (a, "Deleted") in w.seen
    a_done = min(w.seen.get((a, "Succeeded"), 1e18), w.seen.get((a, "Deleted"), 1e18))
    assert w.seen[(b, "Bound")] >= a_done - 0.5, "B was bound before A finished"


@pytest.mark.parametrize("how", ["delete", "evict"])
def test_deleted_pod_leaves_the_fifo_and_the_next_moves_up(
    core_v1: client.CoreV1Api, emulation: Emulation, how: str
) -> None:
    """Deleting (or evicting, through the Eviction API) the pod in service frees the slot: the
    queued pod's finish moves earlier and kwok completes it at the new time."""
    node = "emu-4090-0"
    first = _create(core_v1, node, steps=40)
    second = _create(core_v1, node)
    w = Watcher(core_v1, [first, second])
    w.until(
        lambda w: all((n, "Running") in w.seen and _placed(w.last.get(n)) for n in (first, second)),
        "both Running and placed",
    )
    before = _note(w.last[second])  # type: ignore[arg-type]
    if how == "delete":
        core_v1.delete_namespaced_pod(first, NAMESPACE, grace_period_seconds=0)
    else:  # graceful: the pod first gets a deletionTimestamp, as on eviction or preemption
        eviction = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": first, "namespace": NAMESPACE},
        }
        core_v1.create_namespaced_pod_eviction(first, NAMESPACE, eviction)  # type: ignore[arg-type]
    deleted_at = emulation.clock.now()
    w.until(lambda w: _finished(w, second), f"{second} done")
    after = _note(w.last[second])  # type: ignore[arg-type]
    assert after.finish_s < before.finish_s
    assert after.start_s == pytest.approx(deleted_at, abs=WALL_TOLERANCE_S * TIME_SCALE)
    assert abs(w.seen[(second, "Succeeded")] - emulation.clock.epoch_of(after.finish_s)) < (
        WALL_TOLERANCE_S
    )
    rec = emulation.controller.record(first)
    assert rec is not None and rec.outcome == REMOVED


def test_terminal_pods_are_recorded_then_deleted(
    core_v1: client.CoreV1Api, emulation: Emulation
) -> None:
    """Once recorded, Succeeded pods are deleted; only the node's newest placement stays."""
    node = "emu-a10-0"
    names = [_create(core_v1, node, steps=5) for _ in range(3)]
    w = Watcher(core_v1, names)
    w.until(lambda w: all(_finished(w, n) for n in names), "all done")
    wait_until(
        lambda: [_read(core_v1, n) is None for n in names] == [True, True, False],
        "the two older pods deleted",
        timeout_s=30,
    )
    logged = {r.name: r for r in read_records(emulation.log_path)}
    for name in names:
        assert logged[name].outcome == SUCCEEDED
        assert logged[name].observed_lag_s == pytest.approx(0.0, abs=WALL_TOLERANCE_S * TIME_SCALE)


def test_restarted_controller_rebuilds_queues_and_loses_nothing(
    core_v1: client.CoreV1Api, emulation: Emulation
) -> None:
    """Stop the controller mid-run, start a new one on the same ConfigMap clock: no pod in
    flight changes its times, every pod ends once, new pods queue behind the old ones."""
    node = "emu-4090-0"
    before = [_create(core_v1, node, steps=10) for _ in range(3)]
    w = Watcher(core_v1, list(before))
    w.until(lambda w: all(_placed(w.last.get(n)) for n in before), "all placed")
    times = {n: _note(w.last[n]).finish_s for n in before}  # type: ignore[arg-type]
    emulation.controller.stop()
    assert emulation.controller.errors == []
    clock = shared_clock(core_v1, TIME_SCALE, NAMESPACE)
    assert clock.origin == emulation.clock.origin
    restarted = EmulationController(
        core_v1,
        emulation.service,
        clock,
        state=emulation.state,
        namespace=NAMESPACE,
        log_path=emulation.log_path,
    ).start()
    emulation.controller = restarted
    after = _create(core_v1, node, steps=10)
    w.names.append(after)
    w.until(lambda w: all(_finished(w, n) for n in w.names), "all done", timeout_s=90)
    for name in before:
        pod = w.last[name]
        assert pod is not None and _note(pod).finish_s == times[name], "service restarted"
    new = _note(w.last[after])  # type: ignore[arg-type]
    assert new.start_s >= max(times.values()) - 1e-9
    wait_until(
        lambda: {r.name for r in read_records(emulation.log_path)} >= {*before, after},
        "every pod recorded",
        timeout_s=30,
    )
    names = [r.name for r in read_records(emulation.log_path) if r.name in {*before, after}]
    assert sorted(names) == sorted({*before, after}), "a pod recorded twice or lost"


def test_raw_watch_keeps_delivering_across_watch_timeouts(
    core_v1: client.CoreV1Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Server-side watch timeouts of 1 s: each ends a watch request and the next continues
    from the last version, on the client other requests share; every pod created meanwhile
    arrives once, and stop() returns promptly."""
    import functools

    from e2e.emulation import watch as watch_module

    monkeypatch.setattr(watch_module, "WATCH_TIMEOUT_S", 1)
    selector = f"raw-watch-{uuid.uuid4().hex[:6]}"
    seen: list[str] = []
    errors: list[str] = []
    w = RawWatch(functools.partial(core_v1.list_namespaced_pod, NAMESPACE),
                 lambda kind, pod: seen.append(f"{kind} {pod['metadata']['name']}"),
                 lambda items: None, errors.append, label_selector=f"app={selector}")
    thread = threading.Thread(target=w.run, daemon=True)
    thread.start()
    names = []
    try:
        for i in range(5):
            time.sleep(0.7)
            body = aigc_pod_manifest(f"{selector}-{i}", "sd15", 5, cpu=1, memory_gib=1)
            body["metadata"]["labels"] = {"app": selector}
            body["spec"]["nodeSelector"] = {"e2e": "nowhere"}  # stays unbound
            core_v1.create_namespaced_pod(NAMESPACE, body)  # type: ignore[arg-type]
            names.append(body["metadata"]["name"])
        wait_until(lambda: {f"ADDED {n}" for n in names} <= set(seen), "every ADDED event",
                   timeout_s=20)
    finally:
        started = time.monotonic()
        w.stop()
        thread.join(10)
        stopped_in = time.monotonic() - started
        core_v1.delete_collection_namespaced_pod(NAMESPACE, label_selector=f"app={selector}",
                                                 grace_period_seconds=0)
    assert [e for e in seen if e.startswith("ADDED")] == [f"ADDED {n}" for n in names]
    assert errors == []
    assert not thread.is_alive() and stopped_in < 5


def test_controller_relists_after_its_watch_expired(
    core_v1: client.CoreV1Api, emulation: Emulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pod watch is down while pods are created and deleted, then resumes from a
    resourceVersion the apiserver has expired (``410 Gone``, as after a long disconnect): the
    controller relists, places the pods it missed, ends the one deleted meanwhile, and no pod
    is lost, placed twice or recorded twice."""
    node = "emu-a10-0"
    emulation.controller.stop()
    assert emulation.controller.errors == []
    gate = threading.Event()
    resumed: list[str | None] = []  # what the expired watch returned (None: relist)
    original = RawWatch._watch_from

    def watch_from(self: RawWatch, rv: str) -> str | None:
        if "label_selector" in self._selectors and not resumed and not gate.is_set():
            gate.wait(60)  # the connection is down: events pass unseen
            result = original(self, "1")  # resume from a version long compacted away
            resumed.append(result)
            return result
        return original(self, rv)

    monkeypatch.setattr(RawWatch, "_watch_from", watch_from)
    before = _create(core_v1, node, steps=60)  # placed by the new controller's first list
    w = Watcher(core_v1, [before])
    w.until(lambda w: w.last.get(before) is not None and w.last[before].spec.node_name,
            f"{before} bound")
    controller = EmulationController(
        core_v1, emulation.service, emulation.clock, state=emulation.state,
        namespace=NAMESPACE, log_path=emulation.log_path,
    ).start()
    emulation.controller = controller
    w.until(lambda w: _placed(w.last.get(before)), f"{before} placed from the list")
    missed = [_create(core_v1, node, steps=10) for _ in range(2)]
    w.names.extend(missed)
    w.until(lambda w: all(w.last.get(n) is not None and w.last[n].spec.node_name
                          for n in missed), "missed pods bound")
    core_v1.delete_namespaced_pod(before, NAMESPACE, grace_period_seconds=0)
    wait_until(lambda: _read(core_v1, before) is None, f"{before} deleted", timeout_s=30)
    time.sleep(1.0)
    assert not any(_placed(_read(core_v1, n)) for n in missed)  # the watch saw nothing
    gate.set()
    wait_until(lambda: bool(resumed), "the watch resumed", timeout_s=30)
    assert resumed == [None], "the apiserver did not expire the old resourceVersion"
    w.until(lambda w: all(_finished(w, n) for n in missed), "missed pods done", timeout_s=90)
    gone = controller.record(before)
    assert gone is not None and gone.outcome == REMOVED
    notes = sorted((_note(w.last[n]) for n in missed), key=lambda n: n.seq)  # type: ignore[arg-type]
    # One FIFO, each placed once: the later queued behind the earlier.
    assert notes[0].seq < notes[1].seq
    assert notes[1].start_s == pytest.approx(notes[0].finish_s)
    wait_until(
        lambda: {r.name for r in read_records(emulation.log_path)} >= {before, *missed},
        "every pod recorded", timeout_s=30,
    )
    names = [r.name for r in read_records(emulation.log_path) if r.name in {before, *missed}]
    assert sorted(names) == sorted({before, *missed}), "a pod recorded twice or lost"
    assert {r.name: r.outcome for r in read_records(emulation.log_path)
            if r.name in missed} == dict.fromkeys(missed, SUCCEEDED)
    assert controller.errors == []


def test_node_deletion_ends_its_pods(core_v1: client.CoreV1Api, emulation: Emulation) -> None:
    """Pods on a deleted node are recorded as such and deleted (what pod GC would do)."""
    node = "emu-gone-0"
    name = _create(core_v1, node, steps=50)
    w = Watcher(core_v1, [name])
    w.until(lambda w: (name, "Running") in w.seen, f"{name} Running")
    core_v1.delete_node(node)
    w.until(lambda w: (name, "Deleted") in w.seen, f"{name} deleted with its node")
    rec = emulation.controller.record(name)
    assert rec is not None and rec.outcome == NODE_DELETED


def _wait_series(prometheus: Prometheus, promql: str, expect: dict[str, float], label: str) -> None:
    """Wait until ``promql`` returns exactly ``expect`` (``label`` value -> sample value)."""
    got: dict[str, float] = {}

    def check() -> bool:
        got.clear()
        for series in prometheus.query(promql):
            got[series["metric"].get(label, "")] = float(series["value"][1])
        return got == expect

    try:
        wait_until(check, f"{promql} == {expect}", timeout_s=30)
    except Exception as err:
        raise AssertionError(f"{promql}: last result {got}") from err


def _wait_operator_values(
    prometheus: Prometheus, query: MetricQuery, expect: Mapping[str, float]
) -> None:
    """Wait until the operator's parse of ``query`` gives exactly ``expect`` per node."""
    got: dict[str, float] = {}

    def check() -> bool:
        got.clear()
        response = prometheus.query_response(query.promql)
        got.update({n: s.value for n, s in per_node_values(response, query).items()})
        return got == expect

    try:
        wait_until(check, f"{query.name} == {expect}", timeout_s=30)
    except Exception as err:
        raise AssertionError(f"{query.name}: last result {got}") from err


@pytest.mark.parametrize("host_label", ["Hostname", "hostname"])
def test_prometheus_scrapes_gpu_metrics_per_node(
    prometheus: Prometheus, emulation: Emulation, host_label: str
) -> None:
    """Real Prometheus scrapes the fake exporter; PromQL returns per-node GPU series."""
    busy, idle = emulation.nodes[:2]
    state = EmulationState([emulation.hardware[busy], emulation.hardware[idle]])
    job = f"dcgm-{host_label}"
    state.start(busy, "probe-pod", gpu_gib=3.5)
    exporter = FakeExporter(state.snapshot, host_label=host_label).start()
    try:
        prometheus.set_targets({job: [exporter.target]})
        sel = f'{{job="{job}"}}'
        _wait_series(prometheus, f"DCGM_FI_DEV_GPU_UTIL{sel}", {busy: 100, idle: 0}, host_label)
        _wait_series(prometheus, f"DCGM_FI_DEV_FB_USED{sel}", {busy: 3584, idle: 0}, host_label)
        free = f"sum by ({host_label}) (DCGM_FI_DEV_FB_FREE{sel})"
        _wait_series(prometheus, free, {busy: 23 * 1024 - 3584, idle: 23 * 1024}, host_label)
        expect = {
            "gpu_util_pct": {busy: 100, idle: 0},
            "gpu_mem_used_mib": {busy: 3584, idle: 0},
            "gpu_mem_free_mib": {busy: 23 * 1024 - 3584, idle: 23 * 1024},
        }
        for query in DCGM_QUERIES:
            _wait_operator_values(prometheus, query, expect[query.name])
        mem = f"node_memory_MemAvailable_bytes{sel}"
        _wait_series(prometheus, mem, {busy: 32 * 2**30, idle: 32 * 2**30}, "node")
    finally:
        exporter.stop()
    assert not exporter.running()
