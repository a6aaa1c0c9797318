"""``ladts serve`` against the real kube-apiserver: state from the API, restart, bind, no kopf
writes on pods, answers while Prometheus is unreachable and with a broken policy file."""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from kubernetes import client

if TYPE_CHECKING:
    from e2e.serve.conftest import Serve, ServeFactory

T = TypeVar("T")

GPU_NODES = {"e2e-serve-fast": "rtx-4090", "e2e-serve-slow": "orin-nano-8"}


def make_node(name: str, profile: str) -> client.V1Node:
    return client.V1Node(
        metadata=client.V1ObjectMeta(name=name, labels={"ladts.io/gpu-profile": profile},
                                     annotations={"ladts.io/resident-models": "sd15"}),
        status=client.V1NodeStatus(
            allocatable={"cpu": "8", "memory": "32Gi"}, capacity={"cpu": "8", "memory": "32Gi"},
            conditions=[client.V1NodeCondition(type="Ready", status="True")]))


def make_pod(name: str, model: str = "sd15", steps: str = "20") -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, annotations={"ladts.io/model": model,
                                                             "ladts.io/steps": steps}),
        spec=client.V1PodSpec(scheduler_name="ladts-scheduler-absent", containers=[
            client.V1Container(name="c", image="client")]))


@pytest.fixture
def cluster(core_v1: client.CoreV1Api) -> Iterator[str]:
    ns = f"serve-{uuid.uuid4().hex[:6]}"
    core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    for name, profile in GPU_NODES.items():
        try:
            core_v1.create_node(make_node(name, profile))
        except client.ApiException as exc:
            if exc.status != 409:
                raise
        # Status is a subresource: set Ready there (no kubelet in this cluster).
        core_v1.patch_node_status(name, {"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "e2e", "message": "e2e"}]}})
    yield ns
    core_v1.delete_namespace(ns)
    for name in GPU_NODES:
        core_v1.delete_node(name)


def debug_state(serve: Serve) -> dict[str, Any]:
    status, body = serve.get("/debug/state")
    assert status == 200
    state: dict[str, Any] = json.loads(body)
    return state


def wait_for(predicate: Callable[[], T], timeout_s: float = 20.0) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("condition not reached")


def names_request(pod: client.V1Pod, api_client: client.ApiClient) -> bytes:
    body = api_client.sanitize_for_serialization(pod)  # type: ignore[no-untyped-call]
    return json.dumps({"Pod": body,
                       "NodeNames": list(GPU_NODES)}).encode()


def test_state_bind_restart_and_no_kopf_writes(serve_factory: ServeFactory,
                                                core_v1: client.CoreV1Api,
                                                api_client: client.ApiClient, cluster: str,
                                                tmp_path: Path) -> None:
    ns = cluster
    # A broken policy file and an unreachable Prometheus: the extender must still answer.
    broken = tmp_path / "policy.onnx"
    broken.write_bytes(b"not onnx")
    serve = serve_factory("--policy", str(broken), "--prometheus-url", "http://127.0.0.1:9",
                          "--prometheus-interval-s", "1", "--prometheus-timeout-s", "1")
    status, ready = serve.get("/readyz")
    assert status == 200 and b"serving heuristic residency-greedy" in ready  # the default
    assert b"not a loadable" in ready
    state = debug_state(serve)
    for name, profile in GPU_NODES.items():
        assert state["nodes"][name]["profile"] == profile and state["nodes"][name]["ready"]

    created = [core_v1.create_namespaced_pod(ns, make_pod(f"aigc-{i}")) for i in range(3)]
    pod = created[0]
    status, body = serve.post("/filter", names_request(pod, api_client))
    assert status == 200 and json.loads(body)["NodeNames"] == list(GPU_NODES)
    status, body = serve.post("/prioritize", names_request(pod, api_client))
    scores = {h["Host"]: h["Score"] for h in json.loads(body)}
    assert scores["e2e-serve-fast"] == 10  # an idle RTX 4090 beats an idle Orin Nano
    for p in created:
        status, body = serve.post("/prioritize", names_request(p, api_client))
        chosen = max(json.loads(body), key=lambda h: h["Score"])["Host"]
        status, body = serve.post("/bind", json.dumps({
            "PodName": p.metadata.name, "PodNamespace": ns, "PodUID": p.metadata.uid,
            "Node": chosen}).encode())
        assert status == 200 and json.loads(body) == {"Error": ""}
    def annotated(name: str) -> client.V1Pod | None:
        pod = core_v1.read_namespaced_pod(name, ns)
        return pod if "ladts.io/decision" in (pod.metadata.annotations or {}) else None

    for p in created:
        # The bind answered after the Binding; the annotation follows in the background.
        live = wait_for(functools.partial(annotated, str(p.metadata.name)))
        decision = json.loads(live.metadata.annotations["ladts.io/decision"])
        assert live.spec.node_name == decision["node"]
        assert decision["scorer"] == "heuristic:residency-greedy"
    queues = wait_for(lambda: {n: debug_state(serve)["nodes"][n]["queue"] for n in GPU_NODES})
    queued = [uid for q in queues.values() for uid in q]
    assert sorted(queued) == sorted(str(p.metadata.uid) for p in created)

    # A pod created through the API and bound by someone else appears through the watch.
    other = core_v1.create_namespaced_pod(ns, make_pod("aigc-other"))
    core_v1.create_namespaced_binding(ns, client.V1Binding(
        metadata=client.V1ObjectMeta(name="aigc-other"),
        target=client.V1ObjectReference(kind="Node", api_version="v1", name="e2e-serve-slow")),
        _preload_content=False)
    wait_for(lambda: other.metadata.uid in debug_state(serve)["nodes"]["e2e-serve-slow"]["queue"])
    before = {n: debug_state(serve)["nodes"][n] for n in GPU_NODES}

    # Bad annotation: a reason per node and an Event on the pod, never a 5xx.
    bad = core_v1.create_namespaced_pod(ns, make_pod("aigc-bad", steps="many"))
    status, body = serve.post("/filter", names_request(bad, api_client))
    assert status == 200
    reasons = json.loads(body)["FailedAndUnresolvableNodes"]
    assert set(reasons) == set(GPU_NODES) and "not a positive integer" in reasons[
        "e2e-serve-fast"]
    events = wait_for(lambda: [e for e in core_v1.list_namespaced_event(ns).items
                               if e.reason == "LadtsBadAnnotation"
                               and e.involved_object.name == "aigc-bad"])
    assert "ladts.io/steps" in (events[0].message or "")

    # Prometheus is unreachable: the poll errors are counted, answers keep coming.
    status, metrics = serve.get("/metrics")
    assert b"ladts_prometheus_poll_errors_total" in metrics
    assert b"ladts_policy_load_failures_total 1.0" in metrics

    # A restarted operator rebuilds the same queues and residency from the API.
    serve.stop()
    trace = tmp_path / "trace.jsonl"
    again = serve_factory("--trace-path", str(trace))
    after = {n: debug_state(again)["nodes"][n] for n in GPU_NODES}
    for n in GPU_NODES:
        assert after[n]["queue"] == before[n]["queue"]
        assert after[n]["resident"] == before[n]["resident"]

    # A completion seen through the watch leaves the queue and teaches the estimator.
    node = next(n for n in GPU_NODES if after[n]["queue"])
    head = after[node]["queue"][0]
    done = next(p for p in core_v1.list_namespaced_pod(ns).items if p.metadata.uid == head)
    finished = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    core_v1.patch_namespaced_pod_status(str(done.metadata.name), ns, {"status": {
        "phase": "Succeeded", "containerStatuses": [{
            "name": "c", "image": "client", "imageID": "", "ready": False, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "finishedAt": finished}}}]}})
    learned = wait_for(lambda: (head not in debug_state(again)["nodes"][node]["queue"]
                                and debug_state(again)["service_time_correction"].get(node)))
    assert learned["sd15"]["observations"] == 1.0 and learned["sd15"]["factor"] > 0

    # The service delay (creation -> finish) is in the trace's completion record, and a
    # process restarted on the same trace has the same service-time factors.
    done_records = wait_for(lambda: [json.loads(line) for line in trace.read_text().splitlines()
                                     if '"completion"' in line])  # the writer is a thread
    assert [r["pod_uid"] for r in done_records] == [head]
    created_s = done.metadata.creation_timestamp.timestamp()
    assert done_records[0]["service_delay_s"] == pytest.approx(
        done_records[0]["finish_s"] - created_s)
    factors = debug_state(again)["service_time_correction"]
    again.stop()
    third = serve_factory("--trace-path", str(trace))
    assert debug_state(third)["service_time_correction"] == factors

    # kopf wrote nothing onto any watched pod: only our decision annotation is there.
    for p in core_v1.list_namespaced_pod(ns).items:
        keys = set(p.metadata.annotations or {})
        assert not any("kopf" in k for k in keys), keys
        assert keys <= {"ladts.io/model", "ladts.io/steps", "ladts.io/decision"}
        assert not p.metadata.finalizers
