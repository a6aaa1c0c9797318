"""Placement with the bundled LAD-TS policy, and pods that must not depend on the extender.

The same set-up as ``test_placement.py`` (a kube-scheduler process of its own with the
``ladts-scheduler`` profile and the extender with ``bindVerb``, ``nodeCacheCapable`` and
``ignorable``; ``ladts serve`` watching this test's namespace), but ``ladts serve`` loads the
bundled policy ``policy/src/ladts_policy/bundled/lad-ts.onnx`` with ``--policy``.

The policy imitates residency-greedy and agrees with it on ~91-94% of decisions, so only
cases whose answer follows from the workload model alone are kept: the node the request
finishes soonest on wins by a wide margin, and residency-greedy's warming credit
(2 x popularity x load_s) cannot flip it. Times come from the shipped GPU profiles
(``ladts_policy/scenarios/gpu-profiles.yaml``; warm = overhead + steps x s/step, cold adds
load_s), worked by hand below:

- q-a10 (a10, sdxl resident) and q-orin (agx-orin-64, sd15 resident) are idle.
- q-4090 (rtx-4090, sdxl and sdxl-turbo resident) holds three queued sdxl-turbo pods of 400
  steps: 3 x (0.12 + 24) = 72.4 s of backlog. The queue is sdxl-turbo, not sdxl or sd15,
  so the popularity of the models asked for below stays low (their credit small).
- q-nano (orin-nano-8, sd15 resident) has 8 GB: sdxl (10 GiB) does not fit there.

Not hand-worked only: the cases were also checked in process (the same extender, the
bundled policy) before being written down, and they agree with residency-greedy.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from e2e.conftest import require_binaries
from e2e.controlplane.binaries import Binaries
from e2e.controlplane.components import ApiServer, Scheduler, start_scheduler
from e2e.controlplane.processes import ProcessManager
from e2e.controlplane.readiness import free_port
from ladts_policy.bundled import bundled_policy_path

from .conftest import Serve, ServeFactory
from .kit import (
    SCHEDULER,
    create_ready_node,
    gpu_node,
    meta,
    metric_sum,
    node_of,
    pod,
    scheduler_config,
    wait_bound,
    wait_decision,
)

BUNDLED_POLICY = bundled_policy_path()  # the shipped file; a clear error when it is missing
LABEL = {"e2e": "placement-policy"}

NODES = {"q-a10": ("a10", "sdxl"), "q-4090": ("rtx-4090", "sdxl,sdxl-turbo"),
         "q-orin": ("agx-orin-64", "sd15"), "q-nano": ("orin-nano-8", "sd15")}

CASES = [
    # (model, steps, expected node, why)
    ("sdxl", 20, "q-a10", "the only idle node with sdxl warm: 0.6+20x0.29=6.4 s; q-4090 warm "
                          "but behind 72.4 s; q-orin cold 40+2.5+16=58.5 s (credit at most "
                          "2x(1/4)x40=20); q-nano cannot hold sdxl"),
    ("sd15", 30, "q-orin", "idle with sd15 warm: 0.4+30x0.09=3.1 s; q-nano warm 1.4+9.6=11 s; "
                           "q-a10 cold behind 6.4 s: 6.4+15+0.3+1.92=23.6 s (credit at most "
                           "2x(1/5)x15=6); q-4090 behind 72.4 s"),
    ("sdxl", 20, "q-a10", "behind its own 6.4 s: 12.8 s; q-4090 72.4+2.85 s; q-orin cold behind "
                          "3.1 s: 61.6 s less a credit of at most 2x(2/6)x40=26.7; q-nano "
                          "cannot hold sdxl"),
]


PolicyCluster = tuple[str, Serve, Scheduler]
Layout = tuple[dict[str, tuple[str, str]], list[tuple[str, int, str]]]
"""(node -> (GPU profile, resident models), queued pods as (model, steps, node))."""

QUEUE_4090 = [("sdxl-turbo", 400, "q-4090")] * 3


@pytest.fixture
def policy_cluster_factory(core_v1: client.CoreV1Api, e2e_workdir: Path,
                           e2e_processes: ProcessManager, e2e_binaries: Binaries,
                           kube_apiserver: ApiServer, serve_factory: ServeFactory
                           ) -> Iterator[Callable[[Layout], PolicyCluster]]:
    """``factory((nodes, queued))``: the nodes, the queued pods (bound at creation), then
    ``ladts serve --policy <bundled>`` and a kube-scheduler calling it; all removed after."""
    require_binaries(e2e_binaries, "kube-scheduler")
    assert BUNDLED_POLICY.is_file(), f"{BUNDLED_POLICY} is missing"
    made: list[tuple[str, list[str], Scheduler]] = []

    def make(layout: Layout) -> PolicyCluster:
        nodes, queued = layout
        ns = f"placepol-{uuid.uuid4().hex[:6]}"
        core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        for name, (profile, resident) in nodes.items():
            create_ready_node(core_v1, gpu_node(name, profile, resident, LABEL))
        for i, (model, steps, node) in enumerate(queued):
            core_v1.create_namespaced_pod(ns, pod(f"queued-{i}", model, steps, LABEL,
                                                  node=node))
        serve: Serve = serve_factory("--namespace", ns, "--policy", str(BUNDLED_POLICY),
                                     port=free_port())
        scheduler = start_scheduler(e2e_processes, e2e_binaries.get("kube-scheduler"),
                                    e2e_workdir / f"ladts-scheduler-{ns}", kube_apiserver,
                                    source_config=scheduler_config(SCHEDULER, serve.url),
                                    name=f"ladts-kube-scheduler-{ns}")
        made.append((ns, list(nodes), scheduler))
        return ns, serve, scheduler

    yield make
    for ns, nodes, scheduler in made:
        e2e_processes.stop(scheduler.process)
        core_v1.delete_namespace(ns)
        for name in nodes:
            core_v1.delete_node(name)


@pytest.fixture
def policy_cluster(policy_cluster_factory: Callable[[Layout], PolicyCluster]
                   ) -> PolicyCluster:
    """The layout of the module docstring."""
    return policy_cluster_factory((NODES, QUEUE_4090))


def decisions_made(serve: Serve) -> float:
    """``ladts_decisions_total`` over nodes and scorers (0 before the first)."""
    return metric_sum(serve, "ladts_decisions_total{")


def test_bundled_policy_places_clear_cut_cases(policy_cluster: PolicyCluster,
                                               core_v1: client.CoreV1Api) -> None:
    ns, serve, _ = policy_cluster
    state = json.loads(serve.get("/debug/state")[1])
    assert state["scorer"]["name"] == "onnx", state["scorer"]  # the policy, not the fallback
    assert len(state["nodes"]["q-4090"]["queue"]) == 3
    for i, (model, steps, expected, why) in enumerate(CASES):
        name = f"case-{i}"
        core_v1.create_namespaced_pod(ns, pod(name, model, steps, LABEL))
        bound = wait_bound(core_v1, ns, name, timeout_s=60.0)
        assert node_of(bound) == expected, f"case {i} ({model}, {steps}): {why}"
        decision = wait_decision(core_v1, ns, name)
        # Decided by the policy itself (no fallback), and it scored the node it landed on.
        assert decision["scorer"] == "onnx" and not decision.get("fallback"), decision
        assert decision["node"] == expected and decision["scores"][expected] == 10
        assert "q-nano" not in decision["scores"] or model != "sdxl", decision
    assert metric_sum(serve, 'ladts_fallbacks_total{reason="policy_error"}') == 0


def test_plain_pod_through_ladts_and_aigc_pod_through_default(
        policy_cluster: PolicyCluster, core_v1: client.CoreV1Api, api_client: client.ApiClient,
        e2e_processes: ProcessManager, e2e_binaries: Binaries, e2e_workdir: Path,
        kube_apiserver: ApiServer) -> None:
    ns, serve, _ = policy_cluster
    before = decisions_made(serve)
    # A pod without ladts.io/model through the ladts scheduler: the extender scores it
    # neutrally (0 everywhere, no decision made) and it is bound like any other pod.
    core_v1.create_namespaced_pod(ns, pod("plain", None, 0, LABEL))
    plain = wait_bound(core_v1, ns, "plain", timeout_s=60.0)
    assert node_of(plain) in NODES
    # The extender binds every pod of its profile (bindVerb) and records that bind, but no
    # scorer ran for this one.
    record = wait_decision(core_v1, ns, "plain")
    assert record["node"] == node_of(plain) and record["scorer"] is None, record
    body = api_client.sanitize_for_serialization(plain)  # type: ignore[no-untyped-call]
    status, reply = serve.post("/prioritize", json.dumps(
        {"Pod": body, "NodeNames": list(NODES)}).encode())
    assert status == 200 and {h["Score"] for h in json.loads(reply)} == {0}
    assert decisions_made(serve) == before

    # An AIGC pod through a scheduler without the extender (the cluster's default one):
    # it is scheduled, and ladts neither decided nor annotated it.
    default = start_scheduler(e2e_processes, e2e_binaries.get("kube-scheduler"),
                              e2e_workdir / f"default-scheduler-{ns}", kube_apiserver,
                              source_config=scheduler_config("default-scheduler", None),
                              name=f"default-kube-scheduler-{ns}")
    try:
        core_v1.create_namespaced_pod(ns, pod("aigc-default", "sdxl", 20, LABEL,
                                              scheduler="default-scheduler"))
        landed = wait_bound(core_v1, ns, "aigc-default", timeout_s=60.0)
        assert node_of(landed) in NODES
        # Give a stray background annotation writer time to show up before checking.
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            ann = meta(core_v1.read_namespaced_pod("aigc-default", ns)).annotations or {}
            assert "ladts.io/decision" not in ann
            time.sleep(0.5)
        assert decisions_made(serve) == before
        uid = meta(landed).uid
        assert not [d for d in json.loads(serve.get("/debug/state")[1])["decisions"]
                    if d["pod_uid"] == uid]
    finally:
        e2e_processes.stop(default.process)


def test_bundled_policy_idle_fast_warm_node(
        policy_cluster_factory: Callable[[Layout], PolicyCluster],
        core_v1: client.CoreV1Api) -> None:
    # Every node holds sd15 and only sd15 is asked for: no cold start, no warming credit,
    # the soonest finish wins. w-4090 (rtx-4090) idle: 0.1+30x0.024=0.82 s; w-nx
    # (orin-nx-16) idle: 1.0+30x0.23=7.9 s; w-orin (agx-orin-64) behind two queued sd15
    # pods of 30 steps: 3x(0.4+30x0.09)=9.3 s.
    nodes = {"w-orin": ("agx-orin-64", "sd15"), "w-nx": ("orin-nx-16", "sd15"),
             "w-4090": ("rtx-4090", "sd15")}
    ns, _, _ = policy_cluster_factory((nodes, [("sd15", 30, "w-orin")] * 2))
    core_v1.create_namespaced_pod(ns, pod("fast", "sd15", 30, LABEL))
    bound = wait_bound(core_v1, ns, "fast")
    decision = wait_decision(core_v1, ns, "fast")
    assert decision["scorer"] == "onnx" and not decision.get("fallback"), decision
    assert node_of(bound) == "w-4090", decision
