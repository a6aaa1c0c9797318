"""The cluster actor's ONNX export: contract, parity with torch, mask, serving and evaluation."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("torch")
pytest.importorskip("onnx")

import onnx
import torch

from ladts_policy.cli import main
from ladts_policy.evaluate import evaluate
from ladts_policy.features import encode
from ladts_policy.onnx_eval import OnnxEvalPolicy, load_policy_session
from ladts_policy.policy_contract import INPUTS, METADATA_KEYS
from ladts_policy.sim.config.scenario import load_scenario
from ladts_policy.train.checkpoint import CheckpointError, save
from ladts_policy.train.cluster_export import (
    example_inputs,
    load_cluster_checkpoint,
    save_cluster_checkpoint,
    torch_forward,
    untrained_checkpoint,
)
from ladts_policy.train.cluster_networks import ClusterTwinQ

TOL = 1e-5
PRESET = Path(__file__).parents[2] / "policy/src/ladts_policy/scenarios/k8s-edge.yaml"
# Node groups of the k8s-edge preset scaled to 2 and 97 nodes (20 is the preset itself).
GROUP_COUNTS = {2: [1, 0, 0, 1, 0, 0], 20: None, 97: [20, 29, 24, 10, 9, 5]}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "actor.pt"
    save_cluster_checkpoint(path, untrained_checkpoint(7))
    return path


@pytest.fixture(scope="module")
def exported(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "policy.onnx"
    assert main(["export", str(checkpoint), "--out", str(out),
                 "--created", "2026-01-01T00:00:00Z"]) == 0
    return out


def scenario(tmp_path_factory: pytest.TempPathFactory, nodes: int) -> Path:
    doc = yaml.safe_load(PRESET.read_text())
    doc["name"] = f"k8s-edge-{nodes}"
    doc["cluster"]["horizon_s"] = 300
    doc["cluster"]["arrivals"]["rate_per_s"] = 1.5 * max(nodes, 2) / 20
    counts = GROUP_COUNTS[nodes]
    if counts is not None:
        groups = [dict(g, count=c) for g, c in zip(doc["cluster"]["nodes"], counts, strict=True)]
        doc["cluster"]["nodes"] = [g for g in groups if g["count"]]
    path = tmp_path_factory.mktemp("scn") / f"n{nodes}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def max_diff(session, actor, feeds) -> tuple[float, np.ndarray, np.ndarray]:
    probs_t, latent_t = torch_forward(actor, feeds)
    probs_o, latent_o = session.run(["action_probs", "latent"], feeds)
    diff = max(np.abs(probs_o - probs_t.numpy()).max(), np.abs(latent_o - latent_t.numpy()).max())
    return float(diff), probs_o, latent_o


def test_export_satisfies_the_contract(exported, checkpoint):
    model = onnx.load(str(exported))
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    assert set(METADATA_KEYS) <= set(meta)
    _, info = load_policy_session(exported)  # validate_policy on the session's signature
    ckpt = load_cluster_checkpoint(checkpoint)
    assert info.diffusion_steps == ckpt.actor.cfg.steps
    assert info.latent_dim == ckpt.actor.cfg.latent_dim
    assert (info.policy_version, info.training_seed, info.created) == (
        "untrained-seed7", 7, "2026-01-01T00:00:00Z")
    # Node and batch axes are symbolic in the graph itself.
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
            for i in model.graph.input}
    assert dims["node_features"][:2] == ["B", "N"] and dims["noise"][2] == "N"


@pytest.mark.parametrize("nodes", [2, 20, 97, 500])
def test_parity_on_random_inputs_and_mask(exported, checkpoint, nodes):
    session, _ = load_policy_session(exported)
    actor = load_cluster_checkpoint(checkpoint).actor
    gen = torch.Generator().manual_seed(nodes)
    feeds = {s.name: t.numpy() for s, t in
             zip(INPUTS, example_inputs(actor.cfg, batch=3, nodes=nodes, generator=gen),
                 strict=True)}
    feeds["node_mask"][1, 1:] = False  # one row with a single valid node
    diff, probs, latent = max_diff(session, actor, feeds)
    print(f"random N={nodes}: max abs diff {diff:.2e}")
    assert diff <= TOL
    mask = feeds["node_mask"]
    assert np.all(probs[~mask] == 0.0)
    assert probs[1, 0] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert latent.shape == feeds["latent_start"].shape


def test_the_noise_and_the_warm_start_drive_the_chain(exported):
    session, _ = load_policy_session(exported)
    actor = untrained_checkpoint(7).actor
    gen = torch.Generator().manual_seed(1)
    feeds = {s.name: t.numpy() for s, t in
             zip(INPUTS, example_inputs(actor.cfg, batch=1, nodes=6, generator=gen),
                 strict=True)}
    base = session.run(["latent"], feeds)[0]
    for name in ("noise", "latent_start"):
        changed = dict(feeds, **{name: feeds[name] + 1.0})
        assert np.abs(session.run(["latent"], changed)[0] - base).max() > 1e-3, name


@pytest.mark.parametrize("nodes", [2, 20, 97])
def test_parity_on_simulator_states(exported, checkpoint, nodes, tmp_path_factory):
    """Real states: a short k8s-edge run, snapshot -> features.encode, warm start carried."""
    spec = load_scenario(str(scenario(tmp_path_factory, nodes)))
    sim = spec.make_simulator(1)
    assert sim.num_nodes == nodes
    session, info = load_policy_session(exported)
    actor = load_cluster_checkpoint(checkpoint).actor
    rng = np.random.default_rng(nodes)
    view = sim.reset([10_000 + nodes])
    latent = np.zeros((1, nodes, info.latent_dim), np.float32)
    worst, decisions = 0.0, 0
    while view is not None and decisions < 25:
        snap, task = sim.snapshot(0)
        feats = encode(snap, task, node_slots=nodes)
        mask = feats.node_mask_S & view.node_mask_EN[0]
        feeds = {
            "node_features": feats.node_rows_SF[None], "node_mask": mask[None],
            "task_features": feats.task_T[None], "global_features": feats.global_G[None],
            "latent_start": latent,
            "noise": rng.standard_normal((1, info.diffusion_steps, nodes, info.latent_dim),
                                         dtype=np.float32),
        }
        diff, probs, latent = max_diff(session, actor, feeds)
        worst = max(worst, diff)
        assert np.all(probs[0][~mask] == 0.0)
        action = int(np.argmax(np.where(mask, probs[0], -np.inf)))
        _, view = sim.step(np.array([action]))
        decisions += 1
    print(f"simulator N={nodes}: {decisions} decisions, max abs diff {worst:.2e}")
    assert decisions == 25 and worst <= TOL


def test_operator_scorer_runs_the_export(exported, checkpoint, tmp_path_factory):
    """The extender's scorer (same noise seed, zero warm start) gives torch's probabilities."""
    from ladts_operator.onnx_policy import OnnxScorer

    spec = load_scenario(str(scenario(tmp_path_factory, 20)))
    sim = spec.make_simulator(1)
    sim.reset([123])
    snap, task = sim.snapshot(0)
    feats = encode(snap, task, node_slots=sim.num_nodes)
    scorer = OnnxScorer(exported, noise_seed=3)
    scored = scorer.score(snap, task, feats, decision=4)
    n, info = sim.num_nodes, scorer.info
    noise = np.random.default_rng(3 + 4).standard_normal(
        (1, info.diffusion_steps, n, info.latent_dim), dtype=np.float32)
    feeds = {"node_features": feats.node_rows_SF[None], "node_mask": feats.node_mask_S[None],
             "task_features": feats.task_T[None], "global_features": feats.global_G[None],
             "latent_start": np.zeros((1, n, info.latent_dim), np.float32), "noise": noise}
    probs_t, _ = torch_forward(load_cluster_checkpoint(checkpoint).actor, feeds)
    assert scored.scorer == "onnx" and scored.chosen is not None
    np.testing.assert_allclose(scored.preference_N, probs_t.numpy()[0], atol=TOL)


def test_evaluate_runs_the_export(exported, tmp_path_factory, capsys):
    path = scenario(tmp_path_factory, 20)
    report = evaluate(str(path), policies=["greedy", str(exported)], seeds=[10_000],
                      show_progress=False)
    r = report.policies
    assert r[str(exported)].tasks == r["greedy"].tasks > 0
    assert OnnxEvalPolicy(exported).version == "untrained-seed7"
    rc = main(["evaluate", "--scenario", str(path), "--policies", f"greedy,{exported}",
               "--seeds", "10000", "--no-progress"])
    assert rc == 0 and str(exported) in capsys.readouterr().out


def test_checkpoint_round_trip_and_clear_errors(tmp_path, capsys):
    ckpt = untrained_checkpoint(3)
    path = tmp_path / "a.pt"
    save_cluster_checkpoint(path, ckpt)
    loaded = load_cluster_checkpoint(path)
    for (k, v), (k2, v2) in zip(ckpt.actor.state_dict().items(),
                                loaded.actor.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
    assert (loaded.policy_version, loaded.training_seed) == ("untrained-seed3", 3)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_cluster_checkpoint(corrupt)
    paper = tmp_path / "paper.pt"
    save(paper, {"format": "ladts-policy"})
    with pytest.raises(CheckpointError, match="expected a ladts-cluster-actor file"):
        load_cluster_checkpoint(paper)
    bad_weights = tmp_path / "bad.pt"
    payload = torch.load(path, weights_only=True)
    payload["config"] = dict(payload["config"], hidden=32)
    save(bad_weights, copy.deepcopy(payload))
    with pytest.raises(CheckpointError, match="not a usable"):
        load_cluster_checkpoint(bad_weights)
    assert main(["export", str(paper), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "expected a ladts-cluster-actor file" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_twin_q_is_per_node_and_node_count_agnostic():
    cfg = untrained_checkpoint(0).actor.cfg
    torch.manual_seed(0)
    critic = ClusterTwinQ(cfg)
    for nodes in (2, 50):
        args = example_inputs(cfg, batch=4, nodes=nodes)
        q = critic(*args[:4])
        assert q.shape == (2, 4, nodes)
        assert torch.all(q[:, ~args[1]] == 0)
        # Permuting the nodes permutes Q (a set encoder: no node order).
        perm = torch.randperm(nodes)
        q_perm = critic(args[0][:, perm], args[1][:, perm], args[2], args[3])
        torch.testing.assert_close(q_perm, q[:, :, perm], atol=1e-5, rtol=1e-5)
