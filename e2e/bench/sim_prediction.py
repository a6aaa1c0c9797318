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
from ladts_policy.sim.cluster_config import ClusterConfig
from ladts_policy.sim.cluster_vec import make_cluster_simulator


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
    return Prediction(scorer, seed, [float(d) for d in own], others)
