"""The node-count-agnostic LAD-TS actor and its per-node twin Q critics (docs/design.md).

The paper's actor (:class:`ladts_policy.train.networks.DiffusionActor`) has one output per
server, so it serves one cluster size. Here every node carries its own latent of width ``L``
and one shared per-node denoiser ``ε_θ(x_t, t, context)`` runs over all nodes at once; its
context is a set encoding of the node rows (per-node embedding, masked attention pooling and a
masked mean over the valid nodes) plus the task and global rows, so the same weights serve 2
or 500 nodes. The reverse chain is the paper's VP schedule with ``K`` steps unrolled; it starts
from the latent start input (the latent action warm start, zeros when none) and takes its
noise as an input (never sampled inside: the ONNX export is deterministic given its inputs).
The final latent ``x_0`` is projected to one logit per node and a masked softmax gives the
action probabilities (exactly zero on masked nodes); the latent returned for the warm-start
memory is ``tanh(x_0)``, bounded as the paper's stored action distribution is (the VP
reverse step scales ``x`` by ``a_i > 1``, about 12x over five steps, so feeding ``x_0`` back
unbounded would grow geometrically from one decision to the next).

Shapes: ``B`` batch, ``N`` nodes, ``F``/``T``/``G`` node/task/global feature widths
(``ladts_policy.contract.SPEC``), ``H`` hidden width, ``L`` latent width, ``K`` steps,
``E`` time-embedding width.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ladts_policy.contract import SPEC
from ladts_policy.train.networks import sinusoidal_embedding, vp_reverse_coefficients

MASKED_LOGIT = -1e9
"""Logit given to masked nodes before the softmax (their probability is then zeroed)."""


@dataclass(frozen=True)
class ClusterActorConfig:
    """Architecture of the cluster actor and critics (saved in every checkpoint)."""

    hidden: int = 64
    """``H``: width of the node embedding, the context and the denoiser's hidden layers."""

    latent_dim: int = 4
    """``L``: per-node latent width (the warm-start memory stores ``[N, L]`` per task class)."""

    steps: int = 5
    """``K``: denoising steps unrolled in the chain (the paper's ``I = 5``)."""

    beta_min: float = 0.1
    """VP schedule ``β_min`` (the paper's value)."""

    beta_max: float = 10.0
    """VP schedule ``β_max`` (the paper's value)."""

    time_dim: int = 16
    """``E``: width of the sinusoidal step embedding."""

    heads: int = 4
    """Attention-pooling heads of the set encoder (``hidden`` must be divisible by it)."""

    node_dim: int = SPEC.dims["node"]
    """``F``: node feature width (features v2)."""

    task_dim: int = SPEC.dims["task"]
    """``T``: task feature width."""

    global_dim: int = SPEC.dims["global"]
    """``G``: global feature width."""

    def __post_init__(self) -> None:
        """Reject sizes the networks cannot be built with."""
        for name in ("hidden", "latent_dim", "steps", "time_dim", "heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"ClusterActorConfig.{name} must be >= 1")
        if self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} is not divisible by heads {self.heads}")

    def to_dict(self) -> dict[str, float | int]:
        """Plain values for a checkpoint."""
        return asdict(self)


def _mlp(fan_in: int, hidden: int, fan_out: int) -> nn.Sequential:
    """``in → hidden → out`` with a ReLU between."""
    return nn.Sequential(nn.Linear(fan_in, hidden), nn.ReLU(), nn.Linear(hidden, fan_out))


class FeatureNorm(nn.Module):
    """Per-feature affine ``(x − mean) / scale`` of the three feature groups.

    ``features.encode`` already scales its rows; these buffers (identity until a trainer
    fills them from its replay statistics) travel with the checkpoint and are part of the
    exported graph, so the serving side never normalises on its own.
    """

    def __init__(self, cfg: ClusterActorConfig) -> None:
        super().__init__()
        for group, width in (("node", cfg.node_dim), ("task", cfg.task_dim),
                             ("global", cfg.global_dim)):
            self.register_buffer(f"{group}_mean", torch.zeros(width))
            self.register_buffer(f"{group}_scale", torch.ones(width))

    def forward(self, node_BNF: torch.Tensor, task_BT: torch.Tensor, global_BG: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The normalised groups, shapes unchanged."""
        out = []
        for group, x in (("node", node_BNF), ("task", task_BT), ("global", global_BG)):
            mean: torch.Tensor = getattr(self, f"{group}_mean")
            scale: torch.Tensor = getattr(self, f"{group}_scale")
            out.append((x - mean) / scale)
        return out[0], out[1], out[2]


class SetEncoder(nn.Module):
    """Per-node embeddings and a permutation-invariant cluster context over the valid nodes.

    ``h_BNH = MLP(node row)``; the cluster context is multi-head attention pooling (a learned
    query per head, masked softmax over nodes) concatenated with the masked mean of ``h``,
    then with the embedded task and global rows, projected to ``H``. Each node's context row
    is ``[h_n, ctx]``: what the node is, and what the cluster and task around it are.
    """

    def __init__(self, cfg: ClusterActorConfig) -> None:
        super().__init__()
        h = cfg.hidden
        self.heads = cfg.heads
        self.node_mlp = _mlp(cfg.node_dim, h, h)
        self.key = nn.Linear(h, cfg.heads)
        self.value = nn.Linear(h, h)
        self.task_global = _mlp(cfg.task_dim + cfg.global_dim, h, h)
        self.mix = _mlp(3 * h, h, h)

    def forward(self, node_BNF: torch.Tensor, mask_BN: torch.Tensor, task_BT: torch.Tensor,
                global_BG: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(h_BNH, ctx_BH)``: node embeddings and the cluster/task context."""
        h_BNH = self.node_mlp(node_BNF)
        b, n, hid = h_BNH.shape
        mask_BN1 = mask_BN.unsqueeze(-1)
        maskf_BN1 = mask_BN1.to(h_BNH.dtype)
        # Attention pooling: one score per node and head, softmax over the valid nodes.
        score_BNA = self.key(h_BNH).masked_fill(~mask_BN1, MASKED_LOGIT)
        attn_BNA = torch.softmax(score_BNA, dim=1) * maskf_BN1
        value_BNAD = self.value(h_BNH).reshape(b, n, self.heads, hid // self.heads)
        pooled_BH = (attn_BNA.unsqueeze(-1) * value_BNAD).sum(dim=1).reshape(b, hid)
        mean_BH = (h_BNH * maskf_BN1).sum(dim=1) / maskf_BN1.sum(dim=1).clamp(min=1.0)
        tg_BH = self.task_global(torch.cat([task_BT, global_BG], dim=-1))
        ctx_BH = self.mix(torch.cat([pooled_BH, mean_BH, tg_BH], dim=-1))
        return h_BNH, ctx_BH


def node_context(h_BNH: torch.Tensor, ctx_BH: torch.Tensor) -> torch.Tensor:
    """``[h_n, ctx]`` per node: [B, N, 2H]."""
    return torch.cat([h_BNH, ctx_BH.unsqueeze(1).expand_as(h_BNH)], dim=-1)


def masked_softmax(logits_BN: torch.Tensor, mask_BN: torch.Tensor) -> torch.Tensor:
    """Softmax over the valid nodes; exactly 0 on masked ones (all-masked rows are all 0)."""
    probs_BN = torch.softmax(logits_BN.masked_fill(~mask_BN, MASKED_LOGIT), dim=-1)
    return probs_BN * mask_BN.to(probs_BN.dtype)


class ClusterDiffusionActor(nn.Module):
    """The LAD-TS actor for any node count: per-node latents, shared per-node denoiser.

    Each step predicts ``ε = ε_θ(x_i, emb(i), [h_n, ctx])`` per node and applies the paper's
    reverse update ``x_{i−1} = a_i·x_i − b_i·ε + σ_i·z_i`` (``σ_0 = 0``: the last step adds
    no noise, as in :class:`ladts_policy.train.networks.DiffusionActor`). ``z`` is
    ``noise_BKNL[:, K−1−i]`` (step ``K`` uses the first draw). ``logit_n = w·x_0,n + c`` and a
    masked softmax give the probabilities; ``tanh(x_0)`` is the latent to store.
    """

    def __init__(self, cfg: ClusterActorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.norm = FeatureNorm(cfg)
        self.encoder = SetEncoder(cfg)
        h, lat = cfg.hidden, cfg.latent_dim
        # The denoiser's first layer is split by input block (the same affine map on
        # [x, emb(i), context]) so the context term is computed once per chain, not per step.
        self.eps_in_x = nn.Linear(lat, h, bias=False)
        self.eps_in_t = nn.Linear(cfg.time_dim, h, bias=False)
        self.eps_in_c = nn.Linear(2 * h, h)
        self.eps_out = nn.Sequential(nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, lat))
        self.logit = nn.Linear(lat, 1)
        coef = vp_reverse_coefficients(cfg.steps, cfg.beta_min, cfg.beta_max)
        coef[2, 0] = 0.0  # no noise on the last step
        self.register_buffer("coef_CK", coef.float())
        self.register_buffer("time_KE", sinusoidal_embedding(cfg.steps, cfg.time_dim))

    def forward(self, node_features: torch.Tensor, node_mask: torch.Tensor,
                task_features: torch.Tensor, global_features: torch.Tensor,
                latent_start: torch.Tensor, noise: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """The serving contract's inference path (``ladts_policy.policy_contract``).

        Args:
            node_features: float32 [B, N, F].
            node_mask: bool [B, N], valid actions.
            task_features: float32 [B, T].
            global_features: float32 [B, G].
            latent_start: float32 [B, N, L], the chain's start ``x_K``.
            noise: float32 [B, K, N, L], standard normal draws.

        Returns:
            ``(action_probs [B, N], latent [B, N, L])``, the latent ``tanh(x_0)``.
        """
        node_BNF, task_BT, global_BG = self.norm(node_features, task_features, global_features)
        h_BNH, ctx_BH = self.encoder(node_BNF, node_mask, task_BT, global_BG)
        base_BNH = self.eps_in_c(node_context(h_BNH, ctx_BH))
        coef_CK: torch.Tensor = self.coef_CK  # type: ignore[assignment]
        step_KH = self.eps_in_t(self.time_KE)
        x_BNL = latent_start
        steps = self.cfg.steps
        for i in reversed(range(steps)):
            eps_BNL = self.eps_out(self.eps_in_x(x_BNL) + base_BNH + step_KH[i])
            x_BNL = (coef_CK[0, i] * x_BNL - coef_CK[1, i] * eps_BNL
                     + coef_CK[2, i] * noise[:, steps - 1 - i])
        logits_BN = self.logit(x_BNL).squeeze(-1)
        return masked_softmax(logits_BN, node_mask), torch.tanh(x_BNL)


class ClusterTwinQ(nn.Module):
    """Per-node twin Q critics for discrete SAC: ``Q_j(s, a = n)`` for every node ``n``.

    Each of the two critics has its own :class:`SetEncoder` (the actor's architecture, not
    its weights) and a per-node head on ``[h_n, ctx]``, so ``Q`` is defined for any node
    count; masked nodes get :data:`MASKED_LOGIT`-free zeros and must be masked by the loss.
    """

    def __init__(self, cfg: ClusterActorConfig) -> None:
        super().__init__()
        self.norm = FeatureNorm(cfg)
        self.encoders = nn.ModuleList([SetEncoder(cfg), SetEncoder(cfg)])
        self.heads = nn.ModuleList([_mlp(2 * cfg.hidden, cfg.hidden, 1) for _ in range(2)])

    def forward(self, node_features: torch.Tensor, node_mask: torch.Tensor,
                task_features: torch.Tensor, global_features: torch.Tensor) -> torch.Tensor:
        """float32 [2, B, N]: both critics' Q per node (0 on masked nodes)."""
        node_BNF, task_BT, global_BG = self.norm(node_features, task_features, global_features)
        qs = []
        for encoder, head in zip(self.encoders, self.heads, strict=True):
            h_BNH, ctx_BH = encoder(node_BNF, node_mask, task_BT, global_BG)
            qs.append(head(node_context(h_BNH, ctx_BH)).squeeze(-1))
        return torch.stack(qs) * node_mask.to(node_BNF.dtype)
