"""The interface every simulator offers to schedulers, evaluation and (later) training.

A simulator steps ``E`` independent environments (episodes) in lockstep, one task-placement
decision per environment per step. At each step it publishes a :class:`DecisionView`, the
facts a scheduler may look at, and takes one node index per environment. Both simulators in
this package use a placement-on-arrival, FIFO-per-node service discipline, so the service
delay of a task is fixed when it is placed: ``step`` returns it at once, which is the reward
(negated) of that decision.

Shapes: ``E`` environments, ``N`` node slots (padded; ``node_mask`` tells which exist).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class DecisionView:
    """What a scheduler may see at one decision, for ``E`` environments and ``N`` node slots."""

    active_E: np.ndarray
    """bool [E]: the environment has a task to place at this step (others ignore the action)."""

    node_mask_EN: np.ndarray
    """bool [E, N]: the node exists, is schedulable and can ever serve the task (e.g. the
    model fits in its GPU memory). Every active row has at least one True."""

    capacity_EN: np.ndarray
    """float [E, N]: nominal processing speed of the node (paper: GHz; k8s-edge: denoising
    steps per second for the task's model). Used by capacity-weighted random."""

    queue_len_EN: np.ndarray
    """float [E, N]: the node's queue, this task excluded: unfinished pods (k8s-edge) or the
    backlog ``Q + Q̃`` in Gcycles (paper, whose model has no task count)."""

    expected_delay_EN: np.ndarray
    """float [E, N], seconds: the service delay this task would get on each node, as the
    scheduler can estimate it (the greedy / Opt-TS objective). ``paper``: exact (the paper's
    model). ``k8s-edge``: an estimate from observable state only (the node's bound pods,
    profile times corrected from completions, the last scrape's loaded models); the
    realised delay differs when the scenario's ``uncertainty`` is on."""

    requested_fraction_EN: np.ndarray
    """float [E, N] in [0, 1]: share of the node's allocatable resources requested by the
    unfinished pods bound to it plus the pod being placed, as kube-scheduler's
    NodeResourcesFit (LeastAllocated) scores it (0 where the model has no notion of requests)."""

    local_node_E: np.ndarray
    """int [E]: the task's local server (paper preset: its base station), -1 if none."""

    cold_EN: np.ndarray | None = None
    """bool [E, N]: placing the task there would load its model (a cold start), as the
    scheduler estimates it; None where the scenario has no model residency (paper)."""

    load_s_EN: np.ndarray | None = None
    """float [E, N]: estimated load time of the task's model there, s (None: no residency)."""

    evict_cost_EN: np.ndarray | None = None
    """float [E, N], seconds: what a cold placement there would take from later requests:
    ``sum over the models k it would evict of popularity(k) x estimated load_s(k) there``
    (0 where nothing is evicted; None: no residency)."""

    popularity_E: np.ndarray | None = None
    """float [E]: share of the task's model among the requests of the last
    ``POPULARITY_WINDOW_S`` seconds (``ladts_policy.sim.dynamics.cluster``; None: no residency)."""
    task_size_E: np.ndarray | None = None
    """float [E]: the pending task's size in the simulator's work unit (paper: workload
    ``w_n`` in Gcycles; 0 where inactive), or ``None`` where the simulator does not say.
    Drives per-size reports and size-aware heuristics."""

    @property
    def num_envs(self) -> int:
        """Number of environments ``E``."""
        return int(self.active_E.shape[0])

    @property
    def num_nodes(self) -> int:
        """Number of node slots ``N``."""
        return int(self.node_mask_EN.shape[1])


class VecSimulator(Protocol):
    """A vectorised simulator of task placement in an edge network."""

    @property
    def num_envs(self) -> int:
        """Number of environments stepped together."""
        ...

    @property
    def num_nodes(self) -> int:
        """Number of node slots (the width of every per-node array)."""
        ...

    def reset(self, seeds: list[int]) -> DecisionView:
        """Start one episode per seed (``len(seeds) == num_envs``); return the first view."""
        ...

    def step(self, actions_E: np.ndarray) -> tuple[np.ndarray, DecisionView | None]:
        """Place the pending task of every active environment on ``actions_E[e]``.

        Returns the service delay (seconds) of each placed task (NaN where the environment
        was inactive) and the next view, or ``None`` once every episode has ended.
        """
        ...
