"""The simulator's prediction for a scorer on a benchmark's arrivals (pure, CPU).

The emulated run's requests are the simulator's draw for the seed
(:func:`e2e.bench.workload.draw_requests`), on the benchmark's cluster
(:func:`e2e.bench.workload.bench_cluster`: churn off, fixed residency, no hidden speed or
noise, fresh metrics). Running the scorer ``ladts serve`` runs, under the name
``ladts evaluate`` gives it (``lad-ts``: the bundled ONNX policy through
``ladts_policy.onnx_eval``; ``residency-greedy``: the heuristic the chart serves with
``serve.policy.bundled=false``), through the same simulator on the same seed gives what the
live extender would achieve if it saw the cluster as the simulator does. The gap is the cost
of what the live extender sees (watch lag, Prometheus' age, estimated service times, a
kube-scheduler between it and the pods).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ladts_policy.evaluate import build_policy, policy_seed, run_policy
from ladts_policy.sim.base import DecisionView
from ladts_policy.sim.config.cluster_config import ClusterConfig
from ladts_policy.sim.dynamics.cluster_vec import make_cluster_simulator


@dataclass(frozen=True)
class Prediction:
    """One episode of the simulator."""

    scorer: str
    """``ladts evaluate``'s name of the scorer."""
    seed: int
    """Episode seed (the benchmark's)."""
    delays_s: list[float]
    """Each request's delay (arrival → finish, cluster seconds; the simulator binds at
    arrival), in decision order, with the policy's own seed (``ladts evaluate``'s)."""
    nodes: list[str]
    """The node chosen for each request, in arrival order (the policy's own seed)."""
    noise_means_s: list[float]
    """Mean delay with each of ``noise_seeds`` other seeds of the policy's own randomness
    (the denoising chain's noise; a deterministic heuristic repeats its mean): how far the
    prediction moves when only the policy's noise changes, as ``ladts serve``'s does."""


def predict(cluster: ClusterConfig, seed: int, scorer: str, noise_seeds: int = 4
            ) -> Prediction:
    """Run ``scorer`` on the simulator's episode ``seed`` of ``cluster``."""
    policy = build_policy(scorer)
    reference = bool(getattr(policy, "needs_reference_simulator", False))

    def make_sim(num_envs: int) -> object:
        return make_cluster_simulator(cluster, num_envs=num_envs, reference=reference)

    def run(noise: int) -> np.ndarray:
        delays = run_policy(make_sim, policy, [seed], policy_seed=noise)  # type: ignore[arg-type]
        return np.asarray(delays[0], dtype=float)

    own = run(policy_seed(scorer))
    others = [float(run(policy_seed(scorer) + 1 + k).mean()) for k in range(noise_seeds)]
    return Prediction(scorer, seed, [float(d) for d in own],
                      placements(cluster, seed, scorer, policy_seed(scorer)), others)


def placements(cluster: ClusterConfig, seed: int, scorer: str, noise: int) -> list[str]:
    """The simulator's node for each request of episode ``seed`` (the same episode and seed
    as :func:`predict`'s delays, stepped here to read the actions)."""
    policy = build_policy(scorer)
    reference = bool(getattr(policy, "needs_reference_simulator", False))
    sim = make_cluster_simulator(cluster, num_envs=1, reference=reference)
    attach = getattr(policy, "attach", None)
    if attach is not None:
        attach(sim)
    policy.reset(num_envs=1, num_nodes=sim.num_nodes, seed=noise)
    names = [n.name for n in cluster.expand_nodes()]
    chosen: list[str] = []
    view: DecisionView | None = sim.reset([seed])
    while view is not None:
        actions_E = policy.act(view)
        if bool(view.active_E[0]):
            chosen.append(names[int(actions_E[0])])
        _, view = sim.step(actions_E)
    return chosen


def agreement(live: dict[int, str], sim_nodes: list[str], cluster: ClusterConfig
              ) -> dict[str, float | int | None]:
    """How the live placements (request index -> node) follow the simulator's: the share of
    requests on a node of the same GPU profile, and the first request where they part.

    By profile, not node: identical idle nodes are interchangeable, and the simulator breaks
    their ties by index while kube-scheduler sees the extender's order.
    """
    profile = {n.name: n.profile.name for n in cluster.expand_nodes()}
    same = [profile.get(live[i]) == profile[node] for i, node in enumerate(sim_nodes)
            if i in live]
    first = next((i for i, ok in enumerate(same) if not ok), None)
    return {"same_profile_share": sum(same) / len(same) if same else None,
            "first_divergence": first, "compared": len(same)}
