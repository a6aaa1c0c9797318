"""What acts: the trained networks of one run, batched over agents (a checkpoint's payload).

The split follows tianshou / Stable-Baselines3: an :class:`AgentPolicy` maps states (and,
for the diffusion actors, a chain start point) to action distributions and actions; an
algorithm (:mod:`.algorithms`) owns the critics and optimisers that train it. Evaluation
loads only the policy.
"""

from __future__ import annotations

import torch
from torch import nn

from ladts_policy.train.config import TrainConfig
from ladts_policy.train.networks import BatchedMLP, DiffusionActor, MLPActor

DIFFUSION_ALGOS = ("lad-ts", "d2sac")
"""Algorithms whose actor is the diffusion network."""


class AgentPolicy(nn.Module):
    """The per-agent policy networks of ``config.algo`` for ``agents`` agents.

    - ``lad-ts``: diffusion actor started from the stored latent action;
    - ``d2sac``: diffusion actor started from fresh ``N(0, I)`` noise at every call;
    - ``sac``: MLP actor;
    - ``dqn``: a Q-network; its "distribution" is one-hot on ``argmax Q``.
    """

    def __init__(self, config: TrainConfig, agents: int, state_dim: int, num_actions: int
                 ) -> None:
        super().__init__()
        self.algo = config.algo
        self.agents, self.state_dim, self.num_actions = agents, state_dim, num_actions
        self.net: nn.Module
        if config.algo in DIFFUSION_ALGOS:
            self.net = DiffusionActor(
                agents, state_dim, num_actions, hidden=config.hidden,
                steps=config.denoising_steps, beta_min=config.beta_min,
                beta_max=config.beta_max, time_dim=config.time_embedding,
                eps_softmax=config.eps_softmax)
        elif config.algo == "sac":
            self.net = MLPActor(agents, state_dim, num_actions, hidden=config.hidden)
        else:
            self.net = BatchedMLP(agents, state_dim, config.hidden, num_actions)

    @property
    def uses_latent(self) -> bool:
        """Whether the chain starts from the stored latent action (LAD-TS)."""
        return self.algo == "lad-ts"

    def start_point(self, stored_AMN: torch.Tensor) -> torch.Tensor:
        """The diffusion chain's ``x_I``: the stored latent action, or Gaussian noise (D2SAC)."""
        if self.algo == "d2sac":
            return torch.randn_like(stored_AMN)
        return stored_AMN

    def q_values(self, state_AMF: torch.Tensor) -> torch.Tensor:
        """DQN only: Q(s, ·) [A, M, N]."""
        if self.algo != "dqn":
            raise TypeError(f"{self.algo} has no Q-network policy")
        q: torch.Tensor = self.net(state_AMF)
        return q

    def probs(self, state_AMF: torch.Tensor, stored_AMN: torch.Tensor) -> torch.Tensor:
        """Action distribution [A, M, N] (differentiable for the actor-critic algorithms)."""
        if self.algo == "dqn":
            q = self.q_values(state_AMF)
            return nn.functional.one_hot(q.argmax(-1), self.num_actions).to(q.dtype)
        out: torch.Tensor = self.net(state_AMF, self.start_point(stored_AMN))
        return out

    @torch.no_grad()
    def act(self, state_AMF: torch.Tensor, stored_AMN: torch.Tensor, *, greedy: bool,
            epsilon: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions [A, M] (argmax when ``greedy``, else sampled / ε-greedy) and probs [A, M, N]."""
        probs = self.probs(state_AMF, stored_AMN)
        if greedy:
            return probs.argmax(-1), probs
        a, m, n = probs.shape
        if self.algo == "dqn":
            action = probs.argmax(-1)
            if epsilon > 0:
                explore = torch.rand(a, m, device=probs.device) < epsilon
                action = torch.where(explore, torch.randint_like(action, n), action)
            return action, probs
        # Inverse-CDF sampling (one uniform per row; much cheaper than multinomial here).
        u_AM1 = torch.rand(a, m, 1, device=probs.device)
        action = (torch.cumsum(probs, -1) < u_AM1).sum(-1).clamp_(max=n - 1)
        return action, probs
