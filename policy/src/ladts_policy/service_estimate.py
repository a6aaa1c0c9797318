"""Online correction of profile service times from observed completions.

A GPU profile predicts how long a request takes on a node class; the node in front of us is
faster or slower than that (power mode, thermals, clocks, driver). The simulator hides the
true times from schedulers (docs/design.md, "Workload model"), and the operator never knows them,
so both correct the profile with the same estimator: per (node, model), an exponentially
weighted moving average (EWMA) of ``log(observed / predicted)`` over completed requests.

- The average is taken in log space so that a request twice as slow and one twice as fast
  cancel out, and the factor is the geometric mean of the observed ratios.
- A (node, model) pair with no completion yet borrows the node's own pooled factor over all
  its models (a node's speed is mostly shared across models), and a node with none uses 1.
- Each observed ratio is clipped to ``[1 / max_ratio, max_ratio]`` so one outlier (a request
  stalled by an unrelated fault) cannot swing the estimate far.

Pure Python (no numpy): the operator and the e2e emulation use it as is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class CorrectionConfig:
    """How fast and how far observed completions move the profile estimate."""

    alpha: float = 0.2
    """EWMA weight of one new observation (0 < alpha <= 1). 0.2 averages over about the
    last 5–10 completions: quick enough to follow a node's power-mode change within a
    minute at 1 req/s, slow enough that per-request noise (about ±10%) averages out."""

    max_ratio: float = 4.0
    """Observed/predicted ratios are clipped to [1/max_ratio, max_ratio]. The spread of one
    GPU class across power modes is within about 2× (docs/scenarios.md), so 4× only cuts
    outliers."""

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {self.alpha}")
        if self.max_ratio < 1.0:
            raise ValueError(f"max_ratio must be >= 1, got {self.max_ratio}")


@dataclass
class _Ewma:
    log_ratio: float = 0.0
    count: int = 0

    def update(self, log_ratio: float, alpha: float) -> None:
        # The first observation replaces the prior outright (no bias towards 1).
        self.log_ratio = log_ratio if self.count == 0 else (
            (1.0 - alpha) * self.log_ratio + alpha * log_ratio
        )
        self.count += 1


class ServiceTimeCorrector:
    """Per (node, model) correction factor for predicted service times (module docstring)."""

    def __init__(self, config: CorrectionConfig | None = None) -> None:
        self.config = config or CorrectionConfig()
        self._pair: dict[tuple[str, str], _Ewma] = {}
        self._node: dict[str, _Ewma] = {}

    def observe(self, node: str, model: str, *, observed_s: float, predicted_s: float) -> None:
        """Record one completed request: how long it took and what the profile predicted.

        Observations with a non-positive or non-finite time are ignored (nothing to learn).
        """
        if not (observed_s > 0.0 and predicted_s > 0.0):
            return
        if not (math.isfinite(observed_s) and math.isfinite(predicted_s)):
            return
        bound = math.log(self.config.max_ratio)
        log_ratio = min(max(math.log(observed_s / predicted_s), -bound), bound)
        self._pair.setdefault((node, model), _Ewma()).update(log_ratio, self.config.alpha)
        self._node.setdefault(node, _Ewma()).update(log_ratio, self.config.alpha)

    def factor(self, node: str, model: str) -> float:
        """Multiply a profile-predicted time on ``node`` for ``model`` by this (1.0 unknown)."""
        est = self._pair.get((node, model)) or self._node.get(node)
        return math.exp(est.log_ratio) if est is not None else 1.0

    def observations(self, node: str, model: str | None = None) -> int:
        """Completions seen on the node (for one model, or all when ``model`` is None)."""
        est = self._node.get(node) if model is None else self._pair.get((node, model))
        return est.count if est is not None else 0

    def forget_node(self, node: str) -> None:
        """Drop everything learned about a node (it left the cluster)."""
        self._node.pop(node, None)
        for key in [k for k in self._pair if k[0] == node]:
            del self._pair[key]

    def as_dict(self) -> dict[str, dict[str, dict[str, float]]]:
        """JSON-ready view: ``{node: {model or "*": {"factor", "observations"}}}``."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for node, est in self._node.items():
            out.setdefault(node, {})["*"] = {
                "factor": math.exp(est.log_ratio),
                "observations": float(est.count),
            }
        for (node, model), est in self._pair.items():
            out.setdefault(node, {})[model] = {
                "factor": math.exp(est.log_ratio),
                "observations": float(est.count),
            }
        return out
