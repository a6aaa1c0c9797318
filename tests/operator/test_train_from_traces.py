"""``ladts train --from-traces``: calibrate the extender's trace, then train on that cluster."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from tests.operator.test_calibrate_trace import record_trace

from ladts_policy.cli import main
from ladts_policy.sim.config.scenario import load_scenario
from ladts_policy.train.cluster_export import load_cluster_checkpoint

TINY = ["--bc-decisions", "80", "--bc-updates", "10", "--sac-decisions", "80",
        "--updates-per-step", "1", "--critic-warmup", "5", "--validate-every", "80",
        "--validation-clusters", "1", "--buffer-size", "200", "--lanes", "4", "--hidden", "16",
        "--validation-horizon-s", "60"]


def test_train_from_traces_writes_the_calibrated_scenario_and_trains_on_it(tmp_path, capsys):
    trace = tmp_path / "trace.jsonl"
    record_trace(trace, seed=5, duration_s=300.0, rate=0.5)
    out = tmp_path / "run"
    assert main(["train", "--from-traces", str(trace), "--seed", "2", "--no-progress",
                 "--out", str(out), *TINY]) == 0
    scenario_path = out / "scenario.yaml"
    written = load_scenario(str(scenario_path))  # a valid, readable scenario file
    # the same document `ladts calibrate` writes from that trace
    reference = tmp_path / "cal.yaml"
    assert main(["calibrate", str(trace), "--out", str(reference)]) == 0
    assert written.cluster == load_scenario(str(reference)).cluster
    assert written.cluster.num_nodes == 20  # the offline cluster is the preset's 20 nodes
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["scenario"] == str(scenario_path)
    assert summary["config"]["distribution"] == "scenario"
    ckpt = load_cluster_checkpoint(out / "final.pt")
    assert ckpt.training_scenario == f"{scenario_path.parent.name}/scenario.yaml"  # no abs path
    capsys.readouterr()
    # a paper-kind base cannot be calibrated against
    assert main(["train", "--from-traces", str(trace), "--scenario", "paper",
                 "--out", str(tmp_path / "x")]) == 2
    assert "k8s-edge base scenario" in capsys.readouterr().err
