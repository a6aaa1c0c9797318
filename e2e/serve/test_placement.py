"""Placement through a real kube-scheduler that calls ``ladts serve`` (filter, prioritize, bind).

In the style of scheduler-plugins' integration tests: a kube-scheduler process of its own
(profile ``ladts-scheduler``, ``percentageOfNodesToScore: 100``, the extender with
``nodeCacheCapable``, ``ignorable`` and ``bindVerb``; the per-node score plugins that vary
with requests disabled so the extender decides, as docs/serving.md recommends), four GPU
nodes with known resident models and a known queue, and a table of pods placed one after
another, each asserting the node it lands on.

Expected nodes come from the shipped GPU profiles (ladts_policy/scenarios/gpu-profiles.yaml),
worked by hand below (warm = overhead + steps x s/step; cold adds load_s), not from ladts:

- p-4090 (rtx-4090, sd15 resident) holds three queued sdxl pods of 50 steps: backlog
  25 (cold) + 3 x (0.25 + 6.5) = 45.25 s before anything new starts.
- p-a10 (a10, sdxl resident), p-orin (agx-orin-64, sd15 resident), p-nano (orin-nano-8,
  sd15 resident; sdxl does not fit) are idle. Every GPU holds sd15 and sdxl together, so
  nothing is ever evicted (evict cost 0).

The serving default, ``residency-greedy`` (``ladts_policy.baselines``), picks the smallest
``delay - 2 x popularity x load_s`` where the pod loads its model (cold), ``delay`` elsewhere.
Popularity is the model's share of the AIGC pods created in the last 600 s that the extender
saw; it watches this test's namespace only (``--namespace``), so that is the three queued
sdxl pods and the cases so far, this one included. The margins (>= 4 s) exceed the seconds
that pass between cases.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from e2e.conftest import require_binaries
from e2e.controlplane.binaries import Binaries
from e2e.controlplane.components import ApiServer, Scheduler, start_scheduler
from e2e.controlplane.processes import ProcessManager
from e2e.controlplane.readiness import free_port

from .conftest import Serve, ServeFactory

PlacementCluster = tuple[str, Serve, Scheduler]

NODES = {"p-4090": ("rtx-4090", "sd15"), "p-a10": ("a10", "sdxl"),
         "p-orin": ("agx-orin-64", "sd15"), "p-nano": ("orin-nano-8", "sd15")}
SCHEDULER = "ladts-scheduler"

CASES = [
    # (model, steps, expected node, why)
    ("sd15", 30, "p-orin", "sd15 popularity 1/4: orin warm 0.4+2.7=3.1 s < a10 cold "
                           "15+0.3+1.92-2x0.25x15=9.72 < nano 11 s < 4090 after its 45 s queue"),
    ("sdxl", 20, "p-orin", "sdxl popularity 4/5: orin cold behind 3.1 s: 3.1+40+2.5+16=61.6 s, "
                           "less 2x0.8x40=64: -2.4 < a10 warm 0.6+5.8=6.4 s < 4090 (>45 s); "
                           "nano cannot hold sdxl (plain greedy would pick a10)"),
    ("sdxl", 20, "p-a10", "a10 warm 6.4 s < 4090 48.1 s < orin (now warm for sdxl, no "
                          "credit) behind 61.6 s: 80.1 s"),
    ("sd15", 30, "p-nano", "sd15 popularity 2/7: nano warm 1.4+9.6=11 s < a10 cold behind "
                           "6.4 s: 6.4+17.22-2x(2/7)x15=15.05 < 4090 46.1 s < orin behind "
                           "61.6 s"),
]


def gpu_node(name: str, profile: str, resident: str) -> client.V1Node:
    return client.V1Node(metadata=client.V1ObjectMeta(
        name=name, labels={"ladts.io/gpu-profile": profile, "e2e": "placement"},
        annotations={"ladts.io/resident-models": resident}))


def aigc_pod(name: str, model: str, steps: int, node: str | None = None) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, annotations={
            "ladts.io/model": model, "ladts.io/steps": str(steps)}),
        spec=client.V1PodSpec(
            scheduler_name=SCHEDULER, node_name=node,
            tolerations=[client.V1Toleration(operator="Exists")],
            node_selector={"e2e": "placement"},
            containers=[client.V1Container(name="client", image="client", resources=(
                client.V1ResourceRequirements(requests={"cpu": "100m", "memory": "64Mi"})))]))


@pytest.fixture
def placement_cluster(core_v1: client.CoreV1Api, e2e_workdir: Path,
                      e2e_processes: ProcessManager, e2e_binaries: Binaries,
                      kube_apiserver: ApiServer, serve_factory: ServeFactory
                      ) -> Iterator[PlacementCluster]:
    require_binaries(e2e_binaries, "kube-scheduler")
    ns = f"place-{uuid.uuid4().hex[:6]}"
    core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    for name, (profile, resident) in NODES.items():
        core_v1.create_node(gpu_node(name, profile, resident))
        core_v1.patch_node_status(name, {"status": {
            "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "e2e",
                            "message": "e2e"}]}})
    for i in range(3):  # the known queue on p-4090 (bound at creation)
        core_v1.create_namespaced_pod(ns, aigc_pod(f"queued-{i}", "sdxl", 50, node="p-4090"))
    # The heuristic these cases are worked out for (not the bundled policy, the default).
    serve: Serve = serve_factory("--namespace", ns, "--policy", "none", port=free_port())
    config = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "percentageOfNodesToScore": 100,
        "profiles": [{"schedulerName": SCHEDULER, "plugins": {"score": {"disabled": [
            {"name": "NodeResourcesFit"}, {"name": "NodeResourcesBalancedAllocation"},
            {"name": "ImageLocality"}]}}}],
        "extenders": [{"urlPrefix": serve.url, "filterVerb": "filter",
                       "prioritizeVerb": "prioritize", "bindVerb": "bind", "weight": 10,
                       "nodeCacheCapable": True, "ignorable": True, "httpTimeout": "5s"}],
    }
    scheduler = start_scheduler(e2e_processes, e2e_binaries.get("kube-scheduler"),
                                e2e_workdir / "ladts-scheduler", kube_apiserver,
                                source_config=config, name="ladts-kube-scheduler")
    yield ns, serve, scheduler
    e2e_processes.stop(scheduler.process)
    core_v1.delete_namespace(ns)
    for name in NODES:
        core_v1.delete_node(name)


def wait_bound(core_v1: client.CoreV1Api, ns: str, name: str, timeout_s: float = 30.0
               ) -> client.V1Pod:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pod = core_v1.read_namespaced_pod(name, ns)
        if pod.spec.node_name:
            return pod
        time.sleep(0.2)
    events = [e.message for e in core_v1.list_namespaced_event(ns).items
              if e.involved_object.name == name]
    raise AssertionError(f"{name} not bound; events: {events}")


def test_pods_land_on_the_expected_nodes(placement_cluster: PlacementCluster,
                                         core_v1: client.CoreV1Api) -> None:
    ns, serve, scheduler = placement_cluster
    # The queued pods are in the extender's state before the first decision.
    state = json.loads(serve.get("/debug/state")[1])
    assert len(state["nodes"]["p-4090"]["queue"]) == 3
    for i, (model, steps, expected, why) in enumerate(CASES):
        name = f"case-{i}"
        core_v1.create_namespaced_pod(ns, aigc_pod(name, model, steps))
        pod = wait_bound(core_v1, ns, name)
        assert pod.spec.node_name == expected, f"case {i} ({model}, {steps}): {why}"
        # The bind answered after the Binding alone; the decision annotation and the
        # LadtsScheduled Event are written in the background and must still appear.
        decision = json.loads(
            wait_annotation(core_v1, ns, name)["ladts.io/decision"])
        assert decision["node"] == expected and decision["scores"][expected] == 10
        event = wait_event(core_v1, ns, name, "LadtsScheduled")
        assert event.message.startswith(f"placed on {expected}: ")
        assert json.loads(event.message.split(": ", 1)[1]) == decision
    # The scheduler really called the extender (its own metrics count the bindings).
    metrics = scheduler.metrics()
    assert "scheduler_schedule_attempts_total" in metrics
    # ... and ladts counted each background record as written.
    served = serve.get("/metrics")[1].decode()
    assert f'ladts_decision_records_total{{result="ok"}} {float(len(CASES))}' in served

    # A pod with a bad annotation stays Pending with the extender's reason in its event.
    core_v1.create_namespaced_pod(ns, aigc_pod("bad", "sd15", 0))
    deadline = time.monotonic() + 30
    reasons: list[str] = []
    while time.monotonic() < deadline and not reasons:
        reasons = [e.message or "" for e in core_v1.list_namespaced_event(ns).items
                   if e.involved_object.name == "bad" and e.reason == "FailedScheduling"]
        time.sleep(0.3)
    assert reasons and "not a positive integer" in reasons[0]
    assert core_v1.read_namespaced_pod("bad", ns).spec.node_name is None


def wait_event(core_v1: client.CoreV1Api, ns: str, name: str, reason: str,
               timeout_s: float = 10.0) -> client.CoreV1Event:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for event in core_v1.list_namespaced_event(ns).items:
            if event.involved_object.name == name and event.reason == reason:
                return event
        time.sleep(0.2)
    raise AssertionError(f"{name} has no {reason} event")


def wait_annotation(core_v1: client.CoreV1Api, ns: str, name: str, timeout_s: float = 10.0
                    ) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ann = core_v1.read_namespaced_pod(name, ns).metadata.annotations or {}
        if "ladts.io/decision" in ann:
            return ann
        time.sleep(0.2)
    raise AssertionError(f"{name} has no decision annotation")
