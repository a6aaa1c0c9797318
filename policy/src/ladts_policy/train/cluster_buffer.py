"""Replay ring of cluster transitions, node rows padded to a fixed number of slots.

A transition is (state, chain start, action, teacher's node, reward, done, next state, next
chain start): the start is the latent the decision actually started from (LAD-TS: the
memory of its task class; D2SAC: the Gaussian draw), so the critic target evaluates the actor
at the next state from the start the next decision used, as the paper's buffer does
(:mod:`ladts_policy.train.buffer`). A sampled batch is trimmed to the largest cluster in it.

Shapes: ``C`` capacity, ``S`` slots, ``B`` batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ladts_policy.contract import SPEC
from ladts_policy.train.cluster_lanes import LaneBatch


@dataclass(frozen=True)
class State:
    """A batch of decision states (torch, one device)."""

    node: torch.Tensor
    """float32 [B, S, F]."""

    mask: torch.Tensor
    """bool [B, S]."""

    task: torch.Tensor
    """float32 [B, T]."""

    glob: torch.Tensor
    """float32 [B, G]."""

    start: torch.Tensor
    """float32 [B, S, L]: the chain's start."""


@dataclass(frozen=True)
class ClusterBatch:
    """A sampled batch of transitions."""

    state: State
    """States the decisions were made in."""

    action: torch.Tensor
    """int64 [B] the node taken."""

    teacher: torch.Tensor
    """int64 [B] the teacher's node."""

    reward: torch.Tensor
    """float32 [B]."""

    done: torch.Tensor
    """float32 [B]: 1 when the episode ended with this decision."""

    next_state: State
    """The next decision of the same lane."""


def state_of(batch: LaneBatch, device: torch.device) -> State:
    """A lane batch as torch tensors."""
    return State(torch.from_numpy(batch.node_ESF).to(device),
                 torch.from_numpy(batch.mask_ES).to(device),
                 torch.from_numpy(batch.task_ET).to(device),
                 torch.from_numpy(batch.global_EG).to(device),
                 torch.from_numpy(batch.start_ESL).to(device))


class ClusterReplay:
    """Fixed-capacity ring of padded transitions (module docstring)."""

    def __init__(self, capacity: int, node_slots: int, latent_dim: int,
                 device: torch.device) -> None:
        d = SPEC.dims
        self.capacity, self.device = capacity, device
        c, s = capacity, node_slots

        def state() -> dict[str, np.ndarray]:
            return {"node": np.zeros((c, s, d["node"]), np.float32),
                    "mask": np.zeros((c, s), bool),
                    "task": np.zeros((c, d["task"]), np.float32),
                    "glob": np.zeros((c, d["global"]), np.float32),
                    "start": np.zeros((c, s, latent_dim), np.float32)}

        self.now, self.nxt = state(), state()
        self.action = np.zeros(c, np.int64)
        self.teacher = np.zeros(c, np.int64)
        self.reward = np.zeros(c, np.float32)
        self.done = np.zeros(c, np.float32)
        self.nodes = np.zeros(c, np.int64)
        self.size = 0
        self.cursor = 0

    def add(self, now: LaneBatch, action_E: np.ndarray, reward_E: np.ndarray,
            done_E: np.ndarray, nxt: LaneBatch) -> None:
        """Append one transition per lane."""
        for e in range(action_E.shape[0]):
            i = self.cursor
            for store, src in ((self.now, now), (self.nxt, nxt)):
                s = src.node_ESF.shape[1]
                store["node"][i] = 0.0
                store["node"][i, :s] = src.node_ESF[e]
                store["mask"][i] = False
                store["mask"][i, :s] = src.mask_ES[e]
                store["task"][i] = src.task_ET[e]
                store["glob"][i] = src.global_EG[e]
                store["start"][i] = 0.0
                store["start"][i, :s] = src.start_ESL[e]
            self.action[i], self.teacher[i] = action_E[e], now.teacher_E[e]
            self.reward[i], self.done[i] = reward_E[e], done_E[e]
            self.nodes[i] = max(now.nodes_E[e], nxt.nodes_E[e])
            self.cursor = (i + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> ClusterBatch:
        """A uniform batch, trimmed to the largest cluster it holds."""
        idx = rng.integers(self.size, size=batch_size)
        s = int(self.nodes[idx].max())
        dev = self.device

        def state(store: dict[str, np.ndarray]) -> State:
            return State(torch.from_numpy(store["node"][idx, :s]).to(dev),
                         torch.from_numpy(store["mask"][idx, :s]).to(dev),
                         torch.from_numpy(store["task"][idx]).to(dev),
                         torch.from_numpy(store["glob"][idx]).to(dev),
                         torch.from_numpy(store["start"][idx, :s]).to(dev))

        return ClusterBatch(state(self.now), torch.from_numpy(self.action[idx]).to(dev),
                            torch.from_numpy(self.teacher[idx]).to(dev),
                            torch.from_numpy(self.reward[idx]).to(dev),
                            torch.from_numpy(self.done[idx]).to(dev), state(self.nxt))

    def node_statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the valid node rows held (for FeatureNorm)."""
        rows = self.now["node"][: self.size][self.now["mask"][: self.size]]
        return rows.mean(axis=0), rows.std(axis=0)

    def group_statistics(self, group: str) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the task or global rows held."""
        rows = self.now[group][: self.size]
        return rows.mean(axis=0), rows.std(axis=0)
