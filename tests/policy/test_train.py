"""Training smoke tests: every algorithm learns a few episodes end to end on a small paper
scenario, writes its files, resumes exactly, and its policy evaluates through ``ladts
evaluate``; bad input gets a clear message."""

from __future__ import annotations

import csv
import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ladts_policy.cli import main  # noqa: E402
from ladts_policy.sim.dynamics.paper import PaperConfig, PaperSimulator  # noqa: E402
from ladts_policy.train.checkpoint import CheckpointError  # noqa: E402
from ladts_policy.train.config import TrainConfig  # noqa: E402
from ladts_policy.train.eval_policy import CheckpointPolicy  # noqa: E402
from ladts_policy.train.trainer import Trainer  # noqa: E402

SMALL = textwrap.dedent("""
    kind: paper
    name: small-paper
    paper: {num_nodes: 4, num_slots: 6, max_tasks: 8}
""")


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return path


def _config(small: Path, algo: str, **kw: object) -> TrainConfig:
    base = dict(scenario=str(small), algo=algo, episodes=4, lanes=2, min_buffer=16,
                batch_size=8, buffer_size=64, device="cpu")
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["policy"]


@pytest.mark.parametrize("algo", ["lad-ts", "d2sac", "sac", "dqn"])
def test_each_algorithm_trains_and_its_policy_evaluates(small, tmp_path, algo, capsys):
    out = tmp_path / algo
    status = main(["train", "--scenario", str(small), "--algo", algo, "--episodes", "4",
                   "--lanes", "2", "--min-buffer", "16", "--batch-size", "8",
                   "--buffer-size", "64", "--out", str(out), "--no-progress"])
    assert status == 0
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert [int(r["episode"]) for r in rows] == [0, 1, 2, 3]
    assert all(math.isfinite(float(r["mean_delay_s"])) and int(r["tasks"]) > 0 for r in rows)
    # 5 decision slots x 2 lanes per round, 2 rounds; updates start once buffers fill.
    assert int(rows[-1]["updates"]) > 0
    before = _weights(out / "final.pt")
    initial = Trainer(_config(small, algo, episodes=1), tmp_path / "fresh").policy.state_dict()
    assert any(not torch.equal(before[k], initial[k]) for k in before), "weights never moved"
    json_out = tmp_path / f"{algo}.json"
    status = main(["evaluate", "--scenario", str(small), "--policies",
                   f"greedy,{out / 'final.pt'}", "--seeds", "10000-10002", "--no-progress",
                   "--json", str(json_out)])
    assert status == 0
    doc = json.loads(json_out.read_text())["policies"]
    learned = doc[str(out / "final.pt")]
    assert learned["tasks"] == doc["greedy"]["tasks"] > 0
    assert len(learned["size_quintile_mean_s"]) == 5
    assert learned["vs_greedy_ci95"][0] <= learned["vs_greedy"] * 1.5


def test_checkpoint_policy_plays_argmax_of_its_network(small, tmp_path):
    """Independent check: replay the policy's own forward pass on the simulator's state."""
    trainer = Trainer(_config(small, "sac", episodes=2), tmp_path / "run", show_progress=False)
    path = trainer.run()
    policy = CheckpointPolicy(path)
    sim = PaperSimulator(PaperConfig(num_nodes=4, num_slots=6, max_tasks=8), num_envs=2)
    policy.attach(sim)
    policy.reset(num_envs=2, num_nodes=4, seed=0)
    view = sim.reset([10000, 10001])
    raw = sim.paper_state()
    _, bs_E, _ = sim.decision_key()
    q_EN = raw[:, 2:] / (sim.constants.capacity_N * trainer.config.state_scale_s)
    x_EF = np.concatenate([raw[:, :1] / 5.0, raw[:, 1:2] / sim.constants.workload_K.max(),
                           q_EN], axis=1).astype(np.float32)
    net = trainer.policy.net.net  # MLPActor's BatchedMLP
    for env in range(2):
        logits = net(torch.from_numpy(x_EF[env])[None, None].expand(4, 1, -1).contiguous())
        assert policy.act(view)[env] == int(logits[bs_E[env], 0].argmax())


def test_extended_state_sees_the_work_already_sent_this_slot(small, tmp_path):
    """The extended agent's Q̃ features equal the simulator's own Q̃ at each decision."""
    trainer = Trainer(_config(small, "sac", state="extended", episodes=2), tmp_path / "x",
                      show_progress=False)
    path = trainer.run()
    assert trainer.state_dim == 2 + 2 * 4
    policy = CheckpointPolicy(path)
    sim = PaperSimulator(PaperConfig(num_nodes=4, num_slots=6, max_tasks=8), num_envs=1)
    policy.attach(sim)
    policy.reset(num_envs=1, num_nodes=4, seed=0)
    seen: list[np.ndarray] = []
    original = policy.policy.probs

    def spy(state_AMF, stored_AMN):
        seen.append(state_AMF[0, 0, -4:].numpy().copy())
        return original(state_AMF, stored_AMN)

    policy.policy.probs = spy  # type: ignore[method-assign]
    view = sim.reset([10000])
    for _ in range(30):
        expected = sim.in_slot_EN[0] / (sim.constants.capacity_N * 10.0)
        view_next = sim.step(policy.act(view))[1]
        np.testing.assert_allclose(seen[-1], expected, rtol=1e-6)
        assert view_next is not None
        view = view_next
    assert any(v.any() for v in seen), "Q̃ never became non-zero"


def test_same_seed_same_policy_and_resume_is_exact(small, tmp_path):
    a = Trainer(_config(small, "lad-ts"), tmp_path / "a", show_progress=False).run()
    b = Trainer(_config(small, "lad-ts"), tmp_path / "b", show_progress=False).run()
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # Half the episodes, then resume to the full count: same weights as one go.
    Trainer(_config(small, "lad-ts", episodes=2, checkpoint_every=1), tmp_path / "c",
            show_progress=False).run()
    c = Trainer(_config(small, "lad-ts"), tmp_path / "c", resume=True,
                show_progress=False).run()
    wc = _weights(c)
    assert all(torch.equal(wa[k], wc[k]) for k in wa)
    rows = list(csv.DictReader((tmp_path / "c" / "log.csv").open()))
    assert [int(r["episode"]) for r in rows] == [0, 1, 2, 3]


def test_bad_input_is_a_clear_error(small, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--algo", "ppo", "--out", str(tmp_path / "x")])
    assert "invalid choice: 'ppo'" in capsys.readouterr().err
    # a k8s-edge scenario goes to the cluster trainer, which runs lad-ts and d2sac only
    assert main(["train", "--scenario", "k8s-edge", "--algo", "dqn", "--out",
                 str(tmp_path / "x"), "--no-progress"]) == 2
    assert "the cluster trainer runs lad-ts, d2sac" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    assert main(["evaluate", "--scenario", str(small), "--policies", f"greedy,{bad}",
                 "--seeds", "10000", "--no-progress"]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err
    run = tmp_path / "r"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"\x00" * 10)
    assert main(["train", "--scenario", str(small), "--out", str(run), "--resume",
                 "--no-progress"]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        CheckpointPolicy(tmp_path / "missing.pt")
