import json
import math

import numpy as np
import pytest

from ladts_policy.baselines import make_policy
from ladts_policy.evaluate import (
    EvaluationReport,
    default_policies,
    episode_seed,
    format_table,
    run_policy,
    summarise,
    t_quantile_975,
    with_greedy_ratio,
)
from ladts_policy.sim.base import DecisionView


class ToySim:
    """Two nodes; node 1 is always 1 s slower. Episode e has 3 + (seed % 3) tasks."""

    def __init__(self, num_envs: int) -> None:
        self._e = num_envs
        self.left_E = np.zeros(num_envs, dtype=int)

    @property
    def num_envs(self) -> int:
        return self._e

    @property
    def num_nodes(self) -> int:
        return 2

    def _view(self) -> DecisionView | None:
        active = self.left_E > 0
        if not active.any():
            return None
        e = self._e
        return DecisionView(
            active_E=active, node_mask_EN=np.ones((e, 2), dtype=bool),
            capacity_EN=np.ones((e, 2)), queue_len_EN=np.zeros((e, 2)),
            expected_delay_EN=np.tile([1.0, 2.0], (e, 1)),
            requested_fraction_EN=np.zeros((e, 2)), local_node_E=np.full(e, -1))

    def reset(self, seeds):
        self.left_E = np.array([3 + s % 3 for s in seeds])
        return self._view()

    def step(self, actions_E):
        delay = np.where(self.left_E > 0, 1.0 + actions_E, np.nan)
        self.left_E = np.maximum(self.left_E - 1, 0)
        return delay, self._view()


def test_run_policy_collects_every_task_of_every_episode():
    delays = run_policy(ToySim, make_policy("greedy"), [0, 1, 2], policy_seed=0)
    assert [d.size for d in delays] == [3, 4, 5]
    assert all(np.all(d == 1.0) for d in delays)


def test_summary_interval_uses_student_t():
    delays = [np.array([1.0, 3.0]), np.array([4.0]), np.array([6.0, 6.0])]
    r = summarise(delays)
    means = np.array([2.0, 4.0, 6.0])
    half = 4.303 * means.std(ddof=1) / math.sqrt(3)
    assert r.mean_delay_s == pytest.approx(4.0)
    assert r.ci95_s == pytest.approx((4.0 - half, 4.0 + half))
    assert r.p50_s == pytest.approx(4.0)
    assert r.tasks == 5


def test_summary_refuses_empty_evaluation():
    with pytest.raises(ValueError, match="no task"):
        summarise([np.array([])])


def test_greedy_ratio_and_json_shape(tmp_path):
    greedy = run_policy(ToySim, make_policy("greedy"), [0, 1], policy_seed=0)
    rand = run_policy(ToySim, make_policy("random"), [0, 1], policy_seed=0)
    results = with_greedy_ratio({"greedy": summarise(greedy), "random": summarise(rand)})
    assert results["greedy"].vs_greedy == pytest.approx(1.0)
    assert results["random"].vs_greedy > 1.0
    report = EvaluationReport(scenario="toy", seeds=[1, 2], episodes=1, policies=results)
    doc = report.to_json_dict()
    assert set(doc) == {"scenario", "seeds", "episodes", "policies"}
    assert set(doc["policies"]["random"]) >= {"mean_delay_s", "ci95_s", "p50_s", "p95_s",
                                              "p99_s", "vs_greedy"}
    report.write_json(tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["policies"]["greedy"]["tasks"] == 7
    assert "random" in format_table(report)


def test_t_quantiles():
    assert t_quantile_975(1) == pytest.approx(12.706)
    assert t_quantile_975(11) == pytest.approx(2.228)  # conservative: next lower dof in table
    assert t_quantile_975(1000) == pytest.approx(1.96)


def test_episode_seeds_distinct_and_stable():
    seeds = {episode_seed(s, e) for s in range(10_000, 10_005) for e in range(20)}
    assert len(seeds) == 100
    assert episode_seed(10_000, 0) == episode_seed(10_000, 0)


def test_default_policies_by_kind():
    assert "local" in default_policies("paper") and "spread" not in default_policies("paper")
    assert "spread" in default_policies("k8s-edge") and "local" not in default_policies(
        "k8s-edge")


def test_size_quintiles_and_paired_ratio_by_hand():
    # Ten tasks of sizes 10..1 with delays equal to their size: quintile means by hand.
    sizes = np.arange(10, 0, -1, dtype=float)
    result = summarise([sizes.copy()], [sizes])
    assert result.size_quintile_mean_s == pytest.approx([1.5, 3.5, 5.5, 7.5, 9.5])
    greedy = summarise([np.array([2.0]), np.array([4.0])])
    other = summarise([np.array([3.0]), np.array([4.0])])
    both = with_greedy_ratio({"greedy": greedy, "other": other})
    # Ratio estimator r = 7/6; residuals x - r g = (3 - 7/3, 4 - 14/3) = (2/3, -2/3):
    # SE = sd(residuals) / (sqrt(2) * mean(g) = 3), t(1) quantile 12.706.
    lo, hi = both["other"].vs_greedy_ci95
    assert (lo + hi) / 2 == pytest.approx(7.0 / 6.0)
    half = 12.706 * np.std([2 / 3, -2 / 3], ddof=1) / (np.sqrt(2) * 3.0)
    assert (hi - lo) / 2 == pytest.approx(half, rel=1e-4)
    assert both["other"].vs_greedy == pytest.approx(3.5 / 3.0)
