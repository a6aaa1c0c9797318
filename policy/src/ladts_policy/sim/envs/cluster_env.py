"""A single-environment Gymnasium view of the ``k8s-edge`` simulator, on the encoded features.

Observation (``S = node_slots``): a ``Dict`` with ``nodes`` float32 [S, F], ``task`` float32
[T], ``global`` float32 [G] (see :mod:`ladts_policy.features`) and ``node_mask`` int8 [S].
Action: ``Discrete(S)``, the node slot. Reward: minus the placed pod's service delay in
seconds. An episode ends (``terminated``) when every request of the horizon is placed.

An action on a masked slot is not an error: it is redirected to the next valid slot
(cyclically) and ``info["invalid_action"]`` is set, so generic agents and ``check_env`` can
act uniformly at random. Learners should use the mask instead.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from ladts_policy.contract import SPEC
from ladts_policy.features import EncodedFeatures, encode
from ladts_policy.sim.config.cluster_config import ClusterConfig
from ladts_policy.sim.dynamics.cluster import ClusterSimulator

_HIGH = 1e6
"""Upper bound of the feature boxes (every encoded feature is >= 0 and far below this)."""


class ClusterEnv(gym.Env[dict[str, Any], np.int64]):
    """One ``k8s-edge`` episode per ``reset``; one placement decision per ``step``."""

    metadata = {"render_modes": []}  # noqa: RUF012 (Gymnasium declares it per class)

    def __init__(self, config: ClusterConfig, *, node_slots: int | None = None) -> None:
        self.sim = ClusterSimulator(config, num_envs=1)
        self.node_slots = node_slots or self.sim.num_nodes
        if self.node_slots < self.sim.num_nodes:
            raise ValueError(f"node_slots {self.node_slots} < {self.sim.num_nodes} nodes")
        dims = SPEC.dims
        box = gym.spaces.Box
        self._spaces = gym.spaces.Dict(
            {
                "nodes": box(0.0, _HIGH, (self.node_slots, dims["node"]), np.float32),
                "task": box(0.0, _HIGH, (dims["task"],), np.float32),
                "global": box(0.0, _HIGH, (dims["global"],), np.float32),
                "node_mask": box(0, 1, (self.node_slots,), np.int8),
            }
        )
        self.observation_space = self._spaces
        self.action_space = gym.spaces.Discrete(self.node_slots)
        self._last: EncodedFeatures | None = None

    def _observe(self) -> dict[str, np.ndarray]:
        snapshot, task = self.sim.snapshot(0)
        self._last = encode(snapshot, task, node_slots=self.node_slots)
        return {
            "nodes": self._last.node_rows_SF,
            "task": self._last.task_T,
            "global": self._last.global_G,
            "node_mask": self._last.node_mask_S.astype(np.int8),
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode; without ``seed``, draw one from the env's ``np_random``."""
        super().reset(seed=seed)
        episode_seed = int(self.np_random.integers(2**31 - 1))
        self.sim.reset([episode_seed])
        return self._observe(), {"episode_seed": episode_seed}

    def step(
        self, action: np.int64 | int
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Place the pending pod on slot ``action``; reward is minus its delay (seconds)."""
        if self._last is None:
            raise RuntimeError("call reset() before step()")
        mask_S = self._last.node_mask_S
        slot = int(action)
        invalid = not (0 <= slot < self.node_slots and mask_S[slot])
        if invalid:
            order = (np.arange(self.node_slots) - slot) % self.node_slots
            slot = int(np.argmin(np.where(mask_S, order, self.node_slots + 1)))
        delay_E, view = self.sim.step(np.array([slot]))
        delay = float(delay_E[0])
        info = {"delay_s": delay, "node": slot, "invalid_action": invalid}
        if view is None:
            self._last = None
            spaces = self._spaces.spaces
            empty = {k: np.zeros(v.shape or (), v.dtype) for k, v in spaces.items()}
            return empty, -delay, True, False, info
        return self._observe(), -delay, False, False, info
