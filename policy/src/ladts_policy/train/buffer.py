"""Per-agent replay memory, all agents in one set of tensors.

Each agent has its own ring of ``capacity`` transitions (the published per-station deque);
a transition stores the chain start point ``x_I`` of its decision and of the next decision,
so LAD-TS replays the actor from the same latent action it acted from.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Batch:
    """One sampled minibatch, ``M`` transitions for each of ``A`` agents."""

    state_AMF: torch.Tensor
    """float: state of the decision."""
    action_AM: torch.Tensor
    """int64: action taken."""
    start_AMN: torch.Tensor
    """float: chain start point x_I stored for the decision (the latent action)."""
    reward_AM: torch.Tensor
    """float: reward (minus the service delay, seconds)."""
    next_state_AMF: torch.Tensor
    """float: state of the same agent's next decision."""
    next_start_AMN: torch.Tensor
    """float: x_I stored for that next decision."""


class AgentReplay:
    """Ring buffers of ``capacity`` transitions for each of ``agents`` agents.

    All fields live in one float tensor ``[A, C, W]`` (actions as exact small floats), so a
    minibatch is a single gather.
    """

    FIELDS = ("state", "action", "start", "reward", "next_state", "next_start")

    def __init__(self, agents: int, capacity: int, state_dim: int, num_actions: int,
                 device: torch.device) -> None:
        self.agents, self.capacity = agents, capacity
        widths = {"state": state_dim, "action": 1, "start": num_actions, "reward": 1,
                  "next_state": state_dim, "next_start": num_actions}
        self.slices: dict[str, slice] = {}
        offset = 0
        for name in self.FIELDS:
            self.slices[name] = slice(offset, offset + widths[name])
            offset += widths[name]
        self.packed_ACW = torch.zeros(agents, capacity, offset, device=device)
        self.ptr_A = torch.zeros(agents, dtype=torch.int64, device=device)
        self.size_A = torch.zeros(agents, dtype=torch.int64, device=device)

    def add(self, agent_R: torch.Tensor, rows: dict[str, torch.Tensor]) -> None:
        """Append rows (any order of agents; rows of one agent in time order).

        Args:
            agent_R: int64 [R], the agent of each row.
            rows: one tensor per field of :attr:`FIELDS`, first dimension ``R``.
        """
        if agent_R.numel() == 0:
            return
        r = agent_R.numel()
        packed_RW = torch.cat([rows[name].reshape(r, -1).to(self.packed_ACW.dtype)
                               for name in self.FIELDS], dim=1)
        order = torch.argsort(agent_R, stable=True)
        agent_R = agent_R[order]
        count_A = torch.bincount(agent_R, minlength=self.agents)
        first_A = torch.cumsum(count_A, 0) - count_A
        rank_R = torch.arange(r, device=agent_R.device) - first_A[agent_R]
        # Keep only each agent's last `capacity` rows, so no ring slot is written twice.
        keep = rank_R >= (count_A[agent_R] - self.capacity)
        agent_R, rank_R, order = agent_R[keep], rank_R[keep], order[keep]
        slot_R = (self.ptr_A[agent_R] + rank_R) % self.capacity
        self.packed_ACW[agent_R, slot_R] = packed_RW[order]
        self.ptr_A = (self.ptr_A + count_A) % self.capacity
        self.size_A = torch.clamp(self.size_A + count_A, max=self.capacity)

    def ready(self, min_size: int) -> bool:
        """Whether every agent holds at least ``min_size`` transitions."""
        return bool((self.size_A >= min_size).all())

    def sample(self, batch_size: int) -> Batch:
        """``batch_size`` transitions per agent, uniformly with replacement from its ring."""
        u_AM = torch.rand(self.agents, batch_size, device=self.size_A.device)
        idx_AM = (u_AM * self.size_A[:, None]).long()
        flat_AM = idx_AM + torch.arange(self.agents, device=idx_AM.device)[:, None] * self.capacity
        got_AMW = self.packed_ACW.reshape(-1, self.packed_ACW.shape[-1])[flat_AM]
        d = {name: got_AMW[..., sl] for name, sl in self.slices.items()}
        return Batch(d["state"], d["action"][..., 0].long(), d["start"], d["reward"][..., 0],
                     d["next_state"], d["next_start"])

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors to checkpoint."""
        return {"packed": self.packed_ACW, "ptr": self.ptr_A, "size": self.size_A}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore from :meth:`state_dict` (shapes must match)."""
        self.packed_ACW.copy_(state["packed"])
        self.ptr_A.copy_(state["ptr"])
        self.size_A.copy_(state["size"])
