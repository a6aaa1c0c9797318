"""The cluster trainer: smoke runs of both algorithms, imitation, export parity, evaluation."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

import onnx
import torch

from ladts_policy.baselines import RESIDENCY_AMORTISE, RESIDENCY_EVICT, residency_cost
from ladts_policy.cli import main
from ladts_policy.evaluate import episode_seed
from ladts_policy.onnx_eval import load_policy_session
from ladts_policy.policy_contract import INPUTS
from ladts_policy.sim.config.scenario import load_scenario
from ladts_policy.sim.dynamics.cluster import ClusterSimulator
from ladts_policy.train.cluster_buffer import ClusterReplay
from ladts_policy.train.cluster_distribution import (
    DistributionConfig,
    generate_mapping,
    generate_scenario,
    scenario_yaml,
)
from ladts_policy.train.cluster_export import example_inputs, load_cluster_checkpoint
from ladts_policy.train.cluster_imitation import Imitation, actor_probs, agreement
from ladts_policy.train.cluster_lanes import ClusterLanes
from ladts_policy.train.cluster_networks import ClusterActorConfig, ClusterDiffusionActor
from ladts_policy.train.cluster_trainer import _sample

TINY = ["--bc-decisions", "160", "--bc-updates", "20", "--sac-decisions", "160",
        "--updates-per-step", "1", "--critic-warmup", "5", "--validate-every", "160",
        "--validation-clusters", "1", "--buffer-size", "400", "--max-nodes", "10",
        "--lanes", "4", "--hidden", "16", "--horizon-s", "120",
        "--validation-horizon-s", "60"]


@pytest.mark.parametrize(("algo", "imitate"), [("lad-ts", "residency-greedy"),
                                               ("lad-ts", "none"),
                                               ("d2sac", "residency-greedy"),
                                               ("d2sac", "none")])
def test_train_export_and_evaluate(tmp_path, capsys, algo, imitate):
    out = tmp_path / "run"
    assert main(["train", "--scenario", "k8s-edge", "--algo", algo, "--imitate", imitate,
                 "--seed", "3", "--no-progress", "--out", str(out), *TINY]) == 0
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert [r["phase"] for r in rows][-1] == "end"
    assert ("bc" in {r["phase"] for r in rows}) == (imitate != "none")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["decisions"] == (320 if imitate != "none" else 160)
    assert summary["best_val_ratio"] == min(float(r["val_ratio"]) for r in rows)
    ckpt = load_cluster_checkpoint(out / "final.pt")
    assert ckpt.training_seed == 3 and algo in ckpt.policy_version
    # the feature normalisation was fitted (not the identity) and is part of the export
    assert not torch.all(ckpt.actor.norm.node_scale == 1.0)
    onnx_path = tmp_path / "p.onnx"
    assert main(["export", str(out / "final.pt"), "--out", str(onnx_path)]) == 0
    session, info = load_policy_session(onnx_path)
    assert info.training_seed == 3
    # the metadata says the recipe: the command (non-default options included) that trained it
    meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    recipe = meta["ladts.training_recipe"]
    assert recipe.startswith(f"ladts train --scenario k8s-edge --algo {algo} --imitate "
                             f"{imitate} --seed 3 "), recipe
    for option in ("--lanes 4", "--hidden 16", "--horizon-s 120.0", "--max-nodes 10"):
        assert option in recipe, (option, recipe)
    assert recipe.endswith("(training distribution cluster-distribution/2)"), recipe
    gen = torch.Generator().manual_seed(0)
    feeds = {s.name: t.numpy() for s, t in zip(
        INPUTS, example_inputs(ckpt.actor.cfg, batch=3, nodes=13, generator=gen), strict=True)}
    probs, latent = session.run(["action_probs", "latent"], feeds)
    with torch.no_grad():
        t_probs, t_latent = ckpt.actor(*[torch.from_numpy(feeds[s.name]) for s in INPUTS])
    assert np.abs(probs - t_probs.numpy()).max() <= 1e-5
    assert np.abs(latent - t_latent.numpy()).max() <= 1e-5
    if algo == "d2sac" and imitate == "none":
        return
    # ladts evaluate takes the checkpoint (argmax, latent memory) beside the heuristics
    small = tmp_path / "small.yaml"
    small.write_text(scenario_yaml(generate_mapping(load_scenario("k8s-edge").cluster, 1, 0,
                                                    DistributionConfig(max_nodes=10,
                                                                       horizon_s=60.0))))
    capsys.readouterr()
    assert main(["evaluate", "--scenario", str(small), "--seeds", "10000",
                 "--policies", f"greedy,{out / 'final.pt'},{onnx_path}", "--no-progress",
                 "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    results = report["policies"]
    for name in (str(out / "final.pt"), str(onnx_path)):
        assert np.isfinite(results[name]["mean_delay_s"]) and results[name]["mean_delay_s"] > 0
    capsys.readouterr()
    # @sample is the paper checkpoints' option; a cluster checkpoint refuses it, not ignores it
    assert main(["evaluate", "--scenario", str(small), "--seeds", "10000",
                 "--policies", f"{out / 'final.pt'}@sample", "--no-progress"]) == 2
    assert "applies to paper checkpoints only" in capsys.readouterr().err


def test_cluster_only_and_paper_only_options_are_refused(tmp_path, capsys):
    cases = [(["--scenario", "paper", "--imitate", "none"], "k8s-edge scenarios only"),
             (["--scenario", "k8s-edge", "--episodes", "3"], "paper-kind scenarios only"),
             (["--scenario", "k8s-edge", "--algo", "dqn"], "lad-ts, d2sac")]
    for args, message in cases:
        assert main(["train", *args, "--out", str(tmp_path / "x")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def _teacher_dataset(seed: int, decisions: int) -> ClusterReplay:
    """Residency-greedy decisions on random clusters of 6-12 nodes."""
    base = load_scenario("k8s-edge").cluster
    dist = DistributionConfig(max_nodes=12, horizon_s=300.0)

    def source(index: int):
        return generate_scenario(base, seed, index, dist).cluster, episode_seed(seed, index)

    lanes = ClusterLanes(source, lanes=4, node_slots=12, latent_dim=4, gaussian_start=False,
                         seed=seed)
    replay = ClusterReplay(decisions, 12, 4, torch.device("cpu"))
    obs = lanes.observe()
    for _ in range(decisions // 4):
        delay, done = lanes.step(obs.teacher_E)
        nxt = lanes.observe()
        replay.add(obs, obs.teacher_E, -delay, done, nxt)
        obs = nxt
    return replay


def test_imitation_drives_agreement_with_residency_greedy():
    """Cloning on a small fixed dataset: argmax agreement on other clusters rises above 0.6."""
    torch.manual_seed(0)
    train, held = _teacher_dataset(1, 800), _teacher_dataset(2, 400)
    actor = ClusterDiffusionActor(ClusterActorConfig(hidden=32))
    rng = np.random.default_rng(0)
    everything = held.sample(400, rng)

    def held_agreement() -> float:
        with torch.no_grad():
            probs, _ = actor_probs(actor, everything.state)
        return agreement(probs, everything.teacher)

    # the teacher is not trivially "the only valid node"
    assert float((everything.state.mask.sum(1) > 1).float().mean()) > 0.9
    before = held_agreement()
    bc = Imitation(actor, lr=3e-3)
    for _ in range(400):
        batch = train.sample(64, rng)
        bc.update(batch.state, batch.teacher)
    after = held_agreement()
    print(f"argmax agreement with residency-greedy: {before:.2f} -> {after:.2f}")
    assert after > 0.6 and after > before + 0.25


def test_lanes_keep_the_latent_memory_per_task_class():
    base = load_scenario("k8s-edge").cluster
    lanes = ClusterLanes(lambda i: (base, episode_seed(0, i)), lanes=2, node_slots=24,
                         latent_dim=4, gaussian_start=False, seed=0)
    obs = lanes.observe()
    assert np.all(obs.start_ESL == 0.0) and obs.nodes_E.tolist() == [20, 20]
    assert not obs.mask_ES[:, 20:].any()
    key = lanes.keys[0]
    latent = np.full((2, 24, 4), 0.5, np.float32)
    lanes.remember(latent)
    assert np.all(lanes.memory[0][key] == 0.5) and lanes.memory[0][key].shape == (20, 4)
    # the teacher's node minimises the residency-greedy cost over the simulator's mask
    sim = ClusterSimulator(base, num_envs=1)
    view = sim.reset([episode_seed(0, 0)])
    cost = np.where(view.node_mask_EN[0], residency_cost(view, RESIDENCY_AMORTISE,
                                                         RESIDENCY_EVICT)[0], np.inf)
    assert cost[int(obs.teacher_E[0])] == cost.min()
    assert obs.mask_ES[0, int(obs.teacher_E[0])]


def test_checkpoint_files_of_a_run(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--scenario", "k8s-edge", "--seed", "5", "--no-progress",
                 "--out", str(out), *TINY]) == 0
    for name in ("final.pt", "last.pt", "bc.pt"):
        assert load_cluster_checkpoint(out / name).actor.cfg.hidden == 16
    # the two silent fallbacks are counted: cumulative in log.csv, totals in summary.json
    summary = json.loads((out / "summary.json").read_text())
    rows = list(csv.DictReader((out / "log.csv").open()))
    for key in ("actor_fallbacks", "teacher_fallbacks"):
        assert int(rows[-1][key]) == summary[key] >= 0
        assert [int(r[key]) for r in rows] == sorted(int(r[key]) for r in rows)
    assert main(["train", "--scenario", "k8s-edge", "--out", str(out), *TINY]) == 2



def test_same_seed_same_policy(tmp_path):
    """A run is reproducible from its command and seed (what the bundled policy relies on)."""
    states = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert main(["train", "--scenario", "k8s-edge", "--seed", "4", "--no-progress",
                     "--out", str(out), *TINY]) == 0
        states.append(load_cluster_checkpoint(out / "final.pt").actor.state_dict())
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key


def test_the_two_trainer_fallbacks_are_counted(monkeypatch):
    base = load_scenario("k8s-edge").cluster
    lanes = ClusterLanes(lambda i: (base, episode_seed(0, i)), lanes=2, node_slots=24,
                         latent_dim=4, gaussian_start=False, seed=0)
    obs = lanes.observe()
    assert lanes.teacher_fallbacks == 0
    # a teacher pick outside the mask (here a padding slot) -> the first allowed node, counted
    monkeypatch.setattr(lanes.teachers[1], "act", lambda view: np.array([23]))
    obs = lanes.observe()
    assert lanes.teacher_fallbacks == 1
    assert obs.teacher_E[1] == int(np.flatnonzero(obs.mask_ES[1])[0])
    # NaN actor probabilities -> the teacher's node, counted; a finite row samples an allowed node
    probs = np.full((2, 24), 1.0 / 20, np.float32)
    probs[0, :] = np.nan
    actions, fallbacks = _sample(probs, obs, np.random.default_rng(0))
    assert fallbacks == 1 and actions[0] == obs.teacher_E[0]
    assert obs.mask_ES[1, actions[1]]
    _, none = _sample(np.full((2, 24), 1.0 / 20, np.float32), obs, np.random.default_rng(0))
    assert none == 0
