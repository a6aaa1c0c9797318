"""Defects of the k8s-edge simulator and evaluation that each failed before issue 6."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ladts_policy.baselines import make_policy
from ladts_policy.evaluate import evaluate, paired_ratio
from ladts_policy.sim.config.cluster_config import ClusterConfig
from ladts_policy.sim.config.scenario import load_scenario
from ladts_policy.sim.dynamics.cluster import ClusterSimulator
from ladts_policy.sim.dynamics.workload import JOIN, LEAVE, ChurnEvents
from ladts_policy.sim.envs.cluster_env import ClusterEnv


def edge(horizon_s: float = 300.0, **changes: object) -> ClusterConfig:
    config = load_scenario("k8s-edge").cluster
    return dataclasses.replace(config, horizon_s=horizon_s, **changes)  # type: ignore[arg-type]


def test_cluster_env_runs_in_exclusive_mode() -> None:
    env = ClusterEnv(edge(horizon_s=120, exclusive=True))
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    terminated = False
    while not terminated:
        _, _, terminated, _, info = env.step(int(rng.integers(env.node_slots)))
        assert info["delay_s"] > 0


def test_step_rejects_before_changing_any_environment() -> None:
    sim = ClusterSimulator(edge(), num_envs=2)
    view = sim.reset([1, 2])
    while view is not None and view.node_mask_EN[1].all():
        view = sim.step(np.argmin(np.where(view.node_mask_EN, view.expected_delay_EN,
                                           np.inf), axis=1))[1]
    assert view is not None
    good = int(np.flatnonzero(view.node_mask_EN[0])[0])
    bad = int(np.flatnonzero(~view.node_mask_EN[1])[0])
    before = (sim.envs[0].task, sim.envs[0].placed, sim.envs[0].queue_len_N.copy())
    with pytest.raises(ValueError, match="env 1"):
        sim.step(np.array([good, bad]))
    after = (sim.envs[0].task, sim.envs[0].placed, sim.envs[0].queue_len_N)
    assert before[:2] == after[:2]
    np.testing.assert_array_equal(before[2], after[2])


def test_node_rejoining_while_busy_keeps_its_models() -> None:
    sim = ClusterSimulator(edge(horizon_s=600), num_envs=1)
    view = sim.reset([4])
    env = sim.envs[0]
    node = next(n for n, spec in enumerate(sim.nodes) if spec.name.startswith("edge-nano"))
    sd15 = sim.static.model_names.index("sd15")
    # Place sd15 pods on the nano (sd-turbo resident: the first evicts it), then cordon
    # the node and let it rejoin while still busy; the next decision comes after it drained.
    while view is not None and env.model != sd15:
        view = sim.step(np.array([int(np.flatnonzero(view.node_mask_EN[0])[0])]))[1]
    assert view is not None and view.node_mask_EN[0, node]
    view = sim.step(np.array([node]))[1]
    server = sim.envs[0].servers[node]
    finish = server.busy_until()
    assert server.is_loaded("sd15") and not server.is_loaded("sd-turbo")
    t_join = (env.now + finish) / 2  # still busy at the join
    env.churn = ChurnEvents(time_s_K=np.array([env.now + 1e-6, t_join]),
                            node_K=np.array([node, node]), kind_K=np.array([LEAVE, JOIN]))
    env._next_churn = 0
    env._set_clock(finish + 1.0)  # the next decision, after the node drained
    assert not env.cordoned_N[node]
    assert server.is_loaded("sd15"), "a node that rejoined busy was restarted cold"
    assert not server.is_loaded("sd-turbo")


def test_pods_wait_when_no_node_fits_their_requests() -> None:
    base = edge(horizon_s=200)
    # Pods that ask for 5 cores: at most 1-3 fit each node, so bursts must wait unscheduled.
    models = tuple(dataclasses.replace(m, cpu=5.0) for m in base.models)
    config = dataclasses.replace(base, models=models,
                                 arrivals=dataclasses.replace(base.arrivals, rate_per_s=6.0))
    sim = ClusterSimulator(config, num_envs=1)
    pol = make_policy("spread")
    pol.reset(num_envs=1, num_nodes=sim.num_nodes, seed=0)
    view = sim.reset([3])
    s = sim.static
    waited = 0.0
    while view is not None:
        env = sim.envs[0]
        m = env.model
        fits_N = env.req_cpu_N + s.pod_cpu_M[m] <= s.cpu_N + 1e-9
        assert not np.any(view.node_mask_EN[0] & ~fits_N)
        waited = max(waited, env.now - env.arrival)
        view = sim.step(pol.act(view))[1]
    assert waited > 0.0
    assert sim.envs[0].placed == len(sim.envs[0].work)


def test_evaluate_does_not_depend_on_policy_order() -> None:
    a = evaluate("k8s-edge", policies=["greedy", "random"], seeds=[10000], show_progress=False)
    b = evaluate("k8s-edge", policies=["random", "greedy"], seeds=[10000], show_progress=False)
    assert a.policies["random"].mean_delay_s == b.policies["random"].mean_delay_s
    assert a.policies["greedy"].mean_delay_s == b.policies["greedy"].mean_delay_s


def test_paired_ratio_interval() -> None:
    g = np.array([1.0, 2.0, 3.0, 4.0])
    ratio, ci = paired_ratio(2.0 * g, g)
    assert ratio == 2.0 and ci == (2.0, 2.0)  # a constant per-episode ratio: no spread
    ratio, ci = paired_ratio(g + np.array([0.1, -0.1, 0.2, -0.2]), g)
    assert ci is not None and ci[0] < ratio < ci[1]
    assert paired_ratio(np.array([1.0]), np.array([2.0])) == (0.5, None)
