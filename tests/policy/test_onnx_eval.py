"""The ONNX evaluation policy: contract check, the operator's feature path, the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from ladts_policy.cli import main
from ladts_policy.evaluate import evaluate
from ladts_policy.features import encode
from ladts_policy.onnx_eval import OnnxEvalPolicy, PolicyFileError, load_policy_session
from ladts_policy.sim.config.scenario import load_scenario
from ladts_policy.untrained_policy import write_untrained_policy

pytest.importorskip("onnx")

SEEDS = [10_000, 10_001, 10_002]


@pytest.fixture(scope="module")
def short_scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The k8s-edge preset with a 5-minute horizon and a busier arrival rate."""
    preset = Path(__file__).parents[2] / "policy/src/ladts_policy/scenarios/k8s-edge.yaml"
    doc = yaml.safe_load(preset.read_text())
    doc["name"] = "k8s-edge-short"
    doc["cluster"]["horizon_s"] = 300
    doc["cluster"]["arrivals"]["rate_per_s"] = 1.5
    path = tmp_path_factory.mktemp("scn") / "short.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A delay-seeking untrained policy and its opposite (prefers the slowest node)."""
    d = tmp_path_factory.mktemp("onnx")
    return {
        "good": write_untrained_policy(d / "good.onnx", policy_version="good-1"),
        "bad": write_untrained_policy(d / "bad.onnx", policy_version="bad-1",
                                      weights={"est_delay_s": 4.0, "queue_len": 0.5}),
    }


def test_policy_runs_on_the_feature_path_and_ranks_as_its_weights_say(short_scenario, policies):
    report = evaluate(str(short_scenario),
                      policies=["greedy", "random", str(policies["good"]), str(policies["bad"])],
                      seeds=SEEDS, show_progress=False)
    r = report.policies
    good, bad = r[str(policies["good"])], r[str(policies["bad"])]
    # Every policy made every decision (the simulator raises on a masked choice).
    assert good.tasks == bad.tasks == r["greedy"].tasks > 0
    # The delay-seeking graph sits near greedy; the delay-maximising one is far worse than
    # random: the probabilities the graph outputs drive the choice, over the right nodes.
    assert good.mean_delay_s < 1.5 * r["greedy"].mean_delay_s
    assert bad.mean_delay_s > r["random"].mean_delay_s > good.mean_delay_s


def test_same_seeds_same_result(short_scenario, policies):
    runs = [evaluate(str(short_scenario), policies=[str(policies["good"])], seeds=SEEDS[:2],
                     show_progress=False).policies[str(policies["good"])].episode_means_s
            for _ in range(2)]
    assert runs[0] == runs[1]


def test_decision_equals_the_graph_argmax_on_the_simulator_snapshot(short_scenario, policies):
    """One decision by hand: snapshot -> encode -> session, as the operator does."""
    spec = load_scenario(str(short_scenario))
    sim = spec.make_simulator(1)
    policy = OnnxEvalPolicy(policies["good"])
    policy.attach(sim)
    policy.reset(num_envs=1, num_nodes=sim.num_nodes, seed=5)
    view = sim.reset([123])
    action = int(policy.act(view)[0])
    snap, task = sim.snapshot(0)
    feats = encode(snap, task, node_slots=sim.num_nodes)
    session, info = load_policy_session(policies["good"])
    noise = np.random.default_rng(5).standard_normal(
        (1, info.diffusion_steps, sim.num_nodes, info.latent_dim), dtype=np.float32)
    mask = feats.node_mask_S & view.node_mask_EN[0]
    probs = session.run(["action_probs"], {
        "node_features": feats.node_rows_SF[None], "node_mask": mask[None],
        "task_features": feats.task_T[None], "global_features": feats.global_G[None],
        "latent_start": np.zeros((1, sim.num_nodes, info.latent_dim), np.float32),
        "noise": noise})[0][0]
    assert action == int(np.argmax(np.where(mask, probs, -np.inf)))
    assert view.node_mask_EN[0, action]


def test_off_contract_and_missing_files_are_clear_errors(tmp_path, policies):
    with pytest.raises(PolicyFileError, match="no such policy file"):
        OnnxEvalPolicy(tmp_path / "absent.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx")
    with pytest.raises(PolicyFileError, match="not a loadable ONNX model"):
        OnnxEvalPolicy(junk)
    stale = write_untrained_policy(tmp_path / "stale.onnx",
                                   extra_metadata={"ladts.feature_spec_hash": "0" * 64})
    with pytest.raises(PolicyFileError, match="off-contract policy"):
        OnnxEvalPolicy(stale)


def test_paper_scenario_is_refused(policies):
    with pytest.raises(ValueError, match="k8s-edge"):
        evaluate("paper", policies=[str(policies["good"])], seeds=[10_000],
                 show_progress=False)


def test_cli_evaluate_takes_a_policy_file(short_scenario, policies, capsys):
    rc = main(["evaluate", "--scenario", str(short_scenario), "--policies",
               f"greedy,{policies['good']}", "--seeds", "10000-10001", "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert str(policies["good"]) in out and "greedy" in out
    rc = main(["evaluate", "--scenario", str(short_scenario), "--policies",
               "greedy,/nonexistent/p.onnx", "--no-progress"])
    assert rc == 2
    assert "no such policy file" in capsys.readouterr().err
