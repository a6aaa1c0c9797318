"""A Gymnasium ``VectorEnv`` over the lockstep ``k8s-edge`` simulator, on the encoded features.

``E`` environments step together; observations are batched ``Dict`` arrays (``nodes``
float32 [E, S, F], ``task`` [E, T], ``global`` [E, G], ``node_mask`` int8 [E, S]).
:meth:`ClusterVectorEnv.action_masks` gives bool [E, S]. A masked action is **rejected**
(``ValueError``), never redirected. An environment whose episode ends reports
``terminated`` and starts its next episode at once (autoreset in the same step: the returned
observation is the new episode's first); its final delay is the reward of that step.
Reward: minus the placed pod's delay in seconds.

The environments run on the vectorised simulator
(:class:`~ladts_policy.sim.dynamics.cluster_vec.VecClusterSimulator`) with the batched encoder
(``VecClusterSimulator.encode_all``, compiled; the same values as
:func:`ladts_policy.features_batch.encode_batch`) wherever it applies (one pod per node,
time-sliced: every preset), else on the reference ``ClusterSimulator`` with
:func:`ladts_policy.features.encode` per environment; both give the same observations.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from ladts_policy.contract import SPEC
from ladts_policy.features import encode
from ladts_policy.sim.config.cluster_config import ClusterConfig
from ladts_policy.sim.dynamics.cluster import ClusterSimulator
from ladts_policy.sim.dynamics.cluster_vec import VecClusterSimulator, make_cluster_simulator

_HIGH = 1e6


class ClusterVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` ``k8s-edge`` episodes in lockstep (module docstring).

    ``threads``: numba threads of the vectorised simulator (``VecClusterSimulator``).
    """

    def __init__(self, config: ClusterConfig, *, num_envs: int,
                 node_slots: int | None = None, threads: int = 1) -> None:
        self.sim: VecClusterSimulator | ClusterSimulator = make_cluster_simulator(
            config, num_envs=num_envs, threads=threads)
        self.num_envs = num_envs
        self.node_slots = node_slots or self.sim.num_nodes
        if self.node_slots < self.sim.num_nodes:
            raise ValueError(f"node_slots {self.node_slots} < {self.sim.num_nodes} nodes")
        dims, box = SPEC.dims, gym.spaces.Box
        self._spaces: dict[str, gym.spaces.Box] = {
            "nodes": box(0.0, _HIGH, (self.node_slots, dims["node"]), np.float32),
            "task": box(0.0, _HIGH, (dims["task"],), np.float32),
            "global": box(0.0, _HIGH, (dims["global"],), np.float32),
            "node_mask": box(0, 1, (self.node_slots,), np.int8),
        }
        self.single_observation_space = gym.spaces.Dict(dict(self._spaces))
        self.single_action_space = gym.spaces.Discrete(self.node_slots)
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, num_envs)
        self.action_space = gym.spaces.MultiDiscrete([self.node_slots] * num_envs)
        self._mask_ES = np.zeros((num_envs, self.node_slots), dtype=bool)
        self._rng = np.random.default_rng()

    def _next_seed(self) -> int:
        return int(self._rng.integers(2**31 - 1))

    def _observe(self) -> dict[str, np.ndarray]:
        if isinstance(self.sim, VecClusterSimulator):
            batch = self.sim.encode_all(node_slots=self.node_slots)
            self._mask_ES = batch.node_mask_ES
            return {"nodes": batch.node_rows_ESF, "task": batch.task_ET,
                    "global": batch.global_EG, "node_mask": batch.node_mask_ES.astype(np.int8)}
        obs = {k: np.zeros((self.num_envs, *v.shape), v.dtype)
               for k, v in self._spaces.items()}
        for e in range(self.num_envs):
            enc = encode(*self.sim.snapshot(e), node_slots=self.node_slots)
            obs["nodes"][e], obs["task"][e], obs["global"][e] = (
                enc.node_rows_SF, enc.task_T, enc.global_G)
            obs["node_mask"][e] = enc.node_mask_S
            self._mask_ES[e] = enc.node_mask_S
        return obs

    def action_masks(self) -> np.ndarray:
        """Return bool [E, S]: the valid node slots of each environment's pending pod."""
        return self._mask_ES.copy()

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start one episode per environment (seeds drawn from ``seed``)."""
        self._rng = np.random.default_rng(seed if not isinstance(seed, list) else seed[0])
        seeds = [self._next_seed() for _ in range(self.num_envs)]
        self.sim.reset(seeds)
        return self._observe(), {"episode_seed": np.array(seeds)}

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Place every environment's pending pod; reject masked actions.

        Raises:
            ValueError: an action is outside its environment's mask (nothing is changed).
        """
        actions_E = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)
        rows = np.arange(self.num_envs)
        inside = (actions_E >= 0) & (actions_E < self.node_slots)
        valid = inside & self._mask_ES[rows, np.clip(actions_E, 0, self.node_slots - 1)]
        if not valid.all():
            bad = int(np.flatnonzero(~valid)[0])
            raise ValueError(f"env {bad}: action {int(actions_E[bad])} is masked")
        if isinstance(self.sim, VecClusterSimulator):
            delay_E = self.sim.place(actions_E)  # the observation is encoded, not viewed
            done_E = ~self.sim.active_E
        else:
            delay_E, _ = self.sim.step(actions_E)
            done_E = np.array([env.task < 0 for env in self.sim.envs])
        for e in np.flatnonzero(done_E):
            self.sim.reset_env(int(e), self._next_seed())
        if done_E.any() and not isinstance(self.sim, VecClusterSimulator):
            self.sim.current_view()  # refresh the simulator's own mask after the autoreset
        info = {"delay_s": delay_E}
        return (self._observe(), -delay_E, done_E, np.zeros(self.num_envs, dtype=bool), info)
