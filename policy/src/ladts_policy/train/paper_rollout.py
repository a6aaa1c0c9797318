"""The ``paper`` simulator as agent data: one slot of every lane at a time.

The paper's state ``[d_n, w_n, Q(t)]`` uses the backlog at the *start* of the slot, so every
decision of a slot can be made in one batched forward pass before any task is placed, and
the slot is then placed at once with :meth:`PaperSimulator.step_slot` (bit-identical to the
per-task order). Updating all agents after the slot instead of each agent after its own
turn changes nothing: the agents share no parameters and each agent's next decision is in
the next slot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ladts_policy.sim.dynamics.paper import PaperConfig, PaperSimulator
from ladts_policy.train.paper_features import paper_features, state_width


@dataclass(frozen=True)
class SlotObservation:
    """The decisions of one slot in every lane."""

    slot: int
    """Slot index (the first key of the latent memory)."""
    state_EBKF: np.ndarray
    """float32 [E, B, K, F]: the state of task ``k`` of BS ``b`` (zeros where no task)."""
    mask_EBK: np.ndarray
    """bool [E, B, K]: the task exists."""


class PaperSlotRollout:
    """``E`` lanes of the paper simulator, observed and stepped one slot at a time."""

    def __init__(self, config: PaperConfig, lanes: int, *, scale_s: float,
                 state: str = "paper") -> None:
        self.sim = PaperSimulator(config, num_envs=lanes)
        self.constants = self.sim.constants
        self.scale_s = scale_s
        self.lanes = lanes
        self.agents = config.num_nodes
        self.num_actions = config.num_nodes
        self.max_tasks = config.max_tasks
        self.decision_slots = config.num_slots - 1
        self.state_kind = state
        self.state_dim = state_width(config.num_nodes, state)
        self._slot = 0
        self._done = True

    def reset(self, seeds: list[int]) -> None:
        """Start one episode per lane."""
        self.sim.reset(seeds)
        self._slot, self._done = 0, False

    def observe(self) -> SlotObservation | None:
        """The current slot's decisions, or ``None`` once the episodes have ended."""
        if self._done:
            return None
        count_EB, input_EBK = self.sim.slot_arrivals()
        mask_EBK = np.arange(self.max_tasks) < count_EB[:, :, None]
        e, b, k = mask_EBK.shape
        work_EBK = np.broadcast_to(self.constants.workload_K, (e, b, k))
        backlog_EBKN = np.broadcast_to(self.sim.backlog_EN[:, None, None, :], (e, b, k, b))
        state = paper_features(input_EBK.reshape(-1), work_EBK.reshape(-1),
                               backlog_EBKN.reshape(-1, b), self.constants, self.scale_s)
        state_EBKF = state.reshape(e, b, k, -1)
        if self.state_kind == "extended":  # the Q̃ block is filled decision by decision
            state_EBKF = np.concatenate([state_EBKF, np.zeros((e, b, k, b), np.float32)], -1)
        state_EBKF[~mask_EBK] = 0.0
        return SlotObservation(self._slot, state_EBKF, mask_EBK)

    def in_slot_features(self, in_slot_EN: np.ndarray) -> np.ndarray:
        """The scaled ``Q̃`` block of the extended state, float32 [E, B]."""
        return (in_slot_EN / (self.constants.capacity_N * self.scale_s)).astype(np.float32)

    def step(self, action_EBK: np.ndarray) -> np.ndarray:
        """Place the slot; return the service delays [E, B, K] (NaN where no task)."""
        delay_EBK, view = self.sim.step_slot(action_EBK)
        self._slot += 1
        self._done = view is None
        return delay_EBK
