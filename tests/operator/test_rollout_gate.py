"""The rollout gate: contract check and paired comparison on held-out seeds (no cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ladts_operator.rollout import GATE_POLICY_SEED, RolloutError, evaluate_gate, paired_ratio
from ladts_policy.evaluate import evaluate
from ladts_policy.onnx_eval import PolicyFileError
from ladts_policy.untrained_policy import write_untrained_policy

pytest.importorskip("onnx")
SEEDS = [10_000, 10_001, 10_002]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> str:
    preset = Path(__file__).parents[2] / "policy/src/ladts_policy/scenarios/k8s-edge.yaml"
    doc = yaml.safe_load(preset.read_text())
    doc["cluster"]["horizon_s"] = 300
    doc["cluster"]["arrivals"]["rate_per_s"] = 1.5
    path = tmp_path_factory.mktemp("scn") / "short.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("p")
    return {"good": write_untrained_policy(d / "good.onnx", policy_version="good-1"),
            "good2": write_untrained_policy(d / "good2.onnx", policy_version="good-2",
                                            weights={"resident": 0.6}),
            "bad": write_untrained_policy(d / "bad.onnx", policy_version="bad-1",
                                          weights={"est_delay_s": 4.0, "queue_len": 0.5})}


def test_paired_ratio_matches_the_definition():
    mean, (_lo, hi) = paired_ratio([2.0, 3.0, 4.0], [2.0, 2.0, 2.0])
    # Ratio of means 3 / 2; residuals x - 1.5 g = (-1, 0, 1), sd 1; t(2) = 4.303;
    # half = 4.303 * 1 / (sqrt(3) * mean(g) = 2).
    assert mean == pytest.approx(1.5)
    assert hi - mean == pytest.approx(4.303 / (3 ** 0.5 * 2.0), rel=1e-4)
    with pytest.raises(RolloutError):
        paired_ratio([1.0], [1.0, 2.0])


def test_worse_candidate_is_refused_and_ratio_agrees_with_evaluate(scenario, files):
    running = files["good"].read_bytes()
    gate = evaluate_gate(files["bad"], running, scenario=scenario, seeds=SEEDS)
    assert not gate.accepted
    assert gate.running == "good-1" and gate.candidate == "bad-1"
    # Independent: the same evaluation run directly gives the same per-episode means.
    report = evaluate(scenario, policies=[str(files["good"]), str(files["bad"])], seeds=SEEDS,
                      show_progress=False, common_policy_seed=GATE_POLICY_SEED)
    good = report.policies[str(files["good"])].episode_means_s
    bad = report.policies[str(files["bad"])].episode_means_s
    assert gate.ratio_mean == pytest.approx(sum(bad) / sum(good))
    assert gate.ratio_mean > 1.5
    assert "REFUSED" in gate.summary()


def test_equal_candidate_passes_and_heuristic_baseline_is_used_without_a_policy(scenario, files):
    gate = evaluate_gate(files["good2"], files["good"].read_bytes(), scenario=scenario,
                         seeds=SEEDS)
    assert gate.accepted, gate.summary()
    # Paired with common random numbers: the same policy from a copy of its bytes ties exactly.
    same = evaluate_gate(files["good"], files["good"].read_bytes(), scenario=scenario,
                         seeds=SEEDS)
    assert same.ratio_mean == 1.0 and same.accepted
    first = evaluate_gate(files["good"], None, scenario=scenario, seeds=SEEDS,
                          baseline="random")
    assert first.running == "random" and first.accepted


def test_off_contract_candidate_is_an_error(scenario, files, tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"nope")
    with pytest.raises(PolicyFileError, match="not a loadable ONNX model"):
        evaluate_gate(junk, None, scenario=scenario, seeds=SEEDS)
    with pytest.raises(RolloutError, match="running policy does not load"):
        evaluate_gate(files["good"], b"garbage", scenario=scenario, seeds=SEEDS)


def test_cli_checks_the_contract_before_asking_for_a_cluster(tmp_path, capsys):
    from ladts_policy.cli import main

    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"nope")
    # No kubeconfig exists for this call: the contract error comes first, exit 1.
    assert main(["rollout", str(junk), "--kubeconfig", str(tmp_path / "none")]) == 1
    assert "not a loadable ONNX model" in capsys.readouterr().err
