"""The k8s-edge Gymnasium VectorEnv: masks, rejection, autoreset."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ladts_policy.sim.config.scenario import load_scenario
from ladts_policy.sim.envs.cluster_vector_env import ClusterVectorEnv


def test_vector_env_masks_rejects_and_autoresets() -> None:
    config = dataclasses.replace(load_scenario("k8s-edge").cluster, horizon_s=30.0)
    env = ClusterVectorEnv(config, num_envs=3, node_slots=24)
    obs, _ = env.reset(seed=1)
    assert obs["nodes"].shape == (3, 24, env.single_observation_space["nodes"].shape[1])
    assert env.observation_space.contains(obs)
    rng = np.random.default_rng(0)
    ended = np.zeros(3, dtype=int)
    for _ in range(200):
        mask = env.action_masks()
        assert mask.shape == (3, 24) and mask.any(axis=1).all() and not mask[:, 20:].any()
        np.testing.assert_array_equal(mask, obs["node_mask"].astype(bool))
        bad = int(np.flatnonzero(~mask[1])[0])
        with pytest.raises(ValueError, match="env 1"):
            env.step(np.array([int(np.flatnonzero(mask[0])[0]), bad, 0]))
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in mask])
        obs, reward, terminated, truncated, _ = env.step(actions)
        assert np.all(reward < 0) and not truncated.any()
        ended += terminated
    assert ended.min() >= 1  # every environment finished an episode and started another
