"""Behaviour cloning of a teacher into the cluster diffusion actor.

The actor's output is a masked softmax over nodes; cloning minimises the cross-entropy of
that distribution on the teacher's node (``residency-greedy`` by default), through the whole
unrolled chain from the decision's own start (the latent memory, or the Gaussian start).
Diffusion actors imitate a multimodal teacher well because the chain, not a single linear
head, shapes the distribution; the measured agreement is in docs/training.md.
"""

from __future__ import annotations

import torch

from ladts_policy.train.cluster_buffer import State
from ladts_policy.train.cluster_networks import ClusterDiffusionActor

_LOG_EPS = 1e-8


def actor_probs(actor: ClusterDiffusionActor, state: State,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(probs [B, S], latent [B, S, L])`` of the actor on a batch, with fresh chain noise."""
    cfg = actor.cfg
    b, s = state.mask.shape
    noise = torch.randn(b, cfg.steps, s, cfg.latent_dim, generator=generator,
                        device=state.node.device)
    probs_BS, latent_BSL = actor(state.node, state.mask, state.task, state.glob, state.start,
                                 noise)
    return probs_BS, latent_BSL


def imitation_loss(probs_BS: torch.Tensor, teacher_B: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy ``−log π(teacher)`` of the masked softmax."""
    chosen_B = probs_BS.gather(1, teacher_B[:, None])[:, 0]
    return -torch.log(chosen_B + _LOG_EPS).mean()


def agreement(probs_BS: torch.Tensor, teacher_B: torch.Tensor) -> float:
    """Share of decisions whose argmax is the teacher's node."""
    return float((probs_BS.argmax(dim=1) == teacher_B).float().mean())


class Imitation:
    """Adam on :func:`imitation_loss` (the actor only)."""

    def __init__(self, actor: ClusterDiffusionActor, lr: float) -> None:
        self.actor = actor
        self.opt = torch.optim.Adam(actor.parameters(), lr=lr)

    def update(self, state: State, teacher_B: torch.Tensor) -> dict[str, float]:
        """One gradient step; returns the loss and the batch agreement."""
        probs_BS, _ = actor_probs(self.actor, state)
        loss = imitation_loss(probs_BS, teacher_B)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(self.actor.parameters(), 5.0)
        self.opt.step()
        return {"bc_loss": float(loss.detach()),
                "bc_agreement": agreement(probs_BS.detach(), teacher_B)}
