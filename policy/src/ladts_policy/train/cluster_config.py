"""Typed settings of a cluster training run (``ladts train --scenario k8s-edge ...``).

Torch-free. The defaults are the recipe of the bundled policy (docs/training.md, "The
cluster policy"); every field is an option of ``ladts train`` (``--field-name``), its
docstring the help text.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

CLUSTER_ALGORITHMS = ("lad-ts", "d2sac")
"""lad-ts: the chain starts from the latent memory of the task class; d2sac: from N(0, I)."""

IMITATION_TEACHERS = ("residency-greedy", "none")
"""Values of :attr:`ClusterTrainConfig.imitate`."""

DISTRIBUTIONS = ("random", "scenario")
"""Values of :attr:`ClusterTrainConfig.distribution`."""


@dataclass(frozen=True)
class ClusterTrainConfig:
    """Everything that defines a cluster training run (saved in its checkpoints)."""

    scenario: str = "k8s-edge"
    """Base scenario (preset or k8s-edge YAML): its model mix and uncertainty seed the random
    clusters; with distribution=scenario it is the only training cluster."""

    algo: str = "lad-ts"
    """lad-ts (latent-memory start of the diffusion chain) or d2sac (Gaussian start)."""

    seed: int = 0
    """Training seed (torch, clusters, episodes); below 10000 (evaluation seeds start there)."""

    distribution: str = "random"
    """random: seeded random clusters of 6-48 nodes over the GPU profile table
    (ladts_policy.train.cluster_distribution); scenario: the base scenario only."""

    imitate: str = "residency-greedy"
    """Behaviour-cloning teacher before SAC (residency-greedy) or none."""

    bc_decisions: int = 6_000
    """Teacher decisions collected for behaviour cloning."""

    bc_updates: int = 1_000
    """Behaviour-cloning gradient steps (cross-entropy of the masked softmax on the
    teacher's node)."""

    bc_lr: float = 1e-3
    """Behaviour-cloning learning rate (Adam)."""

    sac_decisions: int = 10_000
    """Environment decisions of SAC fine-tuning (all lanes together)."""

    updates_per_step: float = 0.6
    """SAC gradient steps per lockstep step of the lanes (one step = ``lanes`` decisions)."""

    lanes: int = 8
    """Training clusters stepped in lockstep, each with its own latent memory."""

    critic_warmup: int = 200
    """SAC updates that train only the critics (the actor and α wait: an untrained critic
    would undo the imitation)."""

    bc_weight: float = 0.1
    """Weight of the teacher cross-entropy kept in the actor loss during SAC (0 = pure SAC);
    with imitate=none it is ignored."""

    gamma: float = 0.99
    """Discount per decision: about 100 decisions, the 1-2 minutes over which a cold start
    pays back at 1 req/s (docs/training.md)."""

    reward_scale_s: float = 10.0
    """Reward = −delay / this many seconds (keeps Q near 1 in magnitude)."""

    hidden: int = 64
    """Width ``H`` of the set encoder and denoiser (ClusterActorConfig.hidden)."""

    latent_dim: int = 4
    """Per-node latent width ``L``."""

    denoising_steps: int = 5
    """Diffusion steps ``K`` (the paper's I = 5)."""

    actor_lr: float = 1e-4
    """Actor learning rate during SAC (Adam)."""

    critic_lr: float = 3e-4
    """Critic learning rate (Adam)."""

    alpha_init: float = 0.01
    """Initial entropy temperature α."""

    alpha_lr: float = 3e-4
    """Learning rate of log α (automatic entropy tuning)."""

    target_entropy_ratio: float = 0.2
    """Target entropy per decision = this × log(valid nodes) (node counts vary)."""

    tau: float = 0.005
    """Soft target-critic update rate."""

    buffer_size: int = 12_000
    """Replay capacity in transitions (node rows padded to max_nodes)."""

    batch_size: int = 64
    """Transitions per gradient step."""

    min_nodes: int = 6
    """Fewest nodes of a random training cluster."""

    max_nodes: int = 48
    """Most nodes of a random training cluster (and the replay's node slots)."""

    horizon_s: float = 600.0
    """Seconds of arrivals per random training cluster episode."""

    validate_every: int = 5_000
    """Decisions between validations (argmax policy on the validation clusters)."""

    validation_clusters: int = 4
    """Validation clusters: random clusters of seed 9999 (training range, never trained on;
    9998 for a run of seed 9999), scored as the pooled delay ratio to greedy on
    the same episodes."""

    validation_horizon_s: float = 600.0
    """Seconds of arrivals per validation episode."""

    threads: int = 1
    """torch CPU threads."""

    device: str = "cpu"
    """cpu or cuda."""

    def __post_init__(self) -> None:
        """Reject settings the trainer cannot run."""
        if self.algo not in CLUSTER_ALGORITHMS:
            raise ValueError(f"the cluster trainer runs {', '.join(CLUSTER_ALGORITHMS)}; "
                             f"got {self.algo!r}")
        if self.imitate not in IMITATION_TEACHERS:
            raise ValueError(f"imitate must be one of {', '.join(IMITATION_TEACHERS)}")
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}")
        if not 0 <= self.seed < 10_000:
            raise ValueError(f"seed must be in 0..9999 (evaluation seeds start at 10000), "
                             f"got {self.seed}")
        for name in ("lanes", "batch_size", "buffer_size", "hidden", "latent_dim",
                     "denoising_steps", "threads", "validate_every", "validation_clusters"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("bc_decisions", "bc_updates", "sac_decisions", "critic_warmup"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"gamma must be in [0, 1), got {self.gamma}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be cpu or cuda, got {self.device!r}")

    @property
    def imitation(self) -> bool:
        """Whether the run starts with behaviour cloning."""
        return self.imitate != "none"

    def command_line(self) -> str:
        """The ``ladts train`` command of this run (the recipe in an export's metadata).

        Scenario, algorithm, teacher and seed always; every other setting only where it
        differs from the default (``make bundled-policy``'s ``BUNDLED_TRAIN_ARGS`` is the
        output for the defaults).
        """
        words = ["ladts train", f"--scenario {self.scenario}", f"--algo {self.algo}",
                 f"--imitate {self.imitate}", f"--seed {self.seed}"]
        default = ClusterTrainConfig()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name not in ("scenario", "algo", "imitate", "seed") \
                    and value != getattr(default, f.name):
                words.append(f"--{f.name.replace('_', '-')} {value}")
        return " ".join(words)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (saved in checkpoints)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterTrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown cluster training settings {unknown}")
        return cls(**data)
