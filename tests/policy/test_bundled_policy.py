"""The bundled default policy: where it lives, ``lad-ts`` in evaluation, loading without torch.

Every test but the last runs on an export of an untrained cluster actor standing in for the
bundled file (tests/conftest.py), so they hold whether or not this checkout has the trained
file. ``test_the_shipped_bundled_policy_loads_and_scores_without_torch`` checks the real file
``ladts_policy/bundled/lad-ts.onnx`` and fails, naming the regenerating command, when it is
absent: the file is part of the product.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ladts_policy
from ladts_policy import bundled
from ladts_policy.bundled import (
    BUNDLED_NAME,
    REGENERATE_COMMAND,
    BundledPolicyMissing,
    bundled_policy_path,
)
from ladts_policy.cli import main
from ladts_policy.evaluate import default_policies, evaluate

REPO = Path(__file__).resolve().parents[2]

def test_the_bundled_file_is_package_data_of_ladts_policy():
    location = bundled.bundled_policy_file()
    assert location == Path(ladts_policy.__file__).resolve().parent / "bundled" / "lad-ts.onnx"
    # Wheels and the runtime image carry it: listed as a wheel artifact, not git-ignored.
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"policy/src/ladts_policy/bundled/*.onnx"' in pyproject
    ignored = subprocess.run(["git", "check-ignore", "-q", str(location)], cwd=REPO,
                             check=False).returncode
    assert ignored == 1, "ladts_policy/bundled/lad-ts.onnx must not be git-ignored"


def test_missing_bundled_file_is_a_clear_error(bundled_missing, tiny, capsys):
    with pytest.raises(BundledPolicyMissing, match=REGENERATE_COMMAND):
        bundled_policy_path()
    assert main(["evaluate", "--scenario", str(tiny), "--policies", "greedy,lad-ts",
                 "--seeds", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(bundled_missing) in err and REGENERATE_COMMAND in err


def test_lad_ts_is_a_default_policy_on_cluster_scenarios_only():
    assert BUNDLED_NAME in default_policies("k8s-edge")
    assert BUNDLED_NAME not in default_policies("paper")  # paper servers have no feature rows


def test_lad_ts_on_paper_is_refused(bundled_export):
    with pytest.raises(ValueError, match="k8s-edge scenarios only"):
        evaluate("paper", policies=["greedy", BUNDLED_NAME], seeds=[1], show_progress=False)


def test_evaluate_without_policies_lists_lad_ts(bundled_export, tiny, tmp_path):
    out = tmp_path / "r.json"
    assert main(["evaluate", "--scenario", str(tiny), "--seeds", "10000-10001", "--json",
                 str(out), "--no-progress"]) == 0
    report = json.loads(out.read_text())["policies"]
    assert BUNDLED_NAME in report and "greedy" in report
    lad = report[BUNDLED_NAME]
    # Every arrival was placed by the bundled policy (the simulator refuses masked choices).
    assert lad["tasks"] == report["greedy"]["tasks"] > 0
    assert math.isfinite(lad["mean_delay_s"]) and lad["vs_greedy"] > 0


def _child(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where ``import torch`` fails."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "policy/src"), str(REPO / "operator/src"), env.get("PYTHONPATH", "")])
    prelude = "import sys\nsys.modules['torch'] = None  # import torch raises ImportError\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code), *args],
                          env=env, capture_output=True, text=True, timeout=300, check=False)


NO_TORCH_SCORING = """
    import json
    from pathlib import Path
    import ladts_policy.bundled as bundled
    if len(sys.argv) > 1:  # stand-in export; no argument: the real bundled file
        bundled.bundled_policy_file = lambda: Path(sys.argv[1])
    try:
        import torch  # noqa: F401
        raise SystemExit("torch is importable in the child")
    except ImportError:
        pass
    from ladts_operator.objects import parse_node
    from ladts_operator.runtime import build_runtime
    from ladts_operator.settings import ServeSettings
    from ladts_policy.evaluate import evaluate
    from ladts_policy.onnx_eval import check_policy_file
    from ladts_policy.sim.config.cluster_schema import builtin_gpu_profiles

    info = check_policy_file(bundled.bundled_policy_path())
    report = evaluate("k8s-edge", policies=["greedy", "lad-ts"], seeds=[10000],
                      show_progress=False)
    rt = build_runtime(ServeSettings(), profiles=builtin_gpu_profiles())
    for i, profile in enumerate(("rtx-4090", "orin-nano-8", "a10")):
        rt.state.upsert_node(parse_node({
            "metadata": {"name": f"n{i}", "labels": {"ladts.io/gpu-profile": profile},
                         "annotations": {}},
            "spec": {}, "status": {"conditions": [{"type": "Ready", "status": "True"}],
                                   "allocatable": {"cpu": "8", "memory": "32Gi"}}}))
    rt.state.synced = True
    body = json.dumps({"Pod": {"metadata": {"name": "p", "namespace": "d", "uid": "u1",
                                            "annotations": {"ladts.io/model": "sd15",
                                                            "ladts.io/steps": "20"}},
                               "spec": {"containers": [{"name": "c"}]}},
                       "NodeNames": ["n0", "n1", "n2"]}).encode()
    scores = rt.extender.handle("prioritize", body).body
    decision = next(iter(rt.extender.recent.values())).scored
    print(json.dumps({
        "version": info.policy_version, "scenario": info.training_scenario,
        "tasks": report.policies["lad-ts"].tasks, "greedy_tasks": report.policies["greedy"].tasks,
        "vs_greedy": report.policies["lad-ts"].vs_greedy, "ready": rt.ready()[1],
        "scorer": decision.scorer, "hosts": sorted(h["Host"] for h in scores),
        "torch_loaded": sys.modules.get("torch") is not None,
    }))
"""


def _check_child(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["torch_loaded"] is False
    assert out["tasks"] == out["greedy_tasks"] > 0  # every arrival placed by lad-ts
    assert out["scorer"] == "onnx" and out["hosts"] == ["n0", "n1", "n2"]
    assert "from the bundled policy" in str(out["ready"])
    return out


def test_bundled_policy_loads_and_scores_without_torch(actor_export):
    out = _check_child(_child(NO_TORCH_SCORING, str(actor_export)))
    assert out["version"] == "test-export-seed0"


def test_the_shipped_bundled_policy_loads_and_scores_without_torch():
    """Needs the trained file (committed by the cluster trainer's branch, issue 10)."""
    try:
        path = bundled_policy_path()
    except BundledPolicyMissing as exc:
        pytest.fail(f"the bundled policy is missing: {exc}", pytrace=False)
    assert path.stat().st_size < 5 * 1024 * 1024, "the bundled policy must stay a few MB"
    out = _check_child(_child(NO_TORCH_SCORING))
    assert out["scenario"] != "none (untrained)", "the bundled policy is an untrained export"


def test_the_shipped_bundled_policy_states_the_recipe_make_bundled_policy_runs():
    """``ladts.training_recipe`` of the shipped file is the Makefile's ``bundled-policy``
    command (``BUNDLED_TRAIN_ARGS``) on the current training distribution."""
    onnx = pytest.importorskip("onnx")
    from ladts_policy.train.cluster_distribution import DISTRIBUTION_VERSION

    makefile = (REPO / "Makefile").read_text().splitlines()
    args = next(line.split("?=", 1)[1].strip() for line in makefile
                if line.startswith("BUNDLED_TRAIN_ARGS"))
    created = next(line.split("?=", 1)[1].strip() for line in makefile
                   if line.startswith("BUNDLED_CREATED"))
    meta = {p.key: p.value for p in onnx.load(str(bundled_policy_path())).metadata_props}
    assert meta["ladts.training_recipe"] == (
        f"ladts train {args} (training distribution {DISTRIBUTION_VERSION})")
    assert meta["ladts.created"] == created
