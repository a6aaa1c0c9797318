"""The offline cluster advances with time: pods finish, queues reach a steady state."""

from __future__ import annotations

import random

import pytest

from ladts_operator.extender import BindArgs
from ladts_operator.offline import OfflineCluster, pod_object, populate, scaled_nodes
from ladts_operator.runtime import build_runtime
from ladts_operator.settings import ServeSettings
from ladts_policy.sim.scenario import load_scenario

T0 = 1_000_000.0


@pytest.fixture
def offline():
    config = load_scenario("k8s-edge").cluster
    clock = {"t": T0}
    rt = build_runtime(ServeSettings(), profiles=config.gpu_profiles)
    rt.state.clock = lambda: clock["t"]
    rt.extender.clock = lambda: clock["t"]
    nodes = populate(rt.state, config, seed=0, now=T0, nodes=scaled_nodes(config, 12))
    return rt, config, clock, nodes, OfflineCluster(rt.state, config, seed=0)


def queue_lengths(state, nodes):
    return [len(state.queue(n.name)) for n in nodes]


def test_background_queues_stay_steady_while_pods_finish(offline):
    rt, _, clock, nodes, cluster = offline
    seeded = queue_lengths(rt.state, nodes)
    assert sum(seeded) > 0
    for _ in range(600):  # ten minutes in 1 s steps
        clock["t"] += 1.0
        cluster.advance(clock["t"])
        assert queue_lengths(rt.state, nodes) == seeded
    # Many generations of background pods have come and gone.
    assert cluster.finished > 2 * sum(seeded)
    assert all(uid.startswith("offline-r") for uid in rt.state.pod_node)


def test_bound_pods_finish_at_their_predicted_time_and_leave(offline):
    rt, config, clock, nodes, cluster = offline
    rng = random.Random(5)
    names = [n.name for n in nodes]
    seeded = sum(queue_lengths(rt.state, nodes))
    ours = []
    for i in range(40):  # a user's session: filter, prioritize, bind, one pod every 2 s
        clock["t"] += 2.0
        cluster.advance(clock["t"])
        pod = pod_object(config, rng, i)
        args = rt.extender.handle("prioritize", _body(pod, names)).body
        chosen = max(args, key=lambda h: h["Score"])["Host"]
        bind = BindArgs(pod["metadata"]["name"], "offline", pod["metadata"]["uid"], chosen)
        rt.extender.bound(bind, pod, now=clock["t"])
        predicted = rt.state.replay(chosen, now=clock["t"]).placements[bind.pod_uid].finish_s
        ours.append((bind.pod_uid, chosen, predicted))
    for _ in range(2000):
        if not any(uid in rt.state.pod_node for uid, _, _ in ours):
            break
        clock["t"] += 1.0
        cluster.advance(clock["t"])
    assert not any(uid in rt.state.pod_node for uid, _, _ in ours)  # all drained
    assert sum(queue_lengths(rt.state, nodes)) == seeded  # background only
    # Each finished at the finish predicted when it was bound (the trace of a real cluster
    # would show the same): the estimator saw observed == predicted.
    for node in {n for _, n, _ in ours}:
        for model, est in rt.state.corrector.as_dict().get(node, {}).items():
            assert est["factor"] == pytest.approx(1.0), (node, model)


def _body(pod, names):
    import json

    return json.dumps({"Pod": pod, "NodeNames": names}).encode()
