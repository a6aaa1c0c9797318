"""Discrete SAC for the cluster actor: per-node twin Q, masked, automatic entropy.

The paper's update (:class:`ladts_policy.train.algorithms.DiscreteSAC`) over a variable node
axis: ``Q_j(s, n)`` for every valid node from :class:`ClusterTwinQ` (its own set encoders),

- critic target ``y = r + γ (1 − done) Σ_n π′(n) (min Q̄(s′, n) − α log π′(n))``, ``π′`` the
  actor at ``s′`` started from the start the next decision used;
- actor loss ``E[Σ_n π(n) (α log π(n) − min Q(s, n))] + λ · CE(π, teacher)`` (``λ`` =
  ``bc_weight``, ours: keeps the imitation while the critic is still rough; 0 = pure SAC);
- temperature loss ``E[log α · (H − H_target)]``, ``H_target = ratio · log(valid nodes)``
  (the node count varies, so the target scales with it).

The first ``critic_warmup`` updates train the critics only.
"""

from __future__ import annotations

import copy

import torch

from ladts_policy.train.cluster_buffer import ClusterBatch
from ladts_policy.train.cluster_config import ClusterTrainConfig
from ladts_policy.train.cluster_imitation import actor_probs, agreement, imitation_loss
from ladts_policy.train.cluster_networks import ClusterDiffusionActor, ClusterTwinQ

_LOG_EPS = 1e-8


class ClusterSAC:
    """The update rule above for one actor and its twin critics."""

    def __init__(self, actor: ClusterDiffusionActor, config: ClusterTrainConfig) -> None:
        self.actor = actor
        self.config = config
        self.critic = ClusterTwinQ(actor.cfg).to(next(actor.parameters()).device)
        self.critic_target = copy.deepcopy(self.critic)
        self.critic_target.requires_grad_(False)
        device = next(actor.parameters()).device
        self.log_alpha = torch.tensor(float(torch.tensor(config.alpha_init).log()),
                                      device=device, requires_grad=True)
        self.actor_opt = torch.optim.Adam(actor.parameters(), lr=config.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=config.alpha_lr)
        self.updates = 0

    def update(self, batch: ClusterBatch) -> dict[str, float]:
        """One SAC step (critics always; actor and α after the warm-up)."""
        cfg = self.config
        alpha = self.log_alpha.detach().exp()
        s, s2 = batch.state, batch.next_state
        with torch.no_grad():
            pi2, _ = actor_probs(self.actor, s2)
            q_t = self.critic_target(s2.node, s2.mask, s2.task, s2.glob)
            soft = torch.min(q_t[0], q_t[1]) - alpha * torch.log(pi2 + _LOG_EPS)
            value = (pi2 * soft * s2.mask).sum(-1)
            y = batch.reward + cfg.gamma * (1.0 - batch.done) * value
        q = self.critic(s.node, s.mask, s.task, s.glob)
        act = batch.action[:, None]
        critic_loss = sum(((q[j].gather(1, act)[:, 0] - y) ** 2).mean() for j in range(2))
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        torch.nn.utils.clip_grad_norm_(self.critic.parameters(), 10.0)
        self.critic_opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(list(self.critic_target.parameters()),
                                 list(self.critic.parameters()), cfg.tau)
        self.updates += 1
        out = {"critic_loss": float(critic_loss.detach()), "alpha": float(alpha)}
        if self.updates <= cfg.critic_warmup:
            return out
        pi, _ = actor_probs(self.actor, s)
        log_pi = torch.log(pi + _LOG_EPS)
        with torch.no_grad():
            q = self.critic(s.node, s.mask, s.task, s.glob)
            q_min = torch.min(q[0], q[1])
        entropy = -(pi * log_pi * s.mask).sum(-1)
        actor_loss = (-alpha * entropy - (pi * q_min * s.mask).sum(-1)).mean()
        bc = imitation_loss(pi, batch.teacher)
        total = actor_loss + cfg.bc_weight * bc if cfg.imitation else actor_loss
        self.actor_opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(self.actor.parameters(), 5.0)
        self.actor_opt.step()
        valid = s.mask.sum(-1).clamp(min=1).float()
        target = cfg.target_entropy_ratio * torch.log(valid)
        alpha_loss = (self.log_alpha * (entropy.detach() - target)).mean()
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()  # type: ignore[no-untyped-call]
        self.alpha_opt.step()
        out.update(actor_loss=float(actor_loss.detach()), entropy=float(entropy.detach().mean()),
                   bc_loss=float(bc.detach()),
                   bc_agreement=agreement(pi.detach(), batch.teacher))
        return out

    def state_dict(self) -> dict[str, object]:
        """Critics, target, α and the optimisers."""
        return {"critic": self.critic.state_dict(),
                "critic_target": self.critic_target.state_dict(),
                "log_alpha": self.log_alpha.detach().clone(),
                "actor_opt": self.actor_opt.state_dict(),
                "critic_opt": self.critic_opt.state_dict(),
                "alpha_opt": self.alpha_opt.state_dict(), "updates": self.updates}
