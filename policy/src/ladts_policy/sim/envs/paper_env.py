"""Gymnasium wrapper of the paper simulator: one environment, the paper agent's state."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium
import numpy as np

from ladts_policy.sim.dynamics.paper import PaperConfig, PaperSimulator


class PaperEnv(gymnasium.Env[np.ndarray, np.int64]):
    """One DEdgeAI episode as a Gymnasium environment, one decision per step.

    Observation: the paper state ``[d_n, w_n, Q_1..Q_B]`` (float32, ``2 + B``). Action: the
    ES index. Reward: ``-D`` (seconds). ``terminated`` after the episode's last decision
    (the final observation is zeros). ``reset(seed=s)`` plays episode seed ``s``; a reset
    without a seed plays the next episode seed (``s + 1``, …; 0 if never seeded), so repeated
    resets walk the published episode sequence in ``published`` mode. ``info`` carries the
    ``delay`` of the last decision and the ``slot``, ``bs`` and ``position`` of the pending
    task.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's class attr)

    def __init__(self, config: PaperConfig | None = None) -> None:
        self.config = config if config is not None else PaperConfig()
        self.sim = PaperSimulator(self.config, num_envs=1)
        b = self.config.num_nodes
        self.observation_space = gymnasium.spaces.Box(
            low=np.zeros(2 + b, dtype=np.float32), high=_state_bound(self.sim), dtype=np.float32
        )
        self.action_space = gymnasium.spaces.Discrete(b)
        self._next_seed = 0
        self._running = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode (see the class docstring for how seeds advance)."""
        super().reset(seed=seed)
        episode_seed = self._next_seed if seed is None else int(seed)
        self._next_seed = episode_seed + 1
        self.sim.reset([episode_seed])
        self._running = True
        return self.sim.paper_state()[0], self._info(float("nan"))

    def step(
        self, action: np.int64 | int
    ) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Place the pending task on ES ``action``; reward is minus its service delay."""
        if not self._running:
            raise RuntimeError("call reset() before step()")
        delay_E, view = self.sim.step(np.asarray([action], dtype=np.int64))
        delay = float(delay_E[0])
        terminated = view is None
        self._running = not terminated
        obs = self.sim.paper_state()[0]
        return obs, -delay, terminated, False, self._info(delay)

    def _info(self, delay: float) -> dict[str, Any]:
        slot_E, bs_E, pos_E = self.sim.decision_key()
        return {
            "delay": delay,
            "slot": int(slot_E[0]),
            "bs": int(bs_E[0]),
            "position": int(pos_E[0]),
        }


def _state_bound(sim: PaperSimulator) -> np.ndarray:
    """float32 [2 + B]: finite upper bounds of the paper state.

    A backlog can at most hold every task of the episode (no drain at all).
    """
    c, cfg = sim.constants, sim.config
    max_work = float(c.workload_K.max())
    backlog = cfg.num_slots * cfg.num_nodes * cfg.max_tasks * max_work
    head = [cfg.input_mbit[1], max_work]
    return np.asarray(head + [backlog] * cfg.num_nodes, dtype=np.float32)
