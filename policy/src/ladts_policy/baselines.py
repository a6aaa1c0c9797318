"""Heuristic schedulers, vectorised over environments, acting on a :class:`DecisionView`.

Every heuristic is registered under the name users pass to ``ladts evaluate --policies``:

- ``random``: uniform over schedulable nodes.
- ``round-robin``: the next schedulable node after the previous choice, per environment.
- ``capacity-weighted``: random with probability proportional to node capacity.
- ``least-queue``: smallest queue (``DecisionView.queue_len_EN``; ties: higher capacity, then
  random).
- ``greedy``: minimum expected service delay with full queue knowledge (the paper's Opt-TS).
- ``residency-greedy``: greedy with an amortised cold start and a charge for evictions
  (k8s-edge; plain greedy on ``paper``). The operator's serving fallback.
- ``rollout``: tries the top-k greedy nodes and rolls the cluster forward on sampled future
  arrivals (``ladts_policy.rollout``; k8s-edge only; slow).
- ``spread``: kube-scheduler-like: least requested share of allocatable (ties random).
- ``local``: always the task's local server (``paper`` preset only).
- ``size-greedy`` (or ``size-greedy:W``): greedy plus one size term, ``W`` seconds times
  (task size / mean size − 1) × (capacity / mean capacity − 1): big tasks lean to slow
  servers, small ones to fast servers. Needs the simulator to report task sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from ladts_policy.sim.base import DecisionView


class SchedulingPolicy(Protocol):
    """A scheduler that picks one node per active environment."""

    name: str

    def reset(self, *, num_envs: int, num_nodes: int, seed: int) -> None:
        """Prepare for new episodes; ``seed`` seeds any randomness the policy uses."""
        ...

    def act(self, view: DecisionView) -> np.ndarray:
        """Return int [E] node indices; entries for inactive environments are ignored."""
        ...


def _argmin_random_ties(
    cost_EN: np.ndarray, mask_EN: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Row-wise argmin over allowed nodes, ties broken uniformly at random."""
    cost_EN = np.where(mask_EN, cost_EN, np.inf)
    best_E1 = cost_EN.min(axis=1, keepdims=True)
    tied_EN = (cost_EN <= best_E1) & mask_EN
    noise_EN = rng.random(cost_EN.shape)
    return np.asarray(np.argmax(np.where(tied_EN, noise_EN, -1.0), axis=1))


def _sample_weighted(
    weight_EN: np.ndarray, mask_EN: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Sample one node per row with probability proportional to ``weight`` on allowed nodes."""
    weight_EN = np.where(mask_EN, np.maximum(weight_EN, 0.0), 0.0)
    total_E = weight_EN.sum(axis=1)
    # Rows whose weights are all zero fall back to uniform over allowed nodes.
    weight_EN = np.where((total_E > 0)[:, None], weight_EN, mask_EN.astype(float))
    cdf_EN = np.cumsum(weight_EN, axis=1)
    u_E1 = rng.random((weight_EN.shape[0], 1)) * cdf_EN[:, -1:]
    choice_E = (cdf_EN <= u_E1).sum(axis=1)
    return np.asarray(np.minimum(choice_E, weight_EN.shape[1] - 1))


class _RandomizedPolicy:
    """Shared seeding for the heuristics; subclasses implement :meth:`act`."""

    name = "abstract"

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def reset(self, *, num_envs: int, num_nodes: int, seed: int) -> None:
        """Re-seed the tie-breaking / sampling generator."""
        self.rng = np.random.default_rng(seed)


class RandomPolicy(_RandomizedPolicy):
    """Uniform random over schedulable nodes."""

    name = "random"

    def act(self, view: DecisionView) -> np.ndarray:
        """Pick uniformly among allowed nodes."""
        return _sample_weighted(np.ones(view.node_mask_EN.shape), view.node_mask_EN, self.rng)


class CapacityWeightedPolicy(_RandomizedPolicy):
    """Random in proportion to capacity; no queue information at all."""

    name = "capacity-weighted"

    def act(self, view: DecisionView) -> np.ndarray:
        """Sample a node with probability proportional to its capacity."""
        return _sample_weighted(view.capacity_EN, view.node_mask_EN, self.rng)


class RoundRobinPolicy(_RandomizedPolicy):
    """Cycle over schedulable nodes, one cursor per environment."""

    name = "round-robin"

    def __init__(self) -> None:
        super().__init__()
        self.cursor_E = np.zeros(0, dtype=np.int64)

    def reset(self, *, num_envs: int, num_nodes: int, seed: int) -> None:
        """Start every environment's cursor before node 0."""
        super().reset(num_envs=num_envs, num_nodes=num_nodes, seed=seed)
        self.cursor_E = np.full(num_envs, -1, dtype=np.int64)

    def act(self, view: DecisionView) -> np.ndarray:
        """Take the first allowed node strictly after the cursor (wrapping around)."""
        n = view.num_nodes
        offset_EN = (np.arange(n)[None, :] - self.cursor_E[:, None] - 1) % n
        choice_E = np.argmin(np.where(view.node_mask_EN, offset_EN, n + 1), axis=1)
        self.cursor_E = np.where(view.active_E, choice_E, self.cursor_E)
        return np.asarray(choice_E)


class LeastQueuePolicy(_RandomizedPolicy):
    """Smallest queue; ties to the faster node, then at random."""

    name = "least-queue"

    def act(self, view: DecisionView) -> np.ndarray:
        """Minimise queue length, breaking exact ties by capacity (whatever the queue's unit)."""
        queue_EN = np.where(view.node_mask_EN, view.queue_len_EN, np.inf)
        shortest_EN = view.node_mask_EN & (queue_EN <= queue_EN.min(axis=1, keepdims=True))
        return _argmin_random_ties(-view.capacity_EN, shortest_EN, self.rng)


class GreedyPolicy(_RandomizedPolicy):
    """Minimum expected service delay with full knowledge of queues (the paper's Opt-TS)."""

    name = "greedy"

    def act(self, view: DecisionView) -> np.ndarray:
        """Pick the node with the smallest expected delay for this task."""
        return _argmin_random_ties(view.expected_delay_EN, view.node_mask_EN, self.rng)


RESIDENCY_AMORTISE = 2.0
"""Weight of the load-time discount of a cold start. Tuned on k8s-edge training seeds 0-3:
``python benchmarks/tune_residency_greedy.py --scenario k8s-edge --seeds 0-3 --amortise
0,0.5,1,2,4 --evict 0,0.5,1,2`` gave 0.868 x greedy at (2, 0.5) (docs/scenarios.md)."""

RESIDENCY_EVICT = 0.5
"""Weight of the eviction charge (tuned with :data:`RESIDENCY_AMORTISE`)."""


class ResidencyGreedyPolicy(_RandomizedPolicy):
    """Greedy aware that cold starts warm a node and evictions cost others.

    A cold start warms the node for later requests of its model; an eviction costs the later
    requests that wanted the evicted model. Cost of node ``n`` =
    ``expected_delay - a * popularity(task model) * cold * load_s + b * evict_cost``
    (``DecisionView`` fields; all estimates the operator can compute from its state store and
    Prometheus). ``a`` and ``b`` are :data:`RESIDENCY_AMORTISE` and
    :data:`RESIDENCY_EVICT`, tuned on training seeds (< 10000) by
    ``python benchmarks/tune_residency_greedy.py`` (docs/scenarios.md). Without residency
    fields (``paper``) it is plain greedy.
    """

    name = "residency-greedy"

    def __init__(self, amortise: float = RESIDENCY_AMORTISE,
                 evict: float = RESIDENCY_EVICT) -> None:
        super().__init__()
        self.amortise, self.evict = amortise, evict

    def act(self, view: DecisionView) -> np.ndarray:
        """Pick the node with the smallest residency-aware cost."""
        return _argmin_random_ties(residency_cost(view, self.amortise, self.evict),
                                   view.node_mask_EN, self.rng)


def residency_cost(view: DecisionView, amortise: float, evict: float) -> np.ndarray:
    """Return float [E, N]: the residency-aware greedy cost (see ResidencyGreedyPolicy)."""
    cost_EN = np.array(view.expected_delay_EN, dtype=float)
    if view.cold_EN is None or view.load_s_EN is None or view.evict_cost_EN is None:
        return cost_EN
    pop_E1 = (view.popularity_E if view.popularity_E is not None
              else np.ones(view.num_envs))[:, None]
    load_EN = np.where(np.isfinite(view.load_s_EN), view.load_s_EN, 0.0)
    cost_EN -= amortise * pop_E1 * np.where(view.cold_EN, load_EN, 0.0)
    cost_EN += evict * view.evict_cost_EN
    return cost_EN


SIZE_GREEDY_WEIGHT = 24.0
"""Default ``W`` of ``size-greedy`` (seconds), tuned on training seeds only by
``benchmarks/tune_size_greedy.py --seeds 0-3 --weights 12,16,20,24,28,32,40`` (best
mean delay on training seeds 0..3; docs/results.md)."""


class SizeAwareGreedyPolicy(_RandomizedPolicy):
    """Greedy with one extra term that steers big tasks to slow servers, small to fast.

    ``cost_e = D_e + W · (s / s̄ − 1) · (f_e / f̄ − 1)``: ``D_e`` the expected delay (greedy's
    objective), ``s`` the task size, ``s̄`` the running mean of the sizes seen in this
    environment (no knowledge of the workload model), ``f_e`` the capacity and ``f̄`` the mean
    capacity of the allowed servers. ``W = 0`` is greedy.
    """

    name = "size-greedy"

    def __init__(self, weight_s: float = SIZE_GREEDY_WEIGHT) -> None:
        super().__init__()
        self.weight_s = weight_s
        self.size_sum_E = np.zeros(0)
        self.size_count_E = np.zeros(0)

    def reset(self, *, num_envs: int, num_nodes: int, seed: int) -> None:
        """Forget the running mean task size."""
        super().reset(num_envs=num_envs, num_nodes=num_nodes, seed=seed)
        self.size_sum_E = np.zeros(num_envs)
        self.size_count_E = np.zeros(num_envs)

    def act(self, view: DecisionView) -> np.ndarray:
        """Minimise the expected delay plus the size term."""
        if view.task_size_E is None:
            raise ValueError("policy 'size-greedy' needs a simulator that reports task sizes")
        size_E = np.where(view.active_E, view.task_size_E, 0.0)
        self.size_sum_E += size_E
        self.size_count_E += view.active_E
        mean_E = self.size_sum_E / np.maximum(self.size_count_E, 1)
        rel_size_E = np.where(mean_E > 0, size_E / np.where(mean_E > 0, mean_E, 1.0) - 1, 0.0)
        mask_EN = view.node_mask_EN
        cap_EN = np.where(mask_EN, view.capacity_EN, 0.0)
        mean_cap_E1 = cap_EN.sum(axis=1, keepdims=True) / np.maximum(
            mask_EN.sum(axis=1, keepdims=True), 1)
        rel_cap_EN = cap_EN / np.where(mean_cap_E1 > 0, mean_cap_E1, 1.0) - 1
        cost_EN = view.expected_delay_EN + self.weight_s * rel_size_E[:, None] * rel_cap_EN
        return _argmin_random_ties(cost_EN, mask_EN, self.rng)


class SpreadPolicy(_RandomizedPolicy):
    """kube-scheduler-like LeastAllocated spreading by requested resources."""

    name = "spread"

    def act(self, view: DecisionView) -> np.ndarray:
        """Pick the node with the smallest requested share of its allocatable resources."""
        return _argmin_random_ties(view.requested_fraction_EN, view.node_mask_EN, self.rng)


class LocalPolicy(_RandomizedPolicy):
    """Always process the task at its own base station (the paper's always-local)."""

    name = "local"

    def act(self, view: DecisionView) -> np.ndarray:
        """Return the local node; fails if the scenario has no notion of a local node."""
        local_E = view.local_node_E
        if np.any(view.active_E & (local_E < 0)):
            raise ValueError("policy 'local' needs a scenario with local servers (paper)")
        return np.asarray(np.maximum(local_E, 0))


HEURISTICS: dict[str, Callable[[], SchedulingPolicy]] = {
    cls.name: cls
    for cls in (
        RandomPolicy,
        RoundRobinPolicy,
        CapacityWeightedPolicy,
        LeastQueuePolicy,
        GreedyPolicy,
        ResidencyGreedyPolicy,
        SpreadPolicy,
        LocalPolicy,
        SizeAwareGreedyPolicy,
    )
}


def _make_rollout() -> SchedulingPolicy:
    from ladts_policy.rollout import RolloutPolicy

    return RolloutPolicy()


HEURISTICS["rollout"] = _make_rollout


def make_policy(name: str) -> SchedulingPolicy:
    """Build a registered heuristic by name (``size-greedy:W`` sets its weight).

    Raises ``KeyError`` listing the valid names.
    """
    base, sep, arg = name.partition(":")
    if sep and base == SizeAwareGreedyPolicy.name:
        try:
            return SizeAwareGreedyPolicy(float(arg))
        except ValueError:
            raise KeyError(f"policy {name!r}: the size-greedy weight must be a number") from None
    try:
        factory = HEURISTICS[name]
    except KeyError:
        valid = ", ".join(sorted(HEURISTICS))
        raise KeyError(f"unknown policy {name!r}; known heuristics: {valid}") from None
    return factory()
