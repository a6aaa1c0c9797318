"""Invariants of the DEdgeAI (paper) simulator: formula, queues, masks, seeds, Gymnasium."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from ladts_policy.baselines import make_policy
from ladts_policy.sim.base import DecisionView
from ladts_policy.sim.config.errors import ScenarioError
from ladts_policy.sim.dynamics.paper import ARRIVAL_STREAM_TAG, PaperConfig, PaperSimulator
from ladts_policy.sim.envs.paper_env import PaperEnv

PUBLISHED_CAPACITY = [50, 25, 18, 32, 28, 21, 50, 17, 44, 41]
PUBLISHED_CAPACITY += [21, 31, 41, 36, 30, 47, 49, 13, 48, 14]

# A fully deterministic toy: one task per BS per slot, every attribute a constant.
# d = 4 Mbit, w = 0.5 * 2 = 1 Gcycle, r = 0.5 Mbit, f = 10 GHz, R = 400 Mbit/s,
# drain per slot f * slot_s = 1 Gcycle.
TOY = {
    "num_nodes": 3,
    "num_slots": 3,
    "slot_s": 0.1,
    "max_tasks": 1,
    "input_mbit": [4.0, 4.0],
    "denoising_steps": [2, 2],
    "density_gcycles": [0.5, 0.5],
    "result_mbit": [0.5, 0.5],
    "capacity_ghz": [10, 10],
    "rate_mbps": [400, 400],
}
SMALL = {"num_nodes": 4, "num_slots": 5, "max_tasks": 6}


def play(sim: PaperSimulator, policy: str, seeds: list[int]) -> np.ndarray:
    """Run a heuristic to the end; return the delays as [steps, E] (NaN where inactive)."""
    pol = make_policy(policy)
    pol.reset(num_envs=sim.num_envs, num_nodes=sim.num_nodes, seed=7)
    view: DecisionView | None = sim.reset(seeds)
    rows = []
    while view is not None:
        delay_E, view = sim.step(pol.act(view))
        rows.append(delay_E)
    return np.asarray(rows)


# --- configuration ----------------------------------------------------------------------


def test_defaults_and_realised_constants_are_the_published_ones() -> None:
    sim = PaperSimulator(PaperConfig(), num_envs=1)
    c = sim.constants
    assert c.capacity_N.tolist() == PUBLISHED_CAPACITY
    assert c.capacity_N.sum() == 656
    assert c.rate_N.tolist() == np.random.RandomState(5).randint(400, 501, 20).tolist()
    assert c.steps_K.min() >= 1 and c.steps_K.max() <= 14
    np.testing.assert_array_equal(c.workload_K, c.density_K * c.steps_K)
    assert 0.17 < c.workload_K.min() and c.workload_K.max() < 4.0
    assert c.workload_K.mean() == pytest.approx(1.62, abs=0.01)
    # density and result size come from the same seed-1 uniforms (a published quirk)
    u_K = (c.density_K - 0.1024) / 0.2048
    np.testing.assert_allclose(c.result_K, 0.6 + 0.4 * u_K)
    assert sim.num_nodes == 20


def test_from_mapping_defaults_and_roundtrip() -> None:
    assert PaperConfig.from_mapping({}) == PaperConfig()
    cfg = PaperConfig.from_mapping({"capacity_ghz": [10, 20], "arrival_stream": "published"})
    assert cfg.capacity_ghz == (10, 20) and cfg.arrival_stream == "published"


@pytest.mark.parametrize(
    ("mapping", "field"),
    [
        ({"num_nodes": 0}, "paper.num_nodes"),
        ({"num_nodes": 2.5}, "paper.num_nodes"),
        ({"num_nodes": True}, "paper.num_nodes"),
        ({"num_slots": 1}, "paper.num_slots"),
        ({"slot_s": 0}, "paper.slot_s"),
        ({"slot_s": "1"}, "paper.slot_s"),
        ({"input_mbit": [5.0, 2.0]}, "paper.input_mbit"),
        ({"input_mbit": [1, 2, 3]}, "paper.input_mbit"),
        ({"capacity_ghz": [0, 50]}, "paper.capacity_ghz"),
        ({"denoising_steps": [1.5, 3]}, "paper.denoising_steps"),
        ({"arrival_stream": "global"}, "paper.arrival_stream"),
        ({"rate_seed": -1}, "paper.rate_seed"),
        ({"rate_seed": 2**32}, "paper.rate_seed"),
        ({"num_node": 20}, "num_node"),
    ],
)
def test_from_mapping_rejects_bad_fields(mapping: dict[str, object], field: str) -> None:
    with pytest.raises(ScenarioError, match=field.replace(".", r"\.")):
        PaperConfig.from_mapping(mapping)


def test_from_mapping_rejects_a_non_mapping() -> None:
    with pytest.raises(ScenarioError, match="paper"):
        PaperConfig.from_mapping([1, 2])  # type: ignore[arg-type]


# --- the delay formula, Q̃ and the queue update, by hand -----------------------------------


def test_hand_computed_delays_queues_and_state() -> None:
    sim = PaperSimulator(PaperConfig.from_mapping(TOY), num_envs=2)
    first = sim.reset([0, 1])
    up, comp, ret = 4.0 / 400, 1.0 / 10, 0.5 / 400
    # slot 0, BS 0, nothing queued: local = compute + return, remote adds the upload
    want_N = np.array([comp + ret, up + comp + ret, up + comp + ret])
    np.testing.assert_allclose(first.expected_delay_EN[0], want_N)
    np.testing.assert_array_equal(first.local_node_E, [0, 0])
    view: DecisionView | None = first
    np.testing.assert_allclose(sim.paper_state()[0], [4.0, 1.0, 0, 0, 0])
    # env 0 sends everything to ES 1, env 1 keeps everything local
    expected_env0 = [
        up + comp + ret,  # slot 0, BS 0 -> 1
        comp + ret + 1.0 / 10,  # BS 1 -> 1 (local), Q̃_1 = 1
        up + comp + ret + 2.0 / 10,  # BS 2 -> 1, Q̃_1 = 2
        # end of slot: Q_1 = max(0 + 3 - 10 * 0.1, 0) = 2
        up + comp + ret + 2.0 / 10,  # slot 1, BS 0 -> 1, Q_1 = 2, Q̃_1 = 0
        comp + ret + 3.0 / 10,  # BS 1 -> 1 (local), Q + Q̃ = 3
        up + comp + ret + 4.0 / 10,  # BS 2 -> 1
    ]
    local = comp + ret  # env 1: one task per ES per slot, drained each slot
    for i, d0 in enumerate(expected_env0):
        bs = i % 3
        if i == 3:  # start of slot 1
            np.testing.assert_allclose(sim.backlog_EN[0], [0.0, 2.0, 0.0])
            np.testing.assert_allclose(sim.in_slot_EN[0], 0.0)
            np.testing.assert_allclose(sim.paper_state()[0], [4.0, 1.0, 0.0, 2.0, 0.0])
            np.testing.assert_allclose(sim.backlog_EN[1], 0.0)
        assert view is not None
        np.testing.assert_allclose(view.queue_len_EN, sim.backlog_EN + sim.in_slot_EN)
        delay_E, view = sim.step(np.array([1, bs]))
        np.testing.assert_allclose(delay_E, [d0, local])
    assert view is None  # slot 2 = T - 1 has no decisions


def test_expected_delay_is_the_formula_for_every_es() -> None:
    sim = PaperSimulator(PaperConfig(), num_envs=3)
    c = sim.constants
    pol = make_policy("random")
    pol.reset(num_envs=3, num_nodes=20, seed=1)
    view: DecisionView | None = sim.reset([4, 5, 6])
    for _ in range(700):  # crosses a slot boundary
        assert view is not None
        _, bs_E, pos_E = sim.decision_key()
        d_E = sim.paper_state()[:, 0].astype(float)
        up_EN = np.where(np.arange(20) == bs_E[:, None], 0.0, 1.0) * d_E[:, None] / c.rate_N
        want_EN = (
            up_EN
            + c.workload_K[pos_E, None] / c.capacity_N
            + c.result_K[pos_E, None] / c.rate_N
            + (sim.backlog_EN + sim.in_slot_EN) / c.capacity_N
        )
        np.testing.assert_allclose(view.expected_delay_EN, want_EN, rtol=1e-6)
        view = sim.step(pol.act(view))[1]


def test_in_slot_work_accumulates_and_queues_update_at_slot_end() -> None:
    sim = PaperSimulator(PaperConfig(), num_envs=2)
    c = sim.constants
    pol = make_policy("capacity-weighted")
    pol.reset(num_envs=2, num_nodes=20, seed=3)
    view: DecisionView | None = sim.reset([0, 1])
    slot_ends = 0
    for _ in range(2500):
        assert view is not None
        slot_E, _, pos_E = sim.decision_key()
        q_EN, qt_EN = sim.backlog_EN, sim.in_slot_EN
        action_E = pol.act(view)
        view = sim.step(action_E)[1]
        added_EN = np.zeros_like(qt_EN)
        added_EN[np.arange(2), action_E] = c.workload_K[pos_E]
        new_slot_E = sim.decision_key()[0] > slot_E
        for e in range(2):
            if new_slot_E[e]:
                slot_ends += 1
                want_N = np.maximum(q_EN[e] + (qt_EN[e] + added_EN[e]) - c.capacity_N, 0.0)
                np.testing.assert_allclose(sim.backlog_EN[e], want_N)
                np.testing.assert_array_equal(sim.in_slot_EN[e], 0.0)
            else:
                np.testing.assert_array_equal(sim.backlog_EN[e], q_EN[e])
                np.testing.assert_allclose(sim.in_slot_EN[e], qt_EN[e] + added_EN[e])
    assert slot_ends >= 4
    assert (sim.backlog_EN > 0).any()  # overloaded: queues build up


# --- lockstep, masks, view contract -------------------------------------------------------


def _native_decisions(seed: int, cfg: PaperConfig) -> int:
    """Independent oracle: the number of decisions of one native episode."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, ARRIVAL_STREAM_TAG]))
    total = 0
    for _ in range(cfg.num_slots - 1):
        count_B = rng.integers(1, cfg.max_tasks + 1, size=cfg.num_nodes)
        rng.uniform(*cfg.input_mbit, size=int(count_B.sum()))
        total += int(count_B.sum())
    return total


def test_lockstep_masks_and_episode_lengths() -> None:
    cfg = PaperConfig.from_mapping(SMALL)
    seeds = [0, 1, 2, 3, 4]
    sim = PaperSimulator(cfg, num_envs=len(seeds))
    pol = make_policy("greedy")
    pol.reset(num_envs=5, num_nodes=4, seed=0)
    view: DecisionView | None = sim.reset(seeds)
    placed_E = np.zeros(5, dtype=int)
    while view is not None:
        assert view.active_E.any()
        np.testing.assert_array_equal(view.local_node_E[~view.active_E], -1)
        assert (view.local_node_E[view.active_E] >= 0).all()
        assert not view.active_E.flags.writeable and not view.expected_delay_EN.flags.writeable
        assert (sim.paper_state()[~view.active_E] == 0).all()
        was_active_E = view.active_E
        delay_E, view = sim.step(pol.act(view))
        assert np.isnan(delay_E[~was_active_E]).all()
        assert (delay_E[was_active_E] > 0).all()
        placed_E += was_active_E
    assert placed_E.tolist() == [_native_decisions(s, cfg) for s in seeds]
    assert len(set(placed_E.tolist())) > 1  # the envs really had different lengths
    with pytest.raises(RuntimeError):
        sim.step(np.zeros(5, dtype=np.int64))


def test_view_contract() -> None:
    sim = PaperSimulator(PaperConfig(), num_envs=4)
    view = sim.reset([0, 1, 2, 3])
    assert (view.num_envs, view.num_nodes) == (4, 20)
    for name in ("node_mask_EN", "capacity_EN", "queue_len_EN", "expected_delay_EN"):
        assert getattr(view, name).shape == (4, 20), name
    assert view.node_mask_EN.all()
    np.testing.assert_array_equal(view.capacity_EN, np.tile(PUBLISHED_CAPACITY, (4, 1)))
    np.testing.assert_array_equal(view.requested_fraction_EN, 0.0)
    np.testing.assert_array_equal(view.queue_len_EN, 0.0)
    assert sim.paper_state().shape == (4, 22) and sim.paper_state().dtype == np.float32


def test_step_rejects_bad_actions() -> None:
    sim = PaperSimulator(PaperConfig.from_mapping(SMALL), num_envs=2)
    with pytest.raises(RuntimeError):
        sim.step(np.zeros(2, dtype=np.int64))
    sim.reset([0, 1])
    with pytest.raises(ValueError, match="action 4"):
        sim.step(np.array([0, 4]))
    with pytest.raises(ValueError, match="shape"):
        sim.step(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="integers"):
        sim.step(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="seeds"):
        sim.reset([0])
    with pytest.raises(ValueError, match=">= 0"):
        sim.reset([0, -1])


# --- seeds -------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", ["native", "published"])
def test_same_seeds_reproduce_and_different_seeds_differ(stream: str) -> None:
    cfg = PaperConfig.from_mapping({**SMALL, "arrival_stream": stream})
    a = play(PaperSimulator(cfg, 3), "greedy", [5, 6, 7])
    b = play(PaperSimulator(cfg, 3), "greedy", [5, 6, 7])
    np.testing.assert_array_equal(a, b)
    sim = PaperSimulator(cfg, 3)
    c = play(sim, "greedy", [7, 6, 5])  # env order does not matter
    np.testing.assert_array_equal(c[:, ::-1], a)
    d = play(sim, "greedy", [8, 9, 10])
    assert d.shape != a.shape or not np.array_equal(d, a, equal_nan=True)


def _published_oracle(k: int, lad: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Independent oracle: slot-0 counts and BS-0 inputs of published episode ``k``."""
    # main_opt.py: seed(2) capacities; the env: seed(5) rates, then seed(1) before each of
    # comp_density, task_quality and results_bit; arrivals follow without re-seeding.
    rs = np.random.RandomState(1)
    rs.uniform(0.1024, 0.3072, size=[50])
    rs = np.random.RandomState(1)
    rs.randint(1, 15, size=[50])
    rs = np.random.RandomState(1)
    rs.uniform(0.6, 1, size=[50])
    if lad:
        rs.normal(size=[60, 20, 50, 20])
    for _ in range(k):
        for _ in range(60):
            count_B = rs.randint(1, 51, size=[20])
            for j in range(20):
                rs.uniform(2, 5, size=[count_B[j]])
    count_B = rs.randint(1, 51, size=[20])
    return count_B, rs.uniform(2, 5, size=[count_B[0]])


@pytest.mark.parametrize("stream", ["published", "published-lad"])
def test_published_stream_replays_the_global_numpy_sequence(stream: str) -> None:
    cfg = PaperConfig(arrival_stream=stream)
    sim = PaperSimulator(cfg, num_envs=3)
    sim.reset([2, 0, 2])
    for env, k in enumerate([2, 0, 2]):
        count_B, d_first = _published_oracle(k, lad=stream == "published-lad")
        view_d = sim._input_EBK[env, 0, : count_B[0]]
        np.testing.assert_array_equal(sim._count_EB[env], count_B)
        np.testing.assert_array_equal(view_d, d_first)
    assert sim.paper_state()[0, 0] == np.float32(sim.paper_state()[2, 0])


def test_native_seed_is_independent_of_a_policy_seeded_alike() -> None:
    sim = PaperSimulator(PaperConfig(), num_envs=1)
    sim.reset([0])
    plain = np.random.default_rng(0)
    assert sim._count_EB[0].tolist() != plain.integers(1, 51, size=20).tolist()


# --- Gymnasium -----------------------------------------------------------------------------


def test_paper_env_passes_check_env() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(PaperEnv(), skip_render_check=True)


def test_paper_env_episode() -> None:
    env = PaperEnv(PaperConfig.from_mapping(TOY))
    obs, info = env.reset(seed=10)
    assert obs.shape == (5,) and obs.dtype == np.float32
    assert info["slot"] == 0 and info["bs"] == 0
    rewards = []
    terminated = False
    while not terminated:
        obs, reward, terminated, truncated, info = env.step(1)
        assert not truncated and env.observation_space.contains(obs)
        rewards.append(float(reward))
        assert info["delay"] == pytest.approx(-float(reward))
    assert len(rewards) == 6
    assert rewards[0] == pytest.approx(-(4.0 / 400 + 0.1 + 0.5 / 400))
    with pytest.raises(RuntimeError):
        env.step(0)


def test_paper_env_walks_episode_seeds() -> None:
    cfg = PaperConfig.from_mapping({**SMALL, "arrival_stream": "published"})
    env = PaperEnv(cfg)
    env.reset(seed=3)
    obs_next, _ = env.reset()  # episode seed 4
    obs_4, _ = PaperEnv(cfg).reset(seed=4)
    np.testing.assert_array_equal(obs_next, obs_4)
    obs_0, _ = PaperEnv(cfg).reset()
    obs_s0, _ = PaperEnv(cfg).reset(seed=0)
    np.testing.assert_array_equal(obs_0, obs_s0)
