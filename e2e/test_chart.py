"""The Helm chart ``helm/ladts-scheduler`` through the real helm binary (no cluster needed).

helm lint (also --strict), helm template, schema rejection of bad values with helm's own
message, the plain manifests under ``manifests/`` up to date, and the rendered objects'
security-relevant properties (RBAC without wildcards, hardened containers).
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.conftest import require_binaries
from e2e.controlplane.binaries import Binaries
from e2e.controlplane.chart import (
    CHART_DIR,
    CHART_README,
    MANIFEST_FILE,
    NAMESPACE,
    ChartError,
    chart_container,
    chart_scheduler_config,
    chart_serve_args,
    chart_serve_settings,
    find_object,
    local_serve_command,
    parse_objects,
    render_chart,
    render_manifests,
    run_helm,
    values_readme,
)


@pytest.fixture(scope="module")
def helm(e2e_binaries: Binaries) -> Path:
    """The helm binary built by build.sh."""
    require_binaries(e2e_binaries, "helm")
    return e2e_binaries.get("helm")


@pytest.fixture(scope="module")
def default_objects(helm: Path) -> list[dict[str, Any]]:
    """The chart rendered with its default values (tests included)."""
    return parse_objects(render_chart(helm=helm, include_tests=True))


def test_helm_lint(helm: Path) -> None:
    out = run_helm(["lint", CHART_DIR], helm)
    assert "1 chart(s) linted, 0 chart(s) failed" in out


def test_helm_lint_strict(helm: Path) -> None:
    out = run_helm(["lint", "--strict", CHART_DIR, "--kube-version", "v1.31.4"], helm)
    assert "0 chart(s) failed" in out
    assert "[WARNING]" not in out


def test_default_render_kinds(default_objects: list[dict[str, Any]]) -> None:
    kinds = sorted({o["kind"] for o in default_objects})
    assert kinds == [
        "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment",
        "Pod", "PodDisruptionBudget", "Role", "RoleBinding", "Secret", "ServiceAccount",
    ]  # fmt: skip
    for obj in default_objects:
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            expected = "kube-system" if obj["kind"] == "RoleBinding" and "authentication" in (
                obj["metadata"]["name"]
            ) else NAMESPACE
            assert obj["metadata"]["namespace"] == expected, obj["metadata"]["name"]


def test_scheduler_config_shape(default_objects: list[dict[str, Any]]) -> None:
    """One profile, all nodes scored, resource-driven score plugins off, the extender entry."""
    config = chart_scheduler_config(default_objects)
    assert config["apiVersion"] == "kubescheduler.config.k8s.io/v1"
    assert config["percentageOfNodesToScore"] == 100
    assert [p["schedulerName"] for p in config["profiles"]] == ["ladts-scheduler"]
    disabled = {p["name"] for p in config["profiles"][0]["plugins"]["score"]["disabled"]}
    assert disabled == {"NodeResourcesFit", "NodeResourcesBalancedAllocation", "ImageLocality"}
    assert "filter" not in config["profiles"][0]["plugins"]  # filters stay as defaulted
    assert config["extenders"] == [{
        "urlPrefix": "http://127.0.0.1:8888", "filterVerb": "filter",
        "prioritizeVerb": "prioritize", "bindVerb": "bind", "weight": 10, "httpTimeout": "2s",
        "nodeCacheCapable": True, "ignorable": True,
    }]  # fmt: skip
    assert config["leaderElection"]["leaderElect"] is False


def test_leader_election_follows_replicas(helm: Path) -> None:
    objects = parse_objects(render_chart({"replicaCount": 2}, helm=helm))
    election = chart_scheduler_config(objects)["leaderElection"]
    assert election == {
        "leaderElect": True, "resourceLock": "leases", "resourceName": "ladts-scheduler",
        "resourceNamespace": NAMESPACE, "leaseDuration": "15s", "renewDeadline": "10s",
        "retryPeriod": "2s",
    }  # fmt: skip
    deployment = find_object(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert "strategy" not in deployment["spec"]  # rolling: the Lease keeps one active


@pytest.mark.parametrize(
    ("cluster", "tag"),
    [("v1.31.4+k3s1", "v1.31.4"), ("v1.30.4-eks-a737599", "v1.30.4"), ("v1.36.3", "v1.36.3")],
)
def test_scheduler_image_tag_from_cluster_version(helm: Path, cluster: str, tag: str) -> None:
    objects = parse_objects(render_chart(helm=helm, kube_version=cluster))
    image = chart_container(objects, "kube-scheduler")["image"]
    assert image == f"registry.k8s.io/kube-scheduler:{tag}"


def test_scheduler_image_overrides(helm: Path) -> None:
    digest = "sha256:" + "a" * 64
    objects = parse_objects(render_chart(
        {"scheduler": {"image": {"registry": "mirror.local", "tag": "v1.33.1", "digest": digest}}},
        helm=helm,
    ))  # fmt: skip
    assert chart_container(objects, "kube-scheduler")["image"] == (
        f"mirror.local/kube-scheduler@{digest}"
    )


def test_containers_hardened(default_objects: list[dict[str, Any]]) -> None:
    deployment = find_object(default_objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        ctx = container["securityContext"]
        assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] > 0, container["name"]
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
        assert "memory" in container["resources"]["limits"]
    mounts = {c["name"]: {m["name"] for m in c["volumeMounts"]} for c in pod["containers"]}
    # Each container sees only its own identity's token.
    assert "scheduler-api-access" in mounts["kube-scheduler"]
    assert "scheduler-api-access" not in mounts["ladts"]
    assert "extender-api-access" in mounts["ladts"]
    assert "extender-api-access" not in mounts["kube-scheduler"]


def test_rbac_has_no_wildcards_or_admin(default_objects: list[dict[str, Any]]) -> None:
    for obj in default_objects:
        if obj["kind"] in ("ClusterRole", "Role"):
            for rule in obj["rules"]:
                for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                    assert "*" not in rule.get(field, []), (obj["metadata"]["name"], rule)
        if obj["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            assert obj["roleRef"]["name"] not in ("cluster-admin", "admin", "edit")
    extender = find_object(default_objects, "ClusterRole", "-extender")
    verbs = {
        (group, resource): set(rule["verbs"])
        for rule in extender["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert verbs[("", "pods")] == {"get", "list", "watch", "patch"}
    assert not any("delete" in v for v in verbs.values())
    assert not any(resource == "secrets" for _, resource in verbs)


def test_serve_container_settings(default_objects: list[dict[str, Any]]) -> None:
    """The serve container gets one settings file; the extender listens on loopback."""
    assert chart_serve_args(default_objects) == ["serve", "--config=/etc/ladts/serve/settings.yaml"]
    settings = chart_serve_settings(default_objects)
    assert settings["host"] == "127.0.0.1"
    assert settings["port"] == 8888
    assert settings["policy"] == "bundled"  # the LAD-TS policy shipped in the image
    assert "prometheus_url" not in settings
    probe = chart_container(default_objects, "ladts")["readinessProbe"]
    assert "127.0.0.1:8888/readyz" in " ".join(probe["exec"]["command"])


def test_serve_settings_with_policy_and_prometheus(helm: Path) -> None:
    onnx = base64.b64encode(b"\x08\x07fake-onnx-bytes").decode()
    objects = parse_objects(render_chart({
        "serve": {"policy": {"onnxBase64": onnx}, "gpuProfiles": {"profiles": []},
                  "extraSettings": {"noise_seed": 7}},
        "prometheus": {"url": "https://prometheus.monitoring:9090",
                       "bearerTokenSecret": {"name": "prom-token"},
                       "caConfigMap": {"name": "prom-ca"}},
    }, helm=helm))  # fmt: skip
    settings = chart_serve_settings(objects)
    assert settings["policy"] == "/etc/ladts/policy/policy.onnx"
    assert settings["profiles"] == "/etc/ladts/gpu-profiles/gpu-profiles.yaml"
    assert settings["prometheus_url"] == "https://prometheus.monitoring:9090"
    assert settings["prometheus_token_file"] == "/etc/ladts/prometheus-token/token"
    assert settings["prometheus_ca_file"] == "/etc/ladts/prometheus-ca/ca.crt"
    assert settings["noise_seed"] == 7
    policy = find_object(objects, "ConfigMap", "-policy")
    assert base64.b64decode(policy["binaryData"]["policy.onnx"]) == b"\x08\x07fake-onnx-bytes"
    mounts = {m["name"]: m["mountPath"] for m in chart_container(objects, "ladts")["volumeMounts"]}
    assert mounts["policy"] == "/etc/ladts/policy"  # a directory: ConfigMap updates arrive


def test_serve_settings_heuristic_without_the_bundled_policy(helm: Path) -> None:
    objects = parse_objects(render_chart({"serve": {"policy": {"bundled": False}}}, helm=helm))
    assert chart_serve_settings(objects)["policy"] == "none"
    mounts = {m["name"] for m in chart_container(objects, "ladts")["volumeMounts"]}
    assert "policy" not in mounts


def test_local_serve_command(default_objects: list[dict[str, Any]], tmp_path: Path) -> None:
    """e2e runs `ladts serve` with the chart's arguments and settings, local paths swapped in."""
    path = tmp_path / "settings.yaml"
    argv = local_serve_command(default_objects, path, {"port": 18888, "trace_path": None})
    assert argv == ["ladts", "serve", f"--config={path}"]
    written = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert written == {**chart_serve_settings(default_objects), "port": 18888, "trace_path": None}


@pytest.mark.parametrize("full", [False, True], ids=["defaults", "every-option"])
def test_serve_settings_load_in_ladts_serve(helm: Path, tmp_path: Path, full: bool) -> None:
    """`ladts serve`'s own loader accepts the chart's settings file (once the command exists)."""
    settings_module = pytest.importorskip("ladts_operator.settings")
    values = {
        "serve": {"policy": {"configMapName": "p"}, "gpuProfiles": {"profiles": []}},
        "prometheus": {"url": "https://prom:9090", "bearerTokenSecret": {"name": "t"},
                       "caConfigMap": {"name": "ca"}, "requireFreshMetrics": True},
    } if full else None  # fmt: skip
    settings = chart_serve_settings(parse_objects(render_chart(values, helm=helm)))
    names = {f.name for f in dataclasses.fields(settings_module.ServeSettings)}
    assert set(settings) <= names
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    loaded = settings_module.load_settings(argparse.Namespace(config=str(path)), env={})
    assert loaded.host == "127.0.0.1" and loaded.port == 8888
    if full:
        assert loaded.policy_path == Path("/etc/ladts/policy/policy.onnx")
    else:  # the bundled policy, from the installed package
        assert loaded.uses_bundled_policy and loaded.policy_path.name == "lad-ts.onnx"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": 0}, r"replicaCount.*minimum"),
        ({"replicaCount": "two"}, r"replicaCount.*(integer|type)"),
        ({"schedulerName": "Ladts_Scheduler"}, r"schedulerName.*pattern"),
        ({"extender": {"weight": 0}}, r"weight.*minimum"),
        ({"extender": {"httpTimeout": "2 seconds"}}, r"httpTimeout.*pattern"),
        ({"scheduler": {"percentageOfNodesToScore": 150}}, r"percentageOfNodesToScore.*maximum"),
        ({"scheduler": {"image": {"pullPolicy": "Sometimes"}}}, r"pullPolicy.*(enum|one of)"),
        ({"serve": {"port": 70000}}, r"port.*maximum"),
        ({"serve": {"listenAddress": "localhost"}}, r"listenAddress.*(enum|one of)"),
        ({"serve": {"polcy": {}}}, r"(additional properties|additionalProperties).*polcy"),
        ({"prometheus": {"url": "prometheus:9090"}}, r"url.*pattern"),
        ({"serve": {"policy": {"threads": 0}}}, r"threads.*minimum"),
        ({"scheduler": {"disabledScorePlugins": ["NodeResourceFit"]}}, r"disabledScorePlugins/0"),
    ],
    ids=lambda v: v if isinstance(v, str) else yaml.safe_dump(v, default_flow_style=True).strip(),
)
def test_schema_rejects_bad_values(helm: Path, values: dict[str, Any], message: str) -> None:
    """Bad values fail with helm's schema error naming the field."""
    with pytest.raises(ChartError) as err:
        render_chart(values, helm=helm)
    text = str(err.value)
    assert "values don't meet the specifications of the schema" in text, text
    assert re.search(message, text, re.DOTALL), text


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"schedulerName": "default-scheduler"}, "must not be default-scheduler"),
        ({"serviceMonitor": {"enabled": True}}, "serviceMonitor.enabled needs serve.listenAddress"),
        ({"serve": {"policy": {"configMapName": "p", "onnxBase64": "AAAA"}}}, "not both"),
        (
            {"serve": {"extraSettings": {"port": 9999}}},
            "serve.extraSettings.port is set by the chart: use serve.port",
        ),
    ],
)
def test_template_rejects_bad_combinations(
    helm: Path, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ChartError, match=re.escape(message)):
        render_chart(values, helm=helm)


def test_old_cluster_is_refused(helm: Path) -> None:
    with pytest.raises(ChartError, match=r"kubeVersion|1\.25"):
        render_chart(helm=helm, kube_version="v1.24.17")


def test_service_monitor_and_network_policy(helm: Path) -> None:
    objects = parse_objects(render_chart({
        "serve": {"listenAddress": "0.0.0.0"},
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "networkPolicy": {"enabled": True, "metricsFrom": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        ]},
    }, helm=helm))  # fmt: skip
    monitor = find_object(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    service = find_object(objects, "Service", "-metrics")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    policy = find_object(objects, "NetworkPolicy")
    serve_rule = next(r for r in policy["spec"]["ingress"] if "from" in r)
    assert serve_rule["ports"] == [{"port": 8888, "protocol": "TCP"}]
    # Reachable from outside the pod now, so the kubelet probes over HTTP.
    assert chart_container(objects, "ladts")["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_helm_test_pod_waits_for_the_decision(default_objects: list[dict[str, Any]]) -> None:
    pod = find_object(default_objects, "Pod", "-test-extender")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["schedulerName"] == "ladts-scheduler"
    assert "ladts.io/decision" in pod["spec"]["containers"][0]["command"][2]


def test_manifests_up_to_date(helm: Path) -> None:
    """manifests/ladts-scheduler.yaml is the chart rendered with default values."""
    assert MANIFEST_FILE.exists(), "run: python -m e2e.controlplane.chart --write"
    stale = "manifests/ are out of date; run: python -m e2e.controlplane.chart --write"
    assert MANIFEST_FILE.read_text(encoding="utf-8") == render_manifests(helm), stale


def test_chart_readme_up_to_date() -> None:
    """helm/ladts-scheduler/README.md's values tables are generated from values.yaml."""
    stale = "the chart README is out of date; run: python -m e2e.controlplane.chart --write"
    assert CHART_README.read_text(encoding="utf-8") == values_readme(), stale


def test_values_documented_field_by_field() -> None:
    """Every leaf of values.yaml has a `## @param` line and a schema entry."""
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text(encoding="utf-8"))
    text = (CHART_DIR / "values.yaml").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\s*## @param (\S+)", text, re.M))
    schema = yaml.safe_load((CHART_DIR / "values.schema.json").read_text(encoding="utf-8"))

    def leaves(node: Any, prefix: str, schema_node: dict[str, Any]) -> list[str]:
        free_form = schema_node.get("additionalProperties", True) is not False
        if prefix in documented or not isinstance(node, dict) or not node or free_form:
            return [prefix]
        found = []
        for key, child in node.items():
            assert key in schema_node["properties"], f"{prefix}.{key} missing from the schema"
            found += leaves(child, f"{prefix}.{key}".lstrip("."), schema_node["properties"][key])
        return found

    missing = [leaf for leaf in leaves(values, "", schema) if leaf not in documented]
    assert not missing, f"values without a ## @param line: {missing}"
