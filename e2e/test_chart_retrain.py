"""The chart's retraining Jobs (off by default): rendering, values, schema, and the apiserver's
own validation of the rendered Jobs (server-side apply, dry run)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic

from e2e.conftest import require_binaries
from e2e.controlplane.apply import server_side_apply
from e2e.controlplane.binaries import Binaries
from e2e.controlplane.chart import ChartError, parse_objects, render_chart

ON: dict[str, Any] = {
    "retrain": {"enabled": True, "outputClaim": "ladts-output", "sweep": {"enabled": True}},
    "serve": {"trace": {"existingClaim": "ladts-trace"}}}


@pytest.fixture(scope="module")
def helm(e2e_binaries: Binaries) -> Path:
    require_binaries(e2e_binaries, "helm")
    return e2e_binaries.get("helm")


def jobs(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["labels"]["app.kubernetes.io/component"]: o
            for o in objects if o["kind"] == "Job"}


def test_off_by_default(helm: Path) -> None:
    assert not jobs(parse_objects(render_chart(helm=helm)))


def test_jobs_render_from_values(helm: Path) -> None:
    values = {**ON, "retrain": {**ON["retrain"], "nodeSelector": {"gpu": "a100"},
                                "tolerations": [{"key": "dedicated", "operator": "Exists"}],
                                "resources": {"limits": {"nvidia.com/gpu": 2}},
                                "image": {"repository": "me/trainer", "tag": "t1"}}}
    found = jobs(parse_objects(render_chart(values, helm=helm)))
    assert set(found) == {"retrain", "sweep"}
    for kind, job in found.items():
        pod = job["spec"]["template"]["spec"]
        (box,) = pod["containers"]
        # helm merges maps: the default key stays unless set to null.
        assert pod["nodeSelector"] == {"gpu": "a100", "nvidia.com/gpu.present": "true"}
        assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
        assert box["resources"]["limits"] == {"memory": "16Gi", "nvidia.com/gpu": 2}
        assert box["image"] == "me/trainer:t1"
        assert pod["automountServiceAccountToken"] is False
        assert box["securityContext"]["readOnlyRootFilesystem"] is True
        assert box["securityContext"]["allowPrivilegeEscalation"] is False
        claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName")
                  for v in pod["volumes"]}
        assert claims["trace"] == "ladts-trace" and claims["output"] == "ladts-output"
        assert job["metadata"]["name"].endswith(f"-{kind}-r1")
    sweep = found["sweep"]["spec"]
    assert sweep["completionMode"] == "Indexed" and sweep["completions"] == 5
    args = sweep["template"]["spec"]["containers"][0]["args"]
    assert "$(JOB_COMPLETION_INDEX)" in args  # the seed, expanded by the kubelet
    assert found["retrain"]["spec"]["template"]["spec"]["containers"][0]["args"][0] == "calibrate"
    assert "completionMode" not in found["retrain"]["spec"]


@pytest.mark.parametrize(("values", "message"), [
    ({"retrain": {"enabled": True, "outputClaim": "o"}}, "retrain needs the trace"),
    ({"retrain": {"enabled": True}, "serve": {"trace": {"existingClaim": "t"}}},
     "retrain needs retrain.outputClaim"),
])
def test_missing_claims_fail_clearly(helm: Path, values: dict[str, Any], message: str) -> None:
    with pytest.raises(ChartError, match=re.escape(message)):
        render_chart(values, helm=helm)


@pytest.mark.parametrize(("values", "message"), [
    ({"retrain": {"sweep": {"seeds": 0}}}, r"seeds.*minimum"),
    ({"retrain": {"args": []}}, r"args"),
    ({"retrain": {"gpu": 1}}, r"(additional properties|additionalProperties).*gpu"),
])
def test_schema_rejects_bad_retrain_values(helm: Path, values: dict[str, Any],
                                           message: str) -> None:
    with pytest.raises(ChartError) as err:
        render_chart(values, helm=helm)
    assert re.search(message, str(err.value), re.DOTALL), str(err.value)


def test_apiserver_accepts_the_rendered_jobs(helm: Path, api_client: client.ApiClient,
                                             core_v1: client.CoreV1Api) -> None:
    """Server-side apply with strict field validation, dry run, in a fresh namespace."""
    ns = f"retrain-{uuid.uuid4().hex[:6]}"
    core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    try:
        dyn = dynamic.DynamicClient(api_client)  # type: ignore[no-untyped-call]
        found = jobs(parse_objects(render_chart(ON, namespace=ns, helm=helm)))
        for job in found.values():
            result = server_side_apply(dyn, job, dry_run=True)
            assert result["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        assert found["sweep"]["spec"]["completionMode"] == "Indexed"
    finally:
        core_v1.delete_namespace(ns)
