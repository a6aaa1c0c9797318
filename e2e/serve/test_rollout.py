"""``ladts rollout`` / ``ladts rollback`` against the real kube-apiserver, and the hot reload.

The policy ConfigMap lives in the apiserver; the rollout gate runs the real evaluation; the
extender is ``ladts serve --offline`` reading its policy from a directory this test updates
from the ConfigMap the way the kubelet does (a new timestamped directory, then an atomic
rename of the ``..data`` symlink), and the test measures how long the extender takes to
serve the new version (seen in /debug/state and in a decision it makes).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from kubernetes import client

from e2e.controlplane.apply import client_for, token_for
from e2e.controlplane.components import ApiServer
from ladts_operator.commands.rollback import rollback_main
from ladts_operator.commands.rollout import EXIT_REFUSED, rollout_main
from ladts_operator.rollout import (
    ANNOTATION_PREVIOUS,
    ANNOTATION_VERSION,
    PolicyRef,
    RolloutError,
    rollback,
)
from ladts_policy.cli import main
from ladts_policy.untrained_policy import write_untrained_policy

if TYPE_CHECKING:
    from e2e.serve.conftest import Serve, ServeFactory

pytest.importorskip("onnx")

KEY = "policy.onnx"
POLL_S = 2.0
"""The chart's serve.policy.pollSeconds default: the reload bound stated in docs/deploy.md."""


class KubeletMount:
    """A ConfigMap volume as the kubelet's atomic writer lays it out."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.generation = 0

    def sync(self, cm: client.V1ConfigMap) -> None:
        """Write every key into a new ``..<ts>`` dir, then swap ``..data`` atomically."""
        self.generation += 1
        stamp = f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{self.generation:04d}"
        target = self.root / stamp
        target.mkdir()
        for key, value in (cm.binary_data or {}).items():
            (target / key).write_bytes(base64.b64decode(value))
            link = self.root / key
            if not link.is_symlink():
                link.symlink_to(Path("..data") / key)
        tmp = self.root / "..data_tmp"
        tmp.symlink_to(stamp)
        old = os.readlink(self.root / "..data") if (self.root / "..data").is_symlink() else None
        os.replace(tmp, self.root / "..data")
        if old is not None:
            for f in (self.root / old).iterdir():
                f.unlink()
            (self.root / old).rmdir()


def args_for(ns: str, **kw: Any) -> argparse.Namespace:
    base = dict(namespace=ns, configmap="ladts-policy", key=KEY, scenario="k8s-edge",
                seeds=[10_000, 10_001], episodes=1, tolerance=0.02, baseline="greedy",
                force=False, dry_run=False, progress=False, kubeconfig=None, context=None)
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("policies")
    return {
        "v1": write_untrained_policy(d / "v1.onnx", policy_version="e2e-v1"),
        "v2": write_untrained_policy(d / "v2.onnx", policy_version="e2e-v2",
                                     weights={"resident": 0.6}),
        "bad": write_untrained_policy(d / "bad.onnx", policy_version="e2e-bad",
                                      weights={"est_delay_s": 4.0, "queue_len": 0.5}),
    }


@pytest.fixture
def namespace(core_v1: client.CoreV1Api) -> Iterator[str]:
    ns = f"rollout-{uuid.uuid4().hex[:6]}"
    core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    yield ns
    core_v1.delete_namespace(ns)


def read_cm(core_v1: client.CoreV1Api, ns: str) -> client.V1ConfigMap:
    return core_v1.read_namespaced_config_map("ladts-policy", ns)


def version_served(serve: Serve) -> str:
    status, body = serve.get("/debug/state")
    assert status == 200
    return str(json.loads(body)["scorer"]["version"])


def decision_version(serve: Serve, index: int) -> str:
    """Ask the extender for one decision; return the policy version it records."""
    import random

    from ladts_operator.offline import pod_object
    from ladts_policy.sim.config.scenario import load_scenario

    config = load_scenario("k8s-edge").cluster
    pod = pod_object(config, random.Random(index), 90_000 + index)
    names = [n.name for n in config.expand_nodes()]
    status, _ = serve.post("/prioritize", json.dumps({"Pod": pod, "NodeNames": names}).encode())
    assert status == 200
    state = json.loads(serve.get("/debug/state")[1])
    mine = [d for d in state["decisions"] if d["pod_uid"] == pod["metadata"]["uid"]]
    assert mine, "the decision is not in /debug/state"
    return str(mine[-1]["version"])


def wait_version(serve: Serve, version: str, timeout_s: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if version_served(serve) == version:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"extender still serves {version_served(serve)} after {timeout_s} s")


def test_rollout_gate_rollback_and_hot_reload(core_v1: client.CoreV1Api, namespace: str,
                                              policies: dict[str, Path],
                                              serve_factory: ServeFactory, e2e_workdir: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    ns = namespace
    # The operator-created ConfigMap with the first policy, as docs/deploy.md step 5 makes it.
    core_v1.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="ladts-policy"),
        binary_data={KEY: base64.b64encode(policies["v1"].read_bytes()).decode()}))
    mount = KubeletMount(e2e_workdir / f"policy-mount-{ns}")
    mount.sync(read_cm(core_v1, ns))
    serve = serve_factory("--offline", "k8s-edge", "--policy", str(mount.root / KEY),
                          "--policy-poll-s", str(POLL_S))
    assert version_served(serve) == "e2e-v1"
    assert decision_version(serve, 1) == "e2e-v1"

    # 1. A worse candidate is refused; the ConfigMap is unchanged.
    before = read_cm(core_v1, ns)
    rc = rollout_main(args_for(ns, candidate=policies["bad"]), core_v1)
    out = capsys.readouterr()
    assert rc == EXIT_REFUSED, out
    assert "REFUSED" in out.out and "paired ratio" in out.out
    after = read_cm(core_v1, ns)
    assert after.metadata.resource_version == before.metadata.resource_version
    assert base64.b64decode(after.binary_data[KEY]) == policies["v1"].read_bytes()

    # 2. A no-worse candidate rolls out; the previous version is kept.
    rc = rollout_main(args_for(ns, candidate=policies["v2"]), core_v1)
    out = capsys.readouterr()
    assert rc == 0, out
    cm = read_cm(core_v1, ns)
    assert base64.b64decode(cm.binary_data[KEY]) == policies["v2"].read_bytes()
    assert base64.b64decode(cm.binary_data[KEY + ".previous"]) == policies["v1"].read_bytes()
    assert cm.metadata.annotations[ANNOTATION_VERSION] == "e2e-v2"
    assert cm.metadata.annotations[ANNOTATION_PREVIOUS] == "e2e-v1"

    # The kubelet propagates it; the extender reloads within one poll interval (+ load).
    mount.sync(cm)
    reload_s = wait_version(serve, "e2e-v2", timeout_s=POLL_S + 5.0)
    assert decision_version(serve, 2) == "e2e-v2"
    print(f"hot reload after the ..data swap: {reload_s:.2f} s (poll {POLL_S} s)")

    # 3. Rollback restores v1 (and keeps v2 as the previous version).
    rc = rollback_main(args_for(ns), core_v1)
    assert rc == 0, capsys.readouterr()
    cm = read_cm(core_v1, ns)
    assert base64.b64decode(cm.binary_data[KEY]) == policies["v1"].read_bytes()
    assert base64.b64decode(cm.binary_data[KEY + ".previous"]) == policies["v2"].read_bytes()
    mount.sync(cm)
    back_s = wait_version(serve, "e2e-v1", timeout_s=POLL_S + 5.0)
    assert decision_version(serve, 3) == "e2e-v1"
    with capsys.disabled():
        print(f"\nhot reload: rollout {reload_s:.2f} s, rollback {back_s:.2f} s "
              f"(policy poll {POLL_S} s; shared machine)")

    # 4. --force rolls out a refused candidate (figures still printed).
    rc = rollout_main(args_for(ns, candidate=policies["bad"], force=True), core_v1)
    out = capsys.readouterr()
    assert rc == 0 and "REFUSED" in out.out
    assert read_cm(core_v1, ns).metadata.annotations[ANNOTATION_VERSION] == "e2e-bad"


def test_clear_errors_missing_configmap_no_previous_and_rbac(
        core_v1: client.CoreV1Api, kube_apiserver: ApiServer, namespace: str,
        policies: dict[str, Path], capsys: pytest.CaptureFixture[str], kubeconfig_path: Path
) -> None:
    ns = namespace
    ref = PolicyRef(ns, "ladts-policy", KEY)
    # Missing ConfigMap.
    rc = rollout_main(args_for(ns, candidate=policies["v1"]), core_v1)
    assert rc == 1
    assert "not found" in capsys.readouterr().err
    with pytest.raises(RolloutError, match="not found"):
        rollback(core_v1, ref)
    # A ConfigMap with no previous version.
    core_v1.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="ladts-policy"),
        binary_data={KEY: base64.b64encode(policies["v1"].read_bytes()).decode()}))
    with pytest.raises(RolloutError, match="no previous version"):
        rollback(core_v1, ref)
    # The same through the command line, credentials from --kubeconfig.
    assert main(["rollback", "-n", ns, "--kubeconfig", str(kubeconfig_path)]) == 1
    assert "no previous version" in capsys.readouterr().err
    # An identity without rights on ConfigMaps (a fresh ServiceAccount): 403 named.
    core_v1.create_namespaced_service_account(
        ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody")))
    token = token_for(core_v1, "nobody", ns)
    denied = client.CoreV1Api(client_for(kube_apiserver, token))
    rc = rollout_main(args_for(ns, candidate=policies["v2"]), denied)
    err = capsys.readouterr().err
    assert rc == 1 and "forbidden to get" in err and "configmaps" in err
    with pytest.raises(RolloutError, match="forbidden"):
        rollback(denied, ref)
    # Nothing changed.
    cm = read_cm(core_v1, ns)
    assert base64.b64decode(cm.binary_data[KEY]) == policies["v1"].read_bytes()
