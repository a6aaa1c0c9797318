"""The heuristic scorer's ranking from one cost equals asking the heuristic once per rank.

``HeuristicScorer`` ranks the first ten choices of a cost-minimising heuristic (greedy,
residency-greedy, spread) from one cost vector, drawing the tie-breaking numbers its
``act`` would draw; the general path asks ``act`` again for every rank with the ranked
nodes masked. Both must give the same preferences and choice, decision after decision (the
generator's state carries from one decision to the next), on offline ``k8s-edge`` states
whose many identical idle nodes tie.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from ladts_operator.extender import ExtenderArgs
from ladts_operator.objects import PodObservation, parse_work
from ladts_operator.offline import OfflineCluster, pod_object, populate, scaled_nodes
from ladts_operator.runtime import build_runtime
from ladts_operator.scoring import HeuristicScorer, _mask_free_cost
from ladts_operator.settings import ServeSettings
from ladts_policy.features import encode
from ladts_policy.sim.config.scenario import load_scenario
from ladts_policy.snapshot_view import decision_view


@pytest.mark.parametrize("heuristic", ["residency-greedy", "greedy", "spread"])
def test_ranking_from_one_cost_equals_acting_once_per_rank(heuristic: str) -> None:
    config = load_scenario("k8s-edge").cluster
    rt = build_runtime(ServeSettings(), profiles=config.gpu_profiles)
    now = 1_700_000_000.0
    nodes = scaled_nodes(config, 60)
    populate(rt.state, config, seed=3, now=now, nodes=nodes)
    cluster = OfflineCluster(rt.state, config, seed=3)
    names = [n.name for n in nodes]
    fast, general = HeuristicScorer(heuristic, seed=7), HeuristicScorer(heuristic, seed=7)
    rng = random.Random(11)
    tied = 0
    for k in range(80):
        now += rng.uniform(0.0, 4.0)
        cluster.advance(now)
        pod = pod_object(config, rng, k)
        work = parse_work(pod["metadata"]["annotations"])
        snapshot, task = rt.extender.snapshot(ExtenderArgs(pod, names, None), work, now=now)
        features = encode(snapshot, task, node_slots=snapshot.num_nodes)
        got = fast.score(snapshot, task, features, k)
        mask_N = np.asarray(features.node_mask_S, dtype=bool).copy()
        view = decision_view(snapshot, mask_N)
        cost_N = _mask_free_cost(general._policy, view)
        assert cost_N is not None  # the fast path is the one under test
        want = general._rank_by_acting(view, mask_N)
        assert (got.preference_N, got.chosen) == (want.preference_N, want.chosen), k
        valid = np.where(features.node_mask_S, cost_N, np.inf)
        tied += int((valid == valid.min()).sum() > 1)
        if rng.random() < 0.3 and got.chosen is not None:  # bind to the choice sometimes
            rt.state.upsert_pod(PodObservation(
                uid=f"bound-{k}", namespace="aigc", name=f"bound-{k}", work=work, error=None,
                node=names[got.chosen], bind_s=now, finished=False, finish_s=None, cpu=1.0,
                memory_gib=2.0, bind_exact=True, created_s=now))
    assert tied >= 10, f"only {tied} decisions had tied best nodes: the test needs ties"


def test_other_heuristics_keep_acting_once_per_rank() -> None:
    scorer = HeuristicScorer("least-queue")
    view = decision_view(*_tiny_snapshot())
    assert _mask_free_cost(scorer._policy, view) is None


def _tiny_snapshot():  # type: ignore[no-untyped-def]
    from ladts_policy.features import TaskSpec
    from ladts_policy.node_snapshot import NO_SERVER_ROW, snapshot_from_rows

    rows = np.array([NO_SERVER_ROW, NO_SERVER_ROW], dtype=float)
    flags = np.array([[1.0, 1.0, 0.0, 0.0, np.nan]] * 2)
    snap = snapshot_from_rows(rows, flags, TaskSpec("sd15", 20), now=0.0)
    return snap, np.ones(2, dtype=bool)
