"""The chart against the real control plane: server-side apply, RBAC, and a kube-scheduler
started from the chart's rendered configuration, authenticating as the chart's identities.

The extender here is a small recording server (``ladts serve`` is issue 8's); it binds and
annotates pods with a token of the chart's extender ServiceAccount, so the chart's RBAC is
what lets it do its job.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, dynamic, watch
from kubernetes.client import ApiException

from e2e.conftest import require_binaries
from e2e.controlplane.apply import apply_all, client_for, server_side_apply, token_for
from e2e.controlplane.binaries import Binaries, pinned_versions
from e2e.controlplane.chart import (
    CHART_DIR,
    MANIFESTS_DIR,
    NAMESPACE,
    RELEASE,
    chart_scheduler_config,
    find_object,
    parse_objects,
    render_chart,
    render_manifests,
    run_helm,
    start_chart_scheduler,
    with_extender_url,
)
from e2e.controlplane.components import ApiServer
from e2e.controlplane.objects import node_ready, simple_pod, wait_for_object
from e2e.controlplane.processes import ProcessManager
from e2e.controlplane.readiness import LOOPBACK, http_get
from e2e.controlplane.scheduler_config import write_scheduler_config

SCHEDULER_SA = "ladts-scheduler"
EXTENDER_SA = "ladts-scheduler-extender"


# --------------------------------------------------------------------------------------------
# helpers


def can_i(
    api: client.ApiClient, verb: str, resource: str, namespace: str = "", group: str = "",
    subresource: str = "", name: str = "",
) -> bool:  # fmt: skip
    """SelfSubjectAccessReview: may the client's identity do this?"""
    review = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(
                verb=verb, resource=resource, namespace=namespace or None, group=group,
                subresource=subresource or None, name=name or None,
            )
        )
    )  # fmt: skip
    answer = client.AuthorizationV1Api(api).create_self_subject_access_review(review)
    return bool(answer.status.allowed)


def contained(rendered: Any, stored: Any) -> bool:
    """True when every field of ``rendered`` is in ``stored`` with the same value (the server
    may add defaults, but may not drop or change what the manifest says)."""
    if isinstance(rendered, dict):
        return isinstance(stored, dict) and all(
            k in stored and contained(v, stored[k]) for k, v in rendered.items()
        )
    if isinstance(rendered, list):
        return (
            isinstance(stored, list) and len(rendered) == len(stored)
            and all(contained(a, b) for a, b in zip(rendered, stored, strict=True))
        )  # fmt: skip
    return bool(rendered == stored)


def forbidden(call: Callable[[], object]) -> bool:
    """True when the call fails with 403 Forbidden; False when it succeeds or the object is
    missing (404 comes after authorization); other errors are raised."""
    try:
        call()
    except ApiException as err:
        if err.status in (403, 404):
            return bool(err.status == 403)
        raise
    return False


# --------------------------------------------------------------------------------------------
# the default manifests applied



@pytest.fixture(scope="module", autouse=True)
def _helm_built(e2e_binaries: Binaries) -> None:
    """Skip (or fail under LADTS_E2E_REQUIRED=1) without the helm binary."""
    require_binaries(e2e_binaries, "helm")

@pytest.fixture(scope="module")
def dyn(api_client: client.ApiClient) -> dynamic.DynamicClient:
    return dynamic.DynamicClient(api_client)  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def applied(dyn: dynamic.DynamicClient) -> list[dict[str, Any]]:
    """manifests/ladts-scheduler.yaml (its generated content) applied to the apiserver."""
    return apply_all(dyn, parse_objects(render_manifests()))


def test_server_side_apply_of_rendered_manifests(
    dyn: dynamic.DynamicClient, applied: list[dict[str, Any]]
) -> None:
    """Every object is accepted with strict validation and stored as applied; re-applying
    changes nothing (no field the apiserver rewrites on each apply)."""
    kinds = [o["kind"] for o in applied]
    assert {"Namespace", "Deployment", "ServiceAccount", "ClusterRole", "Role"} <= set(kinds)
    rendered = parse_objects(render_manifests())
    for obj in rendered:
        resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        meta = obj["metadata"]
        stored = resource.get(name=meta["name"], namespace=meta.get("namespace")).to_dict()
        assert contained(obj, stored), f"{obj['kind']} {meta['name']} stored differently"
    # The chart's objects (the Namespace is the manifest file's own, and the apiserver
    # rewrites its default label on every write).
    again = apply_all(dyn, parse_objects(render_manifests()))

    def versions(objects: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
        return {
            (o["kind"], o["metadata"]["name"]): o["metadata"]["resourceVersion"]
            for o in objects if o["kind"] != "Namespace"
        }  # fmt: skip

    assert versions(again) == versions(applied)
    deployment = dyn.resources.get(api_version="apps/v1", kind="Deployment").get(
        name="ladts-scheduler", namespace=NAMESPACE
    )
    containers = [c["name"] for c in deployment.to_dict()["spec"]["template"]["spec"]["containers"]]
    assert containers == ["kube-scheduler", "ladts"]


def test_pods_meet_restricted_pod_security(
    dyn: dynamic.DynamicClient, applied: list[dict[str, Any]]
) -> None:
    """The scheduler pod and the helm test pod pass the apiserver's PodSecurity admission in
    the manifests' namespace, which enforces "restricted"; a privileged pod does not."""
    namespace = next(o for o in applied if o["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    objects = parse_objects(render_chart(include_tests=True))
    template = find_object(objects, "Deployment")["spec"]["template"]
    pods = [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {**template["metadata"],
         "name": "psa-scheduler", "namespace": NAMESPACE}, "spec": template["spec"]},
        find_object(objects, "Pod", "-test-extender"),
    ]  # fmt: skip
    for pod in pods:
        assert server_side_apply(dyn, pod, dry_run=True)["kind"] == "Pod"
    privileged = json.loads(json.dumps(pods[1]))
    privileged["metadata"]["name"] = "psa-privileged"
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    with pytest.raises(ApiException) as err:
        server_side_apply(dyn, privileged, dry_run=True)
    assert err.value.status == 403 and "restricted" in str(err.value.body)


def test_examples_pass_server_side_dry_run(dyn: dynamic.DynamicClient) -> None:
    """manifests/examples/*.yaml are valid objects for this apiserver (dry run)."""
    files = sorted((MANIFESTS_DIR / "examples").glob("*.yaml"))
    assert files
    for path in files:
        for obj in parse_objects(path.read_text(encoding="utf-8")):
            # A dry-run object in a namespace needs the namespace itself to exist.
            result = server_side_apply(dyn, obj, dry_run=obj["kind"] != "Namespace")
            assert result["kind"] == obj["kind"], path.name


def test_every_option_passes_server_side_dry_run(dyn: dynamic.DynamicClient) -> None:
    """The templates behind non-default values (HA, policy, profiles, Prometheus auth, trace
    claim, metrics Service, NetworkPolicy, the helm test pod) render valid objects too.
    The ServiceMonitor is left out: its CRD (prometheus-operator) is not installed here."""
    namespace = "ladts-options"
    namespace_object = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    server_side_apply(dyn, namespace_object)
    values = {
        "replicaCount": 2,
        "priorityClassName": "system-cluster-critical",
        "imagePullSecrets": [{"name": "regcred"}],
        "serve": {
            "listenAddress": "0.0.0.0", "policy": {"onnxBase64": "CAcSBGxhZHRz"},
            "gpuProfiles": {"profiles": [{"name": "rtx-4090", "vram_gib": 23, "models": {}}]},
            "trace": {"existingClaim": "ladts-trace"},
            "extraEnv": [{"name": "LADTS_LOG_LEVEL", "value": "DEBUG"}],
        },
        "prometheus": {"url": "https://prometheus.monitoring:9090",
                       "bearerTokenSecret": {"name": "prom-token"},
                       "caConfigMap": {"name": "prom-ca"}},
        "serviceMonitor": {"enabled": True},
        "networkPolicy": {"enabled": True, "metricsFrom": [{"namespaceSelector": {}}]},
        "scheduler": {"extraArgs": ["--kube-api-qps=100"]},
    }  # fmt: skip
    objects = parse_objects(render_chart(values, namespace=namespace, include_tests=True))
    kinds = set()
    for obj in objects:
        if obj["kind"] == "ServiceMonitor":
            continue
        kinds.add(server_side_apply(dyn, obj, dry_run=True)["kind"])
    assert {"NetworkPolicy", "Service", "Pod", "Deployment"} <= kinds
    assert sum(o["kind"] == "ConfigMap" for o in objects) == 4  # config, serve, policy, profiles


def test_helm_install_dry_run_against_the_apiserver(
    kube_apiserver: ApiServer, e2e_workdir: Path
) -> None:
    """`helm install --dry-run=server` against the real apiserver: the cluster's own version
    picks the kube-scheduler tag, and NOTES.txt tells how to opt a pod in."""
    out = run_helm([
        # Its own release name: the applied manifests own the default cluster-scoped names.
        "install", f"{RELEASE}-dry", CHART_DIR, "--namespace", "ladts-helm", "--create-namespace",
        "--dry-run=server", "--kubeconfig", kube_apiserver.kubeconfig,
    ], env={"HOME": str(e2e_workdir), "HELM_CACHE_HOME": str(e2e_workdir / "helm-cache"),
            "HELM_CONFIG_HOME": str(e2e_workdir / "helm-config"),
            "HELM_DATA_HOME": str(e2e_workdir / "helm-data")})  # fmt: skip
    version = pinned_versions()["LADTS_K8S_VERSION"]
    assert f"image: registry.k8s.io/kube-scheduler:{version}" in out
    notes = out.split("NOTES:", 1)[1]
    assert "schedulerName: ladts-scheduler" in notes
    assert "ladts.io/model" in notes and f"helm test {RELEASE}-dry -n ladts-helm" in notes


# --------------------------------------------------------------------------------------------
# RBAC, exercised with real tokens of the chart's ServiceAccounts


@pytest.fixture(scope="module")
def extender_api(
    kube_apiserver: ApiServer, core_v1: client.CoreV1Api, applied: list[dict[str, Any]]
) -> Iterator[client.ApiClient]:
    del applied
    with client_for(kube_apiserver, token_for(core_v1, EXTENDER_SA, NAMESPACE)) as api:
        yield api


@pytest.fixture(scope="module")
def scheduler_api(
    kube_apiserver: ApiServer, core_v1: client.CoreV1Api, applied: list[dict[str, Any]]
) -> Iterator[client.ApiClient]:
    del applied
    with client_for(kube_apiserver, token_for(core_v1, SCHEDULER_SA, NAMESPACE)) as api:
        yield api


@pytest.fixture
def parked_pod(core_v1: client.CoreV1Api) -> Iterator[tuple[str, str]]:
    """A pod no scheduler serves (so only the test binds it) and a node to bind it to."""
    pod_name = f"rbac-{uuid.uuid4().hex[:6]}"
    node_name = f"rbac-node-{uuid.uuid4().hex[:6]}"
    core_v1.create_node(client.V1Node(metadata=client.V1ObjectMeta(name=node_name)))
    core_v1.create_namespaced_pod("default", simple_pod(pod_name, scheduler_name="nobody"))
    yield pod_name, node_name
    core_v1.delete_namespaced_pod(pod_name, "default", grace_period_seconds=0)
    core_v1.delete_node(node_name)


def test_extender_identity_can_do_its_job(
    extender_api: client.ApiClient, core_v1: client.CoreV1Api, parked_pod: tuple[str, str]
) -> None:
    """With the extender's token: watch pods and nodes, annotate, bind, post an Event."""
    pod_name, node_name = parked_pod
    api = client.CoreV1Api(extender_api)
    assert any(p.metadata.name == pod_name for p in api.list_pod_for_all_namespaces().items)
    assert any(n.metadata.name == node_name for n in api.list_node().items)
    # A change made after the list arrives through the extender's watch.
    pods_rv = api.list_pod_for_all_namespaces(limit=1).metadata.resource_version
    core_v1.patch_namespaced_pod(pod_name, "default", {"metadata": {"labels": {"seen": "1"}}})
    events = watch.Watch().stream(  # type: ignore[no-untyped-call]
        api.list_pod_for_all_namespaces, resource_version=pods_rv, timeout_seconds=2
    )
    assert any(
        e["type"] == "MODIFIED" and e["object"].metadata.name == pod_name for e in events
    )
    api.patch_namespaced_pod(
        pod_name, "default", {"metadata": {"annotations": {"ladts.io/decision": "{}"}}}
    )
    api.create_namespaced_binding(
        "default",
        client.V1Binding(
            metadata=client.V1ObjectMeta(name=pod_name),
            target=client.V1ObjectReference(kind="Node", name=node_name, api_version="v1"),
        ),
        _preload_content=False,
    )
    api.create_namespaced_event("default", client.CoreV1Event(
        metadata=client.V1ObjectMeta(generate_name=f"{pod_name}."),
        involved_object=client.V1ObjectReference(kind="Pod", name=pod_name, namespace="default"),
        reason="LadtsDecision", message="rbac test", type="Normal",
    ))  # fmt: skip
    # Checked with the admin client: the effects are real.
    pod = core_v1.read_namespaced_pod(pod_name, "default")
    assert pod.spec.node_name == node_name
    assert pod.metadata.annotations["ladts.io/decision"] == "{}"
    for verb, resource, subresource in [
        ("watch", "nodes", ""), ("watch", "pods", ""), ("create", "pods", "binding"),
        ("create", "bindings", ""), ("patch", "pods", ""), ("create", "events", ""),
    ]:  # fmt: skip
        assert can_i(extender_api, verb, resource, "default", subresource=subresource), verb
    assert can_i(extender_api, "create", "events", "default", group="events.k8s.io")


def test_extender_identity_cannot_do_more(
    extender_api: client.ApiClient, parked_pod: tuple[str, str]
) -> None:
    """No deleting pods, no secrets, no creating pods, no node writes, no ConfigMap writes."""
    pod_name, node_name = parked_pod
    api = client.CoreV1Api(extender_api)
    assert forbidden(lambda: api.delete_namespaced_pod(pod_name, "default"))
    assert forbidden(lambda: api.list_namespaced_secret(NAMESPACE))
    assert forbidden(lambda: api.read_namespaced_secret(f"{EXTENDER_SA}-token", NAMESPACE))
    assert forbidden(lambda: api.create_namespaced_pod("default", simple_pod("rbac-x")))
    assert forbidden(lambda: api.patch_node(node_name, {"metadata": {"labels": {"x": "y"}}}))
    assert forbidden(lambda: api.list_namespaced_config_map(NAMESPACE))
    for verb, resource, group in [
        ("delete", "pods", ""), ("get", "secrets", ""), ("update", "pods", ""),
        ("create", "pods", ""), ("patch", "nodes", ""), ("update", "leases", "coordination.k8s.io"),
        ("escalate", "clusterroles", "rbac.authorization.k8s.io"),
    ]:  # fmt: skip
        assert not can_i(extender_api, verb, resource, "default", group=group), (verb, resource)


def test_scheduler_identity(scheduler_api: client.ApiClient) -> None:
    """The stock scheduler roles plus its own Lease and the authentication ConfigMap."""
    lease = ("coordination.k8s.io", "leases")
    assert can_i(scheduler_api, "create", lease[1], NAMESPACE, group=lease[0])
    for verb in ("get", "update"):
        assert can_i(scheduler_api, verb, lease[1], NAMESPACE, group=lease[0], name=SCHEDULER_SA)
        assert not can_i(scheduler_api, verb, lease[1], NAMESPACE, group=lease[0], name="other")
    assert can_i(
        scheduler_api, "get", "configmaps", "kube-system", name="extension-apiserver-authentication"
    )
    assert can_i(scheduler_api, "create", "pods", "default", subresource="binding")
    assert can_i(scheduler_api, "update", "persistentvolumeclaims", "default")  # volume-scheduler
    assert not can_i(scheduler_api, "get", "secrets", NAMESPACE)
    assert not can_i(scheduler_api, "get", "configmaps", "kube-system", name="other")
    api = client.CoreV1Api(scheduler_api)
    assert forbidden(lambda: api.list_namespaced_secret(NAMESPACE))
    # Authorized (this control plane has no client CA, so the ConfigMap may be absent: 404).
    assert not forbidden(
        lambda: api.read_namespaced_config_map("extension-apiserver-authentication", "kube-system")
    )


# --------------------------------------------------------------------------------------------
# kube-scheduler from the chart's configuration


@dataclass
class RecordingExtender:
    """An extender on the v1 wire format that records calls: filters out ``rejected``, gives
    ``preferred`` 10 and others 0, and binds with the chart's extender identity."""

    api: client.CoreV1Api
    rejected: str
    preferred: str
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def answer(self, verb: str, body: dict[str, Any]) -> Any:
        self.calls.append((verb, body))
        if verb == "filter":
            names = [n for n in body["NodeNames"] if n != self.rejected]
            seen = self.rejected in body["NodeNames"]
            failed = {self.rejected: "rejected by the test"} if seen else {}
            return {"Nodes": None, "NodeNames": names, "FailedNodes": failed,
                    "FailedAndUnresolvableNodes": {}, "Error": ""}  # fmt: skip
        if verb == "prioritize":
            names = body["NodeNames"]
            return [{"Host": n, "Score": 10 if n == self.preferred else 0} for n in names]
        if verb == "bind":
            decision = json.dumps({"node": body["Node"], "scorer": "e2e-recording"})
            self.api.patch_namespaced_pod(
                body["PodName"], body["PodNamespace"],
                {"metadata": {"annotations": {"ladts.io/decision": decision}}},
            )  # fmt: skip
            self.api.create_namespaced_binding(
                body["PodNamespace"],
                client.V1Binding(
                    metadata=client.V1ObjectMeta(name=body["PodName"], uid=body["PodUID"]),
                    target=client.V1ObjectReference(kind="Node", name=body["Node"]),
                ),
                _preload_content=False,
            )
            return {"Error": ""}
        raise KeyError(verb)


def serve_extender(extender: RecordingExtender) -> tuple[ThreadingHTTPServer, int]:
    """Serve ``extender`` on a free loopback port."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            try:
                payload, status = extender.answer(self.path.strip("/"), body), 200
            except Exception as err:  # the scheduler shows it; the test then fails on placement
                payload, status = {"Error": repr(err)}, 200
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            del format, args

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])


def test_scheduler_runs_from_chart_config(
    e2e_processes: ProcessManager,
    e2e_binaries: Binaries,
    e2e_workdir: Path,
    kube_apiserver: ApiServer,
    core_v1: client.CoreV1Api,
    dyn: dynamic.DynamicClient,
    kwok: Any,
    fake_node_factory: Callable[..., client.V1Node],
) -> None:
    """The chart's KubeSchedulerConfiguration (2 replicas: leader election on), run as the
    chart's scheduler ServiceAccount, calls the extender's filter, prioritize and bind, and
    the pod lands where the extender said."""
    del kwok
    require_binaries(e2e_binaries, "kube-scheduler")
    release, namespace = "ladts-scheduler-e2e", "ladts-e2e"  # fullname = release name
    profile = f"ladts-e2e-{uuid.uuid4().hex[:4]}"
    objects = parse_objects(render_chart(
        set_values=[f"schedulerName={profile}", "replicaCount=2"],
        release=release, namespace=namespace,
    ))  # fmt: skip
    namespace_object = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    server_side_apply(dyn, namespace_object)
    apply_all(dyn, objects)
    scheduler_token = token_for(core_v1, release, namespace)
    with client_for(kube_apiserver, token_for(core_v1, f"{release}-extender", namespace)) as ext:
        nodes = [str(fake_node_factory(gpus=1).metadata.name) for _ in range(3)]
        for name in nodes:
            wait_for_object(partial(core_v1.read_node, name), node_ready, f"node {name} Ready")
        extender = RecordingExtender(client.CoreV1Api(ext), rejected=nodes[0], preferred=nodes[2])
        server, port = serve_extender(extender)
        try:
            rendered = chart_scheduler_config(objects)
            assert rendered["extenders"][0]["urlPrefix"] == "http://127.0.0.1:8888"
            config = with_extender_url(rendered, f"http://{LOOPBACK}:{port}")
            scheduler = start_chart_scheduler(
                e2e_processes, e2e_binaries.get("kube-scheduler"), e2e_workdir / "chart-scheduler",
                kube_apiserver, config, scheduler_token,
                f"system:serviceaccount:{namespace}:{release}",
            )  # fmt: skip
            proc, health = scheduler.process, scheduler.port
            try:
                pod_name = f"chart-{uuid.uuid4().hex[:6]}"
                core_v1.create_namespaced_pod("default", simple_pod(
                    pod_name, scheduler_name=profile,
                    annotations={"ladts.io/model": "sd15", "ladts.io/steps": "20"},
                ))  # fmt: skip
                pod = wait_for_object(
                    lambda: core_v1.read_namespaced_pod(pod_name, "default"),
                    lambda p: bool(p.spec.node_name), f"pod {pod_name} bound", timeout_s=60,
                )
                assert pod.spec.node_name == nodes[2]
                decision = json.loads(pod.metadata.annotations["ladts.io/decision"])
                assert decision == {"node": nodes[2], "scorer": "e2e-recording"}
                verbs = [verb for verb, _ in extender.calls]
                assert verbs[:3] == ["filter", "prioritize", "bind"], verbs
                filter_args = extender.calls[0][1]
                assert filter_args.get("Nodes") is None  # nodeCacheCapable: names only
                assert set(nodes) <= set(filter_args["NodeNames"])
                assert nodes[0] not in extender.calls[1][1]["NodeNames"]
                lease = dyn.resources.get(api_version="coordination.k8s.io/v1", kind="Lease").get(
                    name=profile, namespace=namespace
                ).to_dict()
                assert lease["spec"]["holderIdentity"]
                status, metrics = http_get(f"https://{LOOPBACK}:{health}/metrics")
                assert status == 200
                scheduled = [
                    line for line in metrics.splitlines()
                    if line.startswith("scheduler_schedule_attempts_total")
                    and f'profile="{profile}"' in line and 'result="scheduled"' in line
                ]  # fmt: skip
                assert scheduled and float(scheduled[0].rsplit(" ", 1)[1]) >= 1, scheduled

                # ignorable: true: with the extender gone, pods still schedule (bound by
                # kube-scheduler itself, as the scheduler identity), without a decision.
                server.shutdown()
                server.server_close()
                calls_before = len(extender.calls)
                orphan = f"chart-down-{uuid.uuid4().hex[:6]}"
                core_v1.create_namespaced_pod("default", simple_pod(
                    orphan, scheduler_name=profile, annotations={"ladts.io/model": "sd15"},
                ))  # fmt: skip
                pod = wait_for_object(
                    lambda: core_v1.read_namespaced_pod(orphan, "default"),
                    lambda p: bool(p.spec.node_name), f"pod {orphan} bound", timeout_s=60,
                )
                assert str(pod.spec.node_name) in nodes
                assert "ladts.io/decision" not in (pod.metadata.annotations or {})
                assert len(extender.calls) == calls_before
            finally:
                e2e_processes.stop(proc)
        finally:
            server.shutdown()
            server.server_close()


def test_chart_config_is_valid_yaml_for_start_scheduler(tmp_path: Path) -> None:
    """The helper's output round-trips through the fixture's loader (what e2e/serve uses)."""
    from e2e.controlplane.scheduler_config import load_scheduler_config

    config = chart_scheduler_config(parse_objects(render_chart()))
    path = write_scheduler_config(tmp_path / "c.yaml", config)
    assert load_scheduler_config(path) == yaml.safe_load(path.read_text())
