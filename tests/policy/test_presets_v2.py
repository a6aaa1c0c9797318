"""Residency drawn per episode and model-popularity drift (issue 6, presets)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ladts_policy.sim.config.cluster_config import DriftSpec, ResidencySpec
from ladts_policy.sim.config.errors import ScenarioError
from ladts_policy.sim.config.scenario import load_scenario, parse_scenario
from ladts_policy.sim.dynamics.workload import draw_residency, draw_workload, episode_generators


def test_random_residency_differs_per_episode_and_fits_memory() -> None:
    config = load_scenario("k8s-edge").cluster
    assert config.residency.mode == "random" and config.drift.enabled
    nodes = config.expand_nodes()
    draws = [draw_residency(config, nodes, seed) for seed in range(6)]
    assert len({tuple(n.resident for n in d) for d in draws}) == 6
    for drawn in draws:
        for node in drawn:
            assert len(node.resident) <= config.residency.max_models
            assert all(node.profile.can_run(m) for m in node.resident)
            used = sum(node.profile.timings[m].memory_gib for m in node.resident)
            assert used <= node.profile.vram_gib
    assert draws[0] == draw_residency(config, nodes, 0)  # reproducible
    fixed = dataclasses.replace(config, residency=ResidencySpec(mode="fixed"))
    assert draw_residency(fixed, nodes, 3) == nodes


def test_drift_rolls_a_model_out() -> None:
    base = load_scenario("k8s-edge").cluster
    config = dataclasses.replace(base, drift=DriftSpec(
        enabled=True, model="sdxl-turbo", initial_share=0.0, start_fraction=(0.5, 0.5),
        ramp_s=1.0))
    m = config.model_names.index("sdxl-turbo")
    work = draw_workload(config, episode_generators(4)[0])
    early = work.model_T[work.arrival_s_T < 1800.0]
    late = work.model_T[work.arrival_s_T > 1801.0]
    assert not np.any(early == m)
    share = np.mean(late == m)
    expected = config.models[m].weight / sum(x.weight for x in config.models)
    assert share == pytest.approx(expected, abs=0.04)


def test_drift_model_must_be_in_the_mix() -> None:
    text = """
kind: k8s-edge
name: t
cluster:
  horizon_s: 60
  arrivals: {rate_per_s: 1}
  models:
    - {name: sd15, weight: 1, steps: [1, 2]}
  nodes:
    - {profile: a10, count: 1}
  drift: {enabled: true, model: nope}
"""
    with pytest.raises(ScenarioError, match=r"drift\.model"):
        parse_scenario(text, origin="t.yaml")
