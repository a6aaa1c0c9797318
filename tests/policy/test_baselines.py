import numpy as np
import pytest

from ladts_policy.baselines import HEURISTICS, make_policy
from ladts_policy.sim.base import DecisionView


def view(**overrides: np.ndarray) -> DecisionView:
    e, n = 4, 5
    fields = {
        "active_E": np.ones(e, dtype=bool),
        "node_mask_EN": np.ones((e, n), dtype=bool),
        "capacity_EN": np.tile(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), (e, 1)),
        "queue_len_EN": np.tile(np.array([3.0, 1.0, 0.0, 2.0, 0.0]), (e, 1)),
        "expected_delay_EN": np.tile(np.array([5.0, 4.0, 9.0, 1.0, 2.0]), (e, 1)),
        "requested_fraction_EN": np.tile(np.array([0.5, 0.1, 0.9, 0.3, 0.2]), (e, 1)),
        "local_node_E": np.array([0, 1, 2, 3]),
    }
    fields.update(overrides)
    return DecisionView(**fields)


def make(name: str, seed: int = 0):
    policy = make_policy(name)
    policy.reset(num_envs=4, num_nodes=5, seed=seed)
    return policy


def test_registry_has_the_documented_names():
    assert set(HEURISTICS) == {"random", "round-robin", "capacity-weighted", "least-queue",
                               "greedy", "spread", "local", "residency-greedy", "rollout",
                               "size-greedy"}


def test_unknown_policy_lists_valid_names():
    with pytest.raises(KeyError, match="known heuristics: capacity-weighted"):
        make_policy("best")


def test_greedy_takes_minimum_expected_delay():
    assert make("greedy").act(view()).tolist() == [3, 3, 3, 3]


def test_greedy_respects_mask():
    mask = np.ones((4, 5), dtype=bool)
    mask[:, 3] = False
    assert make("greedy").act(view(node_mask_EN=mask)).tolist() == [4, 4, 4, 4]


def test_least_queue_breaks_ties_by_capacity():
    # nodes 2 and 4 both have empty queues; node 4 is faster
    assert make("least-queue").act(view()).tolist() == [4, 4, 4, 4]


def test_spread_takes_least_requested():
    assert make("spread").act(view()).tolist() == [1, 1, 1, 1]


def test_local_returns_local_node_and_refuses_without_one():
    assert make("local").act(view()).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="paper"):
        make("local").act(view(local_node_E=np.full(4, -1)))


def test_round_robin_cycles_over_allowed_nodes_per_env():
    policy = make("round-robin")
    mask = np.ones((4, 5), dtype=bool)
    mask[:, 2] = False
    seen = [policy.act(view(node_mask_EN=mask))[0] for _ in range(6)]
    assert seen == [0, 1, 3, 4, 0, 1]


def test_round_robin_keeps_cursor_of_inactive_envs():
    policy = make("round-robin")
    active = np.array([True, False, True, True])
    policy.act(view(active_E=active))
    assert policy.act(view()).tolist() == [1, 0, 1, 1]


def test_capacity_weighted_frequencies_follow_capacity():
    policy = make("capacity-weighted", seed=3)
    counts = np.zeros(5)
    for _ in range(2000):
        np.add.at(counts, policy.act(view()), 1)
    share = counts / counts.sum()
    np.testing.assert_allclose(share, np.arange(1, 6) / 15, atol=0.02)


def test_random_never_picks_masked_nodes_and_is_seeded():
    mask = np.zeros((4, 5), dtype=bool)
    mask[:, [1, 4]] = True
    draws_a = [make("random", seed=7).act(view(node_mask_EN=mask)) for _ in range(3)]
    draws_b = [make("random", seed=7).act(view(node_mask_EN=mask)) for _ in range(3)]
    for a, b in zip(draws_a, draws_b, strict=True):
        assert set(a.tolist()) <= {1, 4}
        np.testing.assert_array_equal(a, b)


def test_greedy_ties_are_random_but_among_the_best():
    delay = np.tile(np.array([1.0, 1.0, 5.0, 1.0, 9.0]), (4, 1))
    policy = make("greedy", seed=1)
    picks = {int(a) for _ in range(50) for a in policy.act(view(expected_delay_EN=delay))}
    assert picks == {0, 1, 3}


def _sized_view(size_E, delay_EN, capacity_EN):
    e, n = delay_EN.shape
    return DecisionView(
        active_E=np.ones(e, dtype=bool), node_mask_EN=np.ones((e, n), dtype=bool),
        capacity_EN=capacity_EN, queue_len_EN=np.zeros((e, n)), expected_delay_EN=delay_EN,
        requested_fraction_EN=np.zeros((e, n)), local_node_E=np.zeros(e, dtype=int),
        task_size_E=np.asarray(size_E, dtype=float))


def test_size_greedy_sends_big_tasks_to_slow_and_small_to_fast_servers():
    # Two servers with equal expected delay: capacity 10 (slow) and 30 (fast).
    cap = np.tile([10.0, 30.0], (1, 1))
    delay = np.array([[5.0, 5.0]])
    policy = make_policy("size-greedy:2")
    policy.reset(num_envs=1, num_nodes=2, seed=0)
    # Running mean after a small (1) then a big (3) task is 2: the big one is 50% above it.
    assert policy.act(_sized_view([1.0], delay, cap))[0] in (0, 1)  # first: mean = itself
    assert policy.act(_sized_view([3.0], delay, cap))[0] == 0  # big -> slow server
    assert policy.act(_sized_view([0.5], delay, cap))[0] == 1  # small -> fast server
    # Weight 0 is greedy: the smaller expected delay wins whatever the size.
    zero = make_policy("size-greedy:0")
    zero.reset(num_envs=1, num_nodes=2, seed=0)
    assert zero.act(_sized_view([9.0], np.array([[5.0, 4.0]]), cap))[0] == 1


def test_size_greedy_needs_task_sizes_and_a_numeric_weight():
    policy = make_policy("size-greedy")
    policy.reset(num_envs=4, num_nodes=5, seed=0)
    with pytest.raises(ValueError, match="reports task sizes"):
        policy.act(view())
    with pytest.raises(KeyError, match="must be a number"):
        make_policy("size-greedy:heavy")
