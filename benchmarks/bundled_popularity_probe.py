"""How the bundled policy's choice moves with the task's ``popularity`` feature alone.

Three nodes (AGX Orin 64, Orin NX 16, RTX 4090), each with ``sd15`` and ``sd-turbo``
resident, those two models of the ``k8s-edge`` mix at a low rate. The simulator runs greedy
until an ``sd15`` request finds the RTX 4090 idle with the model loaded (the soonest finish);
the bundled ONNX policy (``ladts_policy/bundled/lad-ts.onnx``) then scores that one decision
twice: with the snapshot's own popularity, and with popularity set to 1.0 (every request for
one model, a share the training distribution never draws:
``ladts_policy.train.cluster_distribution.NEVER_GENERATED``). Same noise, no warm start.
docs/serving.md ("Known gap of the bundled policy") quotes its output.

    python benchmarks/bundled_popularity_probe.py [--seed S]

Exits 1 when no such decision occurs within the episode.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys

import numpy as np

from ladts_policy.baselines import GreedyPolicy, ResidencyGreedyPolicy
from ladts_policy.bundled import bundled_policy_path
from ladts_policy.features import encode
from ladts_policy.onnx_eval import load_policy_session
from ladts_policy.sim.config.scenario import load_scenario, scenario_from_mapping
from ladts_policy.sim.dynamics.cluster import ClusterSimulator

NODES = [("agx-orin-64", "w-orin"), ("orin-nx-16", "w-nx"), ("rtx-4090", "w-4090")]


def probe_scenario() -> ClusterSimulator:
    """The three-node cluster above over the k8s-edge preset's models (one simulator)."""
    base = load_scenario("k8s-edge").cluster
    mapping = {
        "kind": "k8s-edge", "name": "popularity-probe",
        "cluster": {
            "horizon_s": 600, "arrivals": {"process": "poisson", "rate_per_s": 0.2},
            # two small models, so the 4090 keeps both loaded and sd15 stays warm there
            "models": [{"name": m.name, "weight": m.weight, "steps": list(m.steps)}
                       for m in base.models if m.name in ("sd15", "sd-turbo")],
            "nodes": [{"profile": p, "count": 1, "name_prefix": n,
                       "resident": ["sd15", "sd-turbo"]}
                      for p, n in NODES],
            "residency": {"mode": "fixed"}, "drift": {"enabled": False},
            "churn": {"enabled": False},
        },
    }
    return ClusterSimulator(scenario_from_mapping(mapping).cluster, num_envs=1)


def main() -> int:
    """Find the decision, score it at both popularities, print the probabilities."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=10_000, help="episode seed")
    args = parser.parse_args()
    session, info = load_policy_session(bundled_policy_path())
    sim = probe_scenario()
    view = sim.reset([args.seed])
    greedy = GreedyPolicy()
    greedy.reset(num_envs=1, num_nodes=sim.num_nodes, seed=0)
    while view is not None:
        snapshot, task = sim.snapshot(0)
        fast = [n for _, n in NODES].index("w-4090")
        # past the episode's first requests, whose popularity is 1.0 already (a short window)
        if (task.model == "sd15" and snapshot.queue_len_N[fast] == 0
                and snapshot.popularity < 0.9
                and int(np.argmin(snapshot.est_delay_s_N)) == fast):
            break
        _, view = sim.step(greedy.act(view))
    else:
        print("no sd15 request found the RTX 4090 idle and warm", file=sys.stderr)
        return 1
    noise = np.random.default_rng(0).standard_normal(
        (1, info.diffusion_steps, sim.num_nodes, info.latent_dim), dtype=np.float32)
    teacher = ResidencyGreedyPolicy()
    teacher.reset(num_envs=1, num_nodes=sim.num_nodes, seed=0)
    names = [n for _, n in NODES]
    print(f"decision: {task.model}, {task.steps} steps; queues "
          f"{snapshot.queue_len_N.tolist()}, estimated delays "
          f"{np.round(snapshot.est_delay_s_N, 2).tolist()} s ({', '.join(names)})")
    print(f"greedy picks {names[int(greedy.act(view)[0])]}, residency-greedy picks "
          f"{names[int(teacher.act(view)[0])]}")
    for popularity in (snapshot.popularity, 1.0):
        probe = dataclasses.replace(copy.copy(snapshot), popularity=popularity)
        enc = encode(probe, task, node_slots=sim.num_nodes)
        probs, _ = session.run(["action_probs", "latent"], {
            "node_features": enc.node_rows_SF[None], "node_mask": enc.node_mask_S[None],
            "task_features": enc.task_T[None], "global_features": enc.global_G[None],
            "latent_start": np.zeros((1, sim.num_nodes, info.latent_dim), np.float32),
            "noise": noise})
        shown = ", ".join(f"{n} {p:.2f}" for (_, n), p in zip(NODES, probs[0], strict=True))
        print(f"popularity {popularity:.2f}: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
