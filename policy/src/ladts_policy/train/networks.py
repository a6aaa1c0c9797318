"""Networks of the paper's agents, batched over independent agents.

Every layer holds one weight matrix per agent (``[A, in, out]``) and runs all agents in one
``baddbmm``: the 20 per-station agents of the paper (no parameter sharing, as published)
cost one small batched matmul per layer instead of 20. A single shared network is ``A = 1``.

Shapes: ``A`` agents, ``M`` rows per agent, ``F`` state features, ``N`` actions (servers).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class BatchedLinear(nn.Module):
    """``A`` independent affine layers applied to ``x_AMI`` at once."""

    def __init__(self, agents: int, fan_in: int, fan_out: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default initialisation, per agent
        self.weight_AIO = nn.Parameter(torch.empty(agents, fan_in, fan_out).uniform_(-bound, bound))
        self.bias_A1O = nn.Parameter(torch.empty(agents, 1, fan_out).uniform_(-bound, bound))

    def forward(self, x_AMI: torch.Tensor) -> torch.Tensor:
        """``x @ W + b`` per agent: [A, M, in] -> [A, M, out]."""
        return torch.bmm(x_AMI, self.weight_AIO) + self.bias_A1O  # faster than baddbmm here


class BatchedMLP(nn.Module):
    """``in → hidden → hidden → out`` with ReLU between layers, per agent (the paper's shape)."""

    def __init__(self, agents: int, fan_in: int, hidden: int, fan_out: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([
            BatchedLinear(agents, fan_in, hidden),
            BatchedLinear(agents, hidden, hidden),
            BatchedLinear(agents, hidden, fan_out),
        ])

    def forward(self, x_AMI: torch.Tensor) -> torch.Tensor:
        """[A, M, in] -> [A, M, out]."""
        for layer in self.layers[:-1]:
            x_AMI = torch.relu(layer(x_AMI))
        out: torch.Tensor = self.layers[-1](x_AMI)
        return out


def vp_betas(steps: int, beta_min: float, beta_max: float) -> torch.Tensor:
    """The VP (variance-preserving) β schedule of D2SAC / LAD-TS, float64 [I].

    ``β_i = 1 − exp(−β_min/I − ½(β_max − β_min)(2i − 1)/I²)``, ``i = 1..I``; for ``I = 5``,
    ``β_min = 0.1``, ``β_max = 10``: ``[0.196, 0.459, 0.636, 0.755, 0.835]``.
    """
    i = torch.arange(1, steps + 1, dtype=torch.float64)
    return 1.0 - torch.exp(-beta_min / steps - 0.5 * (beta_max - beta_min) * (2 * i - 1)
                           / steps**2)


def vp_reverse_coefficients(steps: int, beta_min: float, beta_max: float) -> torch.Tensor:
    """float64 [3, I]: ``(a_i, b_i, σ_i)`` of the reverse step ``x_{i−1} = a·x_i − b·ε + σ·z``.

    ``x̂_0 = √(1/ᾱ)·x − √(1/ᾱ − 1)·ε`` and the posterior mean ``μ = c1·x̂_0 + c2·x`` fold
    into ``μ = a·x − b·ε``; ``σ`` is the posterior standard deviation (``≈ 0`` at ``i = 1``).
    """
    beta = vp_betas(steps, beta_min, beta_max)
    alpha = 1.0 - beta
    abar = torch.cumprod(alpha, 0)
    abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
    var = beta * (1.0 - abar_prev) / (1.0 - abar)
    c1 = beta * torch.sqrt(abar_prev) / (1.0 - abar)
    c2 = (1.0 - abar_prev) * torch.sqrt(alpha) / (1.0 - abar)
    return torch.stack([
        c1 * torch.sqrt(1.0 / abar) + c2,                   # a: weight of x_i
        c1 * torch.sqrt(1.0 / abar - 1.0),                  # b: weight of ε
        torch.exp(0.5 * torch.log(var.clamp(min=1e-20))),   # posterior σ
    ])


def sinusoidal_embedding(steps: int, dim: int) -> torch.Tensor:
    """float32 [I, dim]: the usual sin/cos embedding of step indices ``0..I−1`` (no MLP)."""
    half = dim // 2
    scale = math.log(10000.0) / max(half - 1, 1)
    freq = torch.exp(torch.arange(half, dtype=torch.float64) * -scale)
    angle = torch.arange(steps, dtype=torch.float64)[:, None] * freq[None, :]
    table = torch.cat([angle.sin(), angle.cos()], dim=1)
    if dim % 2:
        table = torch.cat([table, torch.zeros(steps, 1, dtype=torch.float64)], dim=1)
    return table.float()


class DiffusionActor(nn.Module):
    """The latent action diffusion network: ``I`` reverse DDPM steps, then a softmax.

    The chain starts at ``x_I`` (the latent action for LAD-TS, Gaussian noise for D2SAC);
    each step predicts the noise ``ε_θ(x_i, i, s)`` from ``[x_i, emb(i), s]``, forms
    ``x̂_0 = √(1/ᾱ_i)·x_i − √(1/ᾱ_i − 1)·ε`` and samples the posterior
    ``x_{i−1} = c1·x̂_0 + c2·x_i + σ_i·z`` (no noise at the last step, no clipping). The
    output is ``softmax(x_0)``, the action distribution. Trained only through the SAC policy
    loss, back-propagating through the unrolled chain (as published).
    """

    def __init__(self, agents: int, state_dim: int, num_actions: int, *, hidden: int,
                 steps: int, beta_min: float, beta_max: float, time_dim: int,
                 eps_softmax: bool) -> None:
        super().__init__()
        self.steps = steps
        self.eps_softmax = eps_softmax
        self.eps_net = BatchedMLP(agents, num_actions + time_dim + state_dim, hidden, num_actions)
        self.register_buffer("coef_CI", vp_reverse_coefficients(steps, beta_min, beta_max)
                             .float())
        self.register_buffer("time_IT", sinusoidal_embedding(steps, time_dim))

    def forward(self, state_AMF: torch.Tensor, x_start_AMN: torch.Tensor) -> torch.Tensor:
        """Action probabilities [A, M, N] from the start point ``x_I``."""
        first, second, last = self.eps_net.layers
        n = x_start_AMN.shape[-1]
        coef_CI: torch.Tensor = self.coef_CI  # type: ignore[assignment]
        time_IT: torch.Tensor = self.time_IT  # type: ignore[assignment]
        t = time_IT.shape[1]
        # The first layer on [x, emb(i), s] is split by input block (the same affine map):
        # the state and step terms are computed once per chain, not once per step.
        w_AIO: torch.Tensor = first.weight_AIO  # type: ignore[assignment]
        b_A1O: torch.Tensor = first.bias_A1O  # type: ignore[assignment]
        base_AMH = torch.baddbmm(b_A1O, state_AMF, w_AIO[:, n + t:])
        step_AIH = torch.matmul(time_IT, w_AIO[:, n:n + t])
        noise = torch.randn((max(self.steps - 1, 1), *x_start_AMN.shape),
                            device=x_start_AMN.device, dtype=x_start_AMN.dtype)
        x = x_start_AMN
        for i in reversed(range(self.steps)):
            h = torch.relu(torch.bmm(x, w_AIO[:, :n]) + (base_AMH + step_AIH[:, i:i + 1]))
            eps = last(torch.relu(second(h)))
            if self.eps_softmax:
                eps = torch.softmax(eps, dim=-1)
            x = torch.add(coef_CI[0, i] * x, eps, alpha=-float(coef_CI[1, i]))
            if i > 0:
                x = torch.add(x, noise[i - 1], alpha=float(coef_CI[2, i]))
        return torch.softmax(x, dim=-1)


class MLPActor(nn.Module):
    """SAC-TS's policy: ``state → hidden → hidden → softmax(N)``; ignores the start point."""

    def __init__(self, agents: int, state_dim: int, num_actions: int, *, hidden: int) -> None:
        super().__init__()
        self.net = BatchedMLP(agents, state_dim, hidden, num_actions)

    def forward(self, state_AMF: torch.Tensor, x_start_AMN: torch.Tensor | None = None
                ) -> torch.Tensor:
        """Action probabilities [A, M, N]."""
        return torch.softmax(self.net(state_AMF), dim=-1)


class TwinQ(nn.Module):
    """Two Q-networks ``state → hidden → hidden → Q(·, a)`` per agent, run as ``2A`` groups."""

    def __init__(self, agents: int, state_dim: int, num_actions: int, *, hidden: int) -> None:
        super().__init__()
        self.agents = agents
        self.net = BatchedMLP(2 * agents, state_dim, hidden, num_actions)

    def forward(self, state_AMF: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(Q1, Q2)``, each [A, M, N]."""
        q_2AMN = self.net(torch.cat([state_AMF, state_AMF], dim=0))
        return q_2AMN[: self.agents], q_2AMN[self.agents:]
