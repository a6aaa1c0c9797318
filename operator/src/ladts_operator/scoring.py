"""Scorers (heuristic, ONNX policy) and the mapping of their output to extender scores.

Score mapping (kube-scheduler adds ``score x weight x 10`` per node and does not clamp, so
scores stay in ``MIN_SCORE..MAX_SCORE``):

- masked nodes (not ready, model does not fit, unknown) get 0;
- the scorer's choice (the argmax of its preferences; ties go to the first node in request
  order, so equal inputs give equal answers) gets 10;
- every other valid node gets ``min(9, floor(10 * p / p_max))`` of its preference ``p``
  (policy: action probability; heuristic: ``10 - rank`` for its first ten choices, 0 after).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from ladts_policy.baselines import (
    HEURISTICS,
    GreedyPolicy,
    ResidencyGreedyPolicy,
    SchedulingPolicy,
    SpreadPolicy,
    _argmin_random_ties,
    make_policy,
    residency_cost,
)
from ladts_policy.features import ClusterSnapshot, EncodedFeatures, TaskSpec
from ladts_policy.sim.base import DecisionView
from ladts_policy.snapshot_view import decision_view

MIN_SCORE = 0
"""``MinExtenderPriority``."""

MAX_SCORE = 10
"""``MaxExtenderPriority``."""

HEURISTIC_RANKS = 10
"""Ranks a heuristic is asked for (scores 10 down to 1); other valid nodes score 0."""


@dataclass(frozen=True)
class Scored:
    """A scorer's answer for one decision over ``N`` nodes."""

    preference_N: Sequence[float] | np.ndarray
    """Raw preference per node (probabilities, or ``10 - rank`` for a heuristic)."""

    chosen: int | None
    """Index of the preferred node, None when no node is valid."""

    scorer: str
    """``heuristic:<name>`` or ``onnx``."""

    version: str
    """Policy version (or the heuristic's name)."""

    seed: int | None = None
    """Noise seed of this decision (ONNX), for replay."""

    fallback: str | None = None
    """Why the configured scorer was not used, None when it was."""


class Scorer(Protocol):
    """Turns one encoded decision into preferences."""

    @property
    def name(self) -> str:
        """``heuristic:<name>`` or ``onnx``."""
        ...

    @property
    def version(self) -> str:
        """Version string shown in /metrics and every decision."""
        ...

    def score(
        self,
        snapshot: ClusterSnapshot,
        task: TaskSpec,
        features: EncodedFeatures,
        decision: int,
    ) -> Scored:
        """Score one decision (``decision`` numbers decisions, seeding any noise)."""
        ...


def map_scores(preference_N: Sequence[float] | np.ndarray,
               mask_N: Sequence[bool] | np.ndarray) -> list[int]:
    """Integer extender scores from preferences (see the module docstring)."""
    return list(score_array(preference_N, mask_N).tolist())


def score_array(preference_N: Sequence[float] | np.ndarray,
                mask_N: Sequence[bool] | np.ndarray) -> np.ndarray:
    """Return int64 [N]: :func:`map_scores` as an array."""
    pref_N = np.asarray(preference_N, dtype=float)
    valid_N = np.asarray(mask_N, dtype=bool) & np.isfinite(pref_N)
    out_N = np.zeros(pref_N.shape[0], dtype=np.int64)
    if not valid_N.any():
        return out_N
    best = int(np.argmax(np.where(valid_N, pref_N, -np.inf)))  # first of equal maxima
    top = float(pref_N[best])
    if top > 0:
        ratio_N = np.floor(MAX_SCORE * np.maximum(np.where(valid_N, pref_N, 0.0), 0.0) / top)
        out_N = np.where(valid_N, np.clip(ratio_N, MIN_SCORE, MAX_SCORE - 1), 0).astype(np.int64)
    out_N[best] = MAX_SCORE
    return out_N


class HeuristicScorer:
    """A heuristic of ``ladts_policy.baselines`` over the snapshot (via ``DecisionView``)."""

    def __init__(self, heuristic: str, *, seed: int = 0) -> None:
        if heuristic not in HEURISTICS:
            known = ", ".join(sorted(HEURISTICS))
            raise ValueError(f"unknown heuristic {heuristic!r}; known: {known}")
        self.heuristic = heuristic
        self._policy: SchedulingPolicy = make_policy(heuristic)
        self._policy.reset(num_envs=1, num_nodes=1, seed=seed)
        self._ranker: SchedulingPolicy = copy.deepcopy(self._policy)

    @property
    def name(self) -> str:
        """``heuristic:<name>``."""
        return f"heuristic:{self.heuristic}"

    @property
    def version(self) -> str:
        """The heuristic's name."""
        return self.heuristic

    def score(
        self,
        snapshot: ClusterSnapshot,
        task: TaskSpec,
        features: EncodedFeatures,
        decision: int,
    ) -> Scored:
        """Rank the first ``HEURISTIC_RANKS`` choices by asking the heuristic repeatedly.

        A heuristic that minimises a cost the mask does not change, ties at random
        (:func:`_mask_free_cost`), is asked once for the cost and the ranks are drawn from
        it with the same random numbers its ``act`` would draw (:meth:`_rank_by_cost`):
        the same answer without rebuilding the view ten times
        (``tests/operator/test_heuristic_ranking.py``).
        """
        n = snapshot.num_nodes
        mask_N = np.asarray(features.node_mask_S[:n], dtype=bool).copy()
        view = decision_view(snapshot, mask_N)
        cost_N = _mask_free_cost(self._policy, view)
        if cost_N is not None:
            return self._rank_by_cost(cost_N, mask_N)
        return self._rank_by_acting(view, mask_N)

    def _rank_by_acting(self, view: DecisionView, mask_N: np.ndarray) -> Scored:
        """Ask ``act`` once per rank, masking the nodes already ranked (any heuristic)."""
        n = mask_N.shape[0]
        preference = [0.0] * n
        chosen: int | None = None
        policy = self._policy
        for rank in range(HEURISTIC_RANKS):
            if not mask_N.any():
                break
            view = _with_mask(view, mask_N)
            pick = int(policy.act(view)[0])
            if not mask_N[pick]:
                break
            preference[pick] = float(HEURISTIC_RANKS - rank)
            mask_N[pick] = False
            if rank == 0:
                chosen = pick
                # Later ranks must not advance a stateful heuristic's memory (round-robin):
                # they ask a copy, synced to the policy's state after its real pick.
                policy = self._ranker_after(self._policy)
        return Scored(preference, chosen, self.name, self.version)

    def _rank_by_cost(self, cost_N: np.ndarray, mask_N: np.ndarray) -> Scored:
        """What :meth:`_rank_by_acting` answers for a heuristic of :func:`_mask_free_cost`.

        Rank 0 draws from the policy's generator (as its ``act`` does), later ranks from the
        ranking copy's, synced after that pick; one draw of ``N`` numbers per rank.
        """
        n = mask_N.shape[0]
        preference = [0.0] * n
        chosen: int | None = None
        cost_1N = cost_N[None, :]
        rng = self._policy.rng  # type: ignore[attr-defined]
        for rank in range(HEURISTIC_RANKS):
            if not mask_N.any():
                break
            pick = int(_argmin_random_ties(cost_1N, mask_N[None, :], rng)[0])
            if not mask_N[pick]:
                break
            preference[pick] = float(HEURISTIC_RANKS - rank)
            mask_N[pick] = False
            if rank == 0:
                chosen = pick
                rng = self._ranker_after(self._policy).rng  # type: ignore[attr-defined]
        return Scored(preference, chosen, self.name, self.version)

    def _ranker_after(self, policy: SchedulingPolicy) -> SchedulingPolicy:
        """The ranking copy with ``policy``'s state (cheaper than a deepcopy per decision)."""
        ranker = self._ranker
        for key, value in vars(policy).items():
            if isinstance(value, np.random.Generator):
                getattr(ranker, key).bit_generator.state = value.bit_generator.state
            elif isinstance(value, np.ndarray):
                setattr(ranker, key, value.copy())
            else:
                setattr(ranker, key, copy.deepcopy(value))
        return ranker


def _mask_free_cost(policy: SchedulingPolicy, view: DecisionView) -> np.ndarray | None:
    """Return float [N]: the cost ``policy.act`` minimises (ties at random), None if unknown.

    Only for the heuristics whose ``act`` is ``_argmin_random_ties(cost, mask, rng)`` with a
    cost that does not depend on the mask (their own code in ``ladts_policy/baselines.py``);
    exact classes, so a subclass that changes ``act`` takes the general path.
    """
    kind = type(policy)
    if kind is ResidencyGreedyPolicy:
        assert isinstance(policy, ResidencyGreedyPolicy)
        return np.asarray(residency_cost(view, policy.amortise, policy.evict)[0])
    if kind is GreedyPolicy:
        return np.asarray(view.expected_delay_EN[0])
    if kind is SpreadPolicy:
        return np.asarray(view.requested_fraction_EN[0])
    return None


def _with_mask(view: DecisionView, mask_N: np.ndarray) -> DecisionView:
    return replace(view, node_mask_EN=mask_N[None, :].copy(),
                   active_E=np.array([bool(mask_N.any())]))
