"""Typed training settings; the ``ladts train`` options are generated from this dataclass.

Defaults are the published ones (``main_lad.py`` of ChangfuXu/DEdgeAI, see
``docs/training.md``) except where a field's docstring says "ours".
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
from dataclasses import dataclass
from typing import Any

ALGORITHMS = ("lad-ts", "d2sac", "sac", "dqn")
"""Values of :attr:`TrainConfig.algo`."""

STATES = ("paper", "extended")
"""Values of :attr:`TrainConfig.state`."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (saved in every checkpoint)."""

    scenario: str = "paper"
    """Scenario preset or YAML file; the per-station agents train on the ``paper`` kind."""

    algo: str = "lad-ts"
    """lad-ts (latent-action start), d2sac (Gaussian start), sac (MLP actor) or dqn."""

    seed: int = 0
    """Training seed (torch, replay sampling, latent memory and the training episodes);
    must be below 10000 so training episodes never meet the evaluation seeds."""

    episodes: int = 60
    """Training episodes (the paper's LAD-TS converges in about 60)."""

    lanes: int = 4
    """Episodes stepped in lockstep (ours: speed). Each lane keeps its own latent memory;
    the number of gradient updates per decision is the published one whatever this is."""

    state: str = "paper"
    """paper: [d_n, w_n, Q_1..Q_B] as published; extended: adds Q̃_1..Q̃_B, the work already
    sent to each server earlier in the slot (ours; slower: decided task by task)."""

    hidden: int = 20
    """Hidden width of every network."""

    denoising_steps: int = 5
    """Diffusion steps I of the actor (lad-ts, d2sac)."""

    beta_min: float = 0.1
    """VP schedule β_min."""

    beta_max: float = 10.0
    """VP schedule β_max."""

    time_embedding: int = 16
    """Width of the sinusoidal step embedding."""

    eps_softmax: bool = False
    """End the noise predictor with a softmax as the published code does (default: a linear
    output, as the equations read). Measured: LAD-TS needs it to come near greedy
    (1.025 × vs 1.58 ×, docs/results.md); use it for LAD-TS."""

    actor_lr: float = 1e-4
    """Actor learning rate (Adam)."""

    critic_lr: float = 1e-3
    """Critic learning rate (Adam), for each twin critic."""

    alpha_init: float = 0.05
    """Initial entropy temperature α (the paper's ξ)."""

    alpha_lr: float = 3e-4
    """Learning rate of log α."""

    target_entropy: float = -1.0
    """Target entropy of the automatic temperature (published: −1, so α only decays)."""

    gamma: float = 0.95
    """Discount factor."""

    tau: float = 0.005
    """Soft target-critic update rate."""

    buffer_size: int = 1000
    """Replay capacity per agent."""

    min_buffer: int = 300
    """Transitions every agent holds before updates start."""

    batch_size: int = 64
    """Transitions per agent per update."""

    dqn_lr: float = 1e-4
    """DQN-TS Q-network learning rate."""

    dqn_epsilon: float = 0.01
    """DQN-TS fixed exploration rate during training."""

    dqn_target_every: int = 200
    """DQN-TS hard target copy period, in updates."""

    state_scale_s: float = 10.0
    """Backlogs enter the networks as waiting time Q_e / f_e divided by this many seconds
    (ours: input scaling; the published state is raw Gcycles)."""

    device: str = "auto"
    """cpu, cuda or auto (cuda when present)."""

    threads: int = 1
    """torch CPU threads (1 is fastest for these tiny networks)."""

    checkpoint_every: int = 4
    """Write DIR/checkpoint.pt after every this many lockstep rounds (and at the end)."""

    def __post_init__(self) -> None:
        if self.algo not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {self.algo!r}; "
                             f"choose from {', '.join(ALGORITHMS)}")
        if self.state not in STATES:
            raise ValueError(f"unknown state {self.state!r}; choose from {', '.join(STATES)}")
        if not 0 <= self.seed < 10_000:
            raise ValueError(f"seed must be in 0..9999 (evaluation seeds start at 10000), "
                             f"got {self.seed}")
        for name in ("episodes", "lanes", "hidden", "denoising_steps", "buffer_size",
                     "batch_size", "time_embedding", "threads", "checkpoint_every",
                     "dqn_target_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.min_buffer > self.buffer_size:
            raise ValueError("min_buffer must not exceed buffer_size")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain values (saved in checkpoints)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown training settings {unknown}")
        return cls(**data)


def field_docs(cls: type = TrainConfig) -> dict[str, str]:
    """The docstring under each field of a dataclass, joined into one line (for ``--help``)."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, after in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs
