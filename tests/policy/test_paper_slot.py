"""``PaperSimulator.step_slot`` places a whole slot exactly as per-decision ``step`` does."""

from __future__ import annotations

import numpy as np
import pytest

from ladts_policy.sim.dynamics.paper import PaperConfig, PaperSimulator


def _play_per_decision(config: PaperConfig, seeds: list[int], actions_TEBK: np.ndarray
                       ) -> list[np.ndarray]:
    """Reference: the published per-task order through ``step``; delays per slot [E, B, K]."""
    sim = PaperSimulator(config, num_envs=len(seeds))
    view = sim.reset(seeds)
    e, b, k = len(seeds), config.num_nodes, config.max_tasks
    out = [np.full((e, b, k), np.nan) for _ in range(config.num_slots - 1)]
    ar_E = np.arange(e)
    while view is not None:
        slot_E, bs_E, pos_E = sim.decision_key()
        act_E = actions_TEBK[np.minimum(slot_E, len(actions_TEBK) - 1), ar_E, bs_E, pos_E]
        delay_E, view = sim.step(act_E.astype(np.int64))
        for env in np.flatnonzero(~np.isnan(delay_E)):
            out[slot_E[env]][env, bs_E[env], pos_E[env]] = delay_E[env]
    return out


@pytest.mark.parametrize("stream", ["native", "published"])
def test_step_slot_matches_step_bit_for_bit(stream: str) -> None:
    config = PaperConfig(num_slots=6, arrival_stream=stream)
    seeds = [0, 3, 7]
    rng = np.random.default_rng(1)
    e, b, k = len(seeds), config.num_nodes, config.max_tasks
    actions_TEBK = rng.integers(0, b, size=(config.num_slots, e, b, k))
    reference = _play_per_decision(config, seeds, actions_TEBK)
    sim = PaperSimulator(config, num_envs=e)
    view = sim.reset(seeds)
    got: list[np.ndarray] = []
    slot = 0
    while view is not None:
        count_EB, _ = sim.slot_arrivals()
        delay_EBK, view = sim.step_slot(actions_TEBK[slot])
        assert np.array_equal(np.isnan(delay_EBK).sum(axis=2), k - count_EB)
        got.append(delay_EBK)
        slot += 1
    assert len(got) == len(reference) == config.num_slots - 1
    for mine, ref in zip(got, reference, strict=True):
        np.testing.assert_array_equal(mine, ref)


def test_step_slot_refuses_mid_slot() -> None:
    sim = PaperSimulator(PaperConfig(num_slots=3), num_envs=1)
    sim.reset([0])
    sim.step(np.zeros(1, dtype=np.int64))
    with pytest.raises(RuntimeError, match="start of a slot"):
        sim.step_slot(np.zeros((1, 20, 50), dtype=np.int64))


def test_view_reports_task_size() -> None:
    sim = PaperSimulator(PaperConfig(num_slots=3), num_envs=2)
    view = sim.reset([0, 1])
    _, _, pos_E = sim.decision_key()
    assert view.task_size_E is not None
    np.testing.assert_array_equal(view.task_size_E, sim.constants.workload_K[pos_E])
