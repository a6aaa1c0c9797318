"""What learns: the updates that train an :class:`~.policies.AgentPolicy`.

One discrete soft actor-critic core serves LAD-TS, D2SAC-TS and SAC-TS (they differ only in
the actor and its start point); DQN-TS shares the batching, replay and loop. Losses are
summed over agents (each agent's parameters only receive its own gradient, so one Adam over
the batched tensors equals one Adam per agent, as published) and averaged over the batch.
"""

from __future__ import annotations

import copy
from typing import Protocol

import torch
from torch import nn

from ladts_policy.train.buffer import Batch
from ladts_policy.train.config import TrainConfig
from ladts_policy.train.networks import TwinQ
from ladts_policy.train.policies import AgentPolicy

_LOG_EPS = 1e-8


class Algorithm(Protocol):
    """Trains a policy from replayed batches."""

    policy: AgentPolicy

    def update(self, batch: Batch) -> dict[str, float]:
        """One gradient step for every agent; returns scalar diagnostics."""
        ...

    def state_dict(self) -> dict[str, object]:
        """Everything besides the policy needed to resume (critics, optimisers, α)."""
        ...

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Inverse of :meth:`state_dict`."""
        ...


def _per_agent_mean(x_AM: torch.Tensor) -> torch.Tensor:
    """Mean over the batch, summed over agents."""
    return x_AM.mean(dim=1).sum()


class DiscreteSAC:
    """Discrete SAC with twin critics, target critics and automatic temperature (per agent).

    Critic target ``y = r + γ Σ_a π′(a)(min Q̄(s′, a) − α log π′(a))`` with ``π′`` the
    current actor at the next state (started from the stored next latent action), no done
    mask; actor loss ``E[−α H(π) − Σ_a π(a) min Q(s, a)]``; temperature loss
    ``E[α (H − H_target)]`` on ``log α`` (as published).
    """

    def __init__(self, policy: AgentPolicy, config: TrainConfig) -> None:
        self.policy = policy
        self.config = config
        a, f, n = policy.agents, policy.state_dim, policy.num_actions
        device = next(policy.parameters()).device
        self.critic = TwinQ(a, f, n, hidden=config.hidden).to(device)
        self.critic_target = copy.deepcopy(self.critic)
        self.critic_target.requires_grad_(False)
        self.log_alpha_A = torch.full((a,), float(torch.tensor(config.alpha_init).log()),
                                      device=device, requires_grad=True)
        self.actor_opt = torch.optim.Adam(policy.parameters(), lr=config.actor_lr, fused=True)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr,
                                           fused=True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha_A], lr=config.alpha_lr, fused=True)

    def update(self, batch: Batch) -> dict[str, float]:
        """One discrete-SAC step for all agents."""
        cfg = self.config
        alpha_A1 = self.log_alpha_A.detach().exp()[:, None]
        # The actor at s (for its loss) and at s′ (for the critic target, no gradient) in one
        # batched pass: same parameters, half the small-kernel launches.
        m = batch.state_AMF.shape[1]
        pi_both = self.policy.probs(torch.cat([batch.state_AMF, batch.next_state_AMF], 1),
                                    torch.cat([batch.start_AMN, batch.next_start_AMN], 1))
        pi, pi_next = pi_both[:, :m], pi_both[:, m:].detach()
        with torch.no_grad():
            q1_t, q2_t = self.critic_target(batch.next_state_AMF)
            soft_q = torch.min(q1_t, q2_t) - alpha_A1[..., None] * torch.log(pi_next + _LOG_EPS)
            y_AM = batch.reward_AM + cfg.gamma * (pi_next * soft_q).sum(-1)
        q1, q2 = self.critic(batch.state_AMF)
        act = batch.action_AM[..., None]
        critic_loss = (_per_agent_mean((q1.gather(-1, act)[..., 0] - y_AM) ** 2)
                       + _per_agent_mean((q2.gather(-1, act)[..., 0] - y_AM) ** 2))
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()  # type: ignore[no-untyped-call]
        self.critic_opt.step()

        log_pi = torch.log(pi + _LOG_EPS)
        entropy_AM = -(pi * log_pi).sum(-1)
        with torch.no_grad():
            q1, q2 = self.critic(batch.state_AMF)
            q_min = torch.min(q1, q2)
        actor_loss = _per_agent_mean(-alpha_A1 * entropy_AM - (pi * q_min).sum(-1))
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()  # type: ignore[no-untyped-call]
        self.actor_opt.step()

        alpha_loss = _per_agent_mean(
            self.log_alpha_A.exp()[:, None] * (entropy_AM.detach() - cfg.target_entropy))
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()  # type: ignore[no-untyped-call]
        self.alpha_opt.step()

        with torch.no_grad():
            target: list[torch.Tensor] = list(self.critic_target.parameters())
            source: list[torch.Tensor] = list(self.critic.parameters())
            torch._foreach_lerp_(target, source, cfg.tau)
        agents = self.policy.agents
        return {"critic_loss": critic_loss.item() / agents,
                "actor_loss": actor_loss.item() / agents,
                "alpha": float(alpha_A1.mean()), "entropy": float(entropy_AM.detach().mean())}

    def state_dict(self) -> dict[str, object]:
        """Critics, targets, α and the three optimisers."""
        return {"critic": self.critic.state_dict(),
                "critic_target": self.critic_target.state_dict(),
                "log_alpha": self.log_alpha_A.detach().clone(),
                "actor_opt": self.actor_opt.state_dict(),
                "critic_opt": self.critic_opt.state_dict(),
                "alpha_opt": self.alpha_opt.state_dict()}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore from :meth:`state_dict`."""
        self.critic.load_state_dict(state["critic"])  # type: ignore[arg-type]
        self.critic_target.load_state_dict(state["critic_target"])  # type: ignore[arg-type]
        with torch.no_grad():
            self.log_alpha_A.copy_(state["log_alpha"])  # type: ignore[arg-type]
        self.actor_opt.load_state_dict(state["actor_opt"])  # type: ignore[arg-type]
        self.critic_opt.load_state_dict(state["critic_opt"])  # type: ignore[arg-type]
        self.alpha_opt.load_state_dict(state["alpha_opt"])  # type: ignore[arg-type]


class DQN:
    """DQN-TS: one-step Q-learning with a hard-copied target network (as published)."""

    def __init__(self, policy: AgentPolicy, config: TrainConfig) -> None:
        self.policy = policy
        self.config = config
        self.target: nn.Module = copy.deepcopy(policy.net)
        self.target.requires_grad_(False)
        self.opt = torch.optim.Adam(policy.parameters(), lr=config.dqn_lr, fused=True)
        self.updates = 0

    def update(self, batch: Batch) -> dict[str, float]:
        """One TD step ``(Q(s, a) − r − γ max Q̄(s′, ·))²`` for all agents."""
        with torch.no_grad():
            q_next = self.target(batch.next_state_AMF).max(-1).values
            y_AM = batch.reward_AM + self.config.gamma * q_next
        q = self.policy.q_values(batch.state_AMF).gather(-1, batch.action_AM[..., None])[..., 0]
        loss = _per_agent_mean((q - y_AM) ** 2)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        self.opt.step()
        self.updates += 1
        if self.updates % self.config.dqn_target_every == 0:
            self.target.load_state_dict(self.policy.net.state_dict())
        return {"critic_loss": loss.item() / self.policy.agents}

    def state_dict(self) -> dict[str, object]:
        """Target network, optimiser and the update counter."""
        return {"target": self.target.state_dict(), "opt": self.opt.state_dict(),
                "updates": self.updates}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore from :meth:`state_dict`."""
        self.target.load_state_dict(state["target"])  # type: ignore[arg-type]
        self.opt.load_state_dict(state["opt"])  # type: ignore[arg-type]
        self.updates = int(state["updates"])  # type: ignore[call-overload]


def make_algorithm(policy: AgentPolicy, config: TrainConfig) -> Algorithm:
    """The learner for ``config.algo``."""
    if config.algo == "dqn":
        return DQN(policy, config)
    return DiscreteSAC(policy, config)
