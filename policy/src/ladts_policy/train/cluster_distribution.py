"""The training distribution of the cluster policy: seeded random ``k8s-edge`` clusters.

One policy must serve 2 to 500 nodes, any GPU mix and any load, so it trains on many small
clusters rather than on one preset. :func:`generate_scenario` draws one cluster per
``(training seed, index)``: node count, GPU mix, load, initial residency, drift and churn,
as a scenario document that goes through the ordinary validation
(:func:`ladts_policy.sim.config.scenario.scenario_from_mapping`), so every generated cluster is a
valid, readable scenario file (:func:`scenario_yaml`). The models, their step ranges and the
hidden uncertainty come from the base scenario (``k8s-edge`` by default); the weights are the
base mix jittered or, in ``skew_probability`` of the clusters, a skewed mix
(:func:`skewed_weights`); GPU timings are the shipped profile table
(``scenarios/gpu-profiles.yaml``).

What it never generates is the held-out ground of ``docs/training.md`` ("The cluster
policy"): :data:`NEVER_GENERATED` lists it, and ``tests/policy/test_cluster_distribution.py``
checks the generator against that list. Torch-free.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ladts_policy.sim.config.cluster_config import ClusterConfig, GpuProfile, ModelSpec
from ladts_policy.sim.config.scenario import Scenario, scenario_from_mapping

DISTRIBUTION_VERSION = "cluster-distribution/2"
"""Version of what :func:`generate_mapping` draws, written into a trained policy's recipe
(``ladts.training_recipe``). 1: the jittered preset mix only; 2: plus skewed model mixes
(``DistributionConfig.skew_probability``), SDXL never dominant."""

HELD_OUT_SEED_START = 10_000
"""Seeds from here up are evaluation seeds; the generator refuses them."""

JETSON_PROFILES = ("agx-orin-64", "agx-orin-32", "orin-nx-16", "orin-nano-8")
"""Edge boards of the profile table (unified memory, slow, small)."""

SERVER_PROFILES = ("rtx-4090", "a10", "l4", "a100-80")
"""Workstation and data-centre GPUs of the profile table."""

REFERENCE_NODES = 20
"""Load is stated per the ``k8s-edge`` preset's capacity (its 20 nodes at 1 req/s)."""

NEVER_GENERATED = (
    "node counts outside [min_nodes, max_nodes] (default 6..48): e.g. 2, 4, 100, 200, 500",
    "a cluster of Jetson boards only, or of workstation/data-centre GPUs only",
    "an SDXL-dominated model mix: SDXL stays at or below sdxl_max_share (default 45 %) of "
    "the requests, also while the drift holds another model back (skewed mixes, one-model "
    "clusters included, are generated with any other model dominant)",
    "a load above max_load (default 2.5 x the preset's per-capacity rate; e.g. 4 req/s on "
    "the 20-node preset)",
    "bursty arrivals (Poisson only), exclusive GPU mode, time-sliced concurrency > 1",
    "seeds >= 10000 (evaluation seeds)",
)
"""What :func:`generate_scenario` never produces (the held-out ground; docs/training.md)."""


@dataclass(frozen=True)
class DistributionConfig:
    """Ranges of the random training clusters."""

    min_nodes: int = 6
    """Fewest nodes of a generated cluster."""

    max_nodes: int = 48
    """Most nodes of a generated cluster (drawn log-uniformly between the two)."""

    min_load: float = 0.5
    """Lowest load: arrival rate as a multiple of the preset's 1 req/s per 20-node capacity."""

    max_load: float = 2.5
    """Highest load (the ``k8s-edge-busy`` preset is 2.5)."""

    horizon_s: float = 600.0
    """Seconds of arrivals per training episode (shorter than the presets' hour: more
    clusters per minute of training; drift and churn are scaled to fit)."""

    weight_jitter: float = 0.35
    """Each model's weight is multiplied by U(1 − j, 1 + j) before renormalising."""

    skew_probability: float = 0.35
    """Share of clusters with a skewed model mix instead of the jittered preset mix: a random
    subset of the models with Dirichlet(``skew_concentration``) weights, so one model often
    takes most of the requests (the ``popularity`` feature near 1; docs/serving.md)."""

    skew_concentration: float = 0.3
    """Dirichlet concentration of a skewed mix (small: one or two models dominate)."""

    single_model_share: float = 0.3
    """Share of the skewed clusters serving one model only (never SDXL)."""

    absent_weight: float = 0.002
    """Weight of a model left out of a skewed mix. Scenario validation requires weights
    > 0, and a model that stays in the document keeps its place in random initial residency
    (nodes hold models nobody asks for, as in serving). At 0.2 % it is rarely asked, except
    where the SDXL cap removes most of a draw's mass: renormalising then raises it (above 2 %
    in about 3 % of skewed mixes over k8s-edge's five models, at most about 15 %)."""

    sdxl_max_share: float = 0.45
    """Most SDXL may take of a skewed mix, in the worst case of the drift holding any other
    model back to its initial share: an SDXL-dominated mix
    (``benchmarks/scenarios/heldout/heldout-skewed-mix.yaml``, 60 %) stays held out."""

    drift_probability: float = 0.5
    """Share of clusters in which one model is rolled out during the episode."""

    churn_probability: float = 0.5
    """Share of clusters in which nodes leave and rejoin."""

    def __post_init__(self) -> None:
        """Reject empty or inverted ranges."""
        if not 2 <= self.min_nodes <= self.max_nodes:
            raise ValueError("need 2 <= min_nodes <= max_nodes")
        if not 0 < self.min_load <= self.max_load:
            raise ValueError("need 0 < min_load <= max_load")
        if self.horizon_s <= 0 or not 0 <= self.weight_jitter < 1:
            raise ValueError("horizon_s must be > 0 and weight_jitter in [0, 1)")
        if not (0 <= self.skew_probability <= 1 and 0 <= self.single_model_share <= 1
                and self.skew_concentration > 0 and 0 < self.absent_weight < 0.05
                and 0 < self.sdxl_max_share < 0.5):
            raise ValueError("need skew_probability, single_model_share in [0, 1], "
                             "skew_concentration > 0, absent_weight in (0, 0.05) and "
                             "sdxl_max_share in (0, 0.5)")


SDXL = "sdxl"
"""The model a skewed training mix never lets dominate (the held-out skewed mix's)."""

DRIFT_INITIAL_SHARE = 0.05
"""``drift.initial_share`` of every generated cluster."""


def skewed_weights(names: Sequence[str], rng: np.random.Generator,
                   dist: DistributionConfig) -> np.ndarray:
    """Return float [M]: a skewed model mix over ``names`` (sums to 1), SDXL capped.

    A random subset of the models (one model, never SDXL, in ``single_model_share`` of the
    draws) gets Dirichlet(``skew_concentration``) weights; the others ``absent_weight``.
    SDXL's weight ``s`` is then capped so that its share stays <= ``sdxl_max_share`` even
    when the drift holds the largest other model ``M`` back to ``DRIFT_INITIAL_SHARE``:
    ``s / (s + W - (1 - initial_share) M) <= cap`` with ``W`` the other models' total.
    """
    m = len(names)
    candidates = [i for i, n in enumerate(names) if n != SDXL]
    if rng.random() < dist.single_model_share and candidates:
        subset = [int(rng.choice(candidates))]
    else:
        subset = sorted(int(i) for i in rng.choice(m, size=int(rng.integers(2, m + 1)),
                                                     replace=False)) if m > 1 else [0]
    weight_M = np.full(m, dist.absent_weight)
    weight_M[subset] = rng.dirichlet(np.full(len(subset), dist.skew_concentration))
    weight_M = np.maximum(weight_M, dist.absent_weight)
    if SDXL in names and m > 1:  # an SDXL-only base has nothing to cap against
        j = list(names).index(SDXL)
        others_M = np.delete(weight_M, j)
        room = others_M.sum() - (1.0 - DRIFT_INITIAL_SHARE) * others_M.max()
        cap = dist.sdxl_max_share / (1.0 - dist.sdxl_max_share) * room
        weight_M[j] = max(min(weight_M[j], cap), min(dist.absent_weight, cap))
    return np.asarray(weight_M / weight_M.sum(), dtype=float)


def _node_rate(profile: GpuProfile, models: Sequence[ModelSpec]) -> float:
    """Warm requests per second one node of ``profile`` serves on a model mix (0 if none)."""
    total_w, total_s = 0.0, 0.0
    for model in models:
        if not profile.can_run(model.name):
            continue
        steps = 0.5 * (model.steps[0] + model.steps[1])
        total_w += model.weight
        total_s += model.weight * profile.timings[model.name].service_s(round(steps))
    return total_w / total_s if total_s > 0 else 0.0


def reference_capacity(base: ClusterConfig) -> float:
    """Warm requests/s of the base scenario's nodes (the preset's capacity at load 1)."""
    return sum(_node_rate(node.profile, base.models) for node in base.expand_nodes())


def check_training_seed(seed: int) -> None:
    """Raise ``ValueError`` for a seed outside the training range 0..9999."""
    if not 0 <= seed < HELD_OUT_SEED_START:
        raise ValueError(f"training seeds are 0..{HELD_OUT_SEED_START - 1} "
                         f"(evaluation seeds start at {HELD_OUT_SEED_START}), got {seed}")


def generate_mapping(base: ClusterConfig, seed: int, index: int,
                     dist: DistributionConfig = DistributionConfig()) -> dict[str, Any]:
    """The scenario document of training cluster ``index`` of training ``seed``.

    Raises:
        ValueError: ``seed`` is an evaluation seed (>= 10000) or ``index`` is negative.
    """
    check_training_seed(seed)
    if index < 0:
        raise ValueError(f"cluster index must be >= 0, got {index}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, index, 0xC1A5]))
    profiles = base.gpu_profiles
    nodes = round(math.exp(float(rng.uniform(math.log(dist.min_nodes),
                                             math.log(dist.max_nodes + 0.49)))))
    nodes = min(max(nodes, dist.min_nodes), dist.max_nodes)
    # GPU mix: 1-3 Jetson classes and 1-2 server classes, never one family alone.
    jetson = list(rng.choice(JETSON_PROFILES, size=int(rng.integers(1, 4)), replace=False))
    server = list(rng.choice(SERVER_PROFILES, size=int(rng.integers(1, 3)), replace=False))
    server_share = rng.uniform(0.1, 0.5)
    n_server = min(max(1, round(float(nodes * server_share))), nodes - 1)
    counts: dict[str, int] = {}
    for family, total in ((jetson, nodes - n_server), (server, n_server)):
        shares = rng.dirichlet(np.ones(len(family)))
        split = np.maximum(np.floor(shares * total).astype(int), 0)
        split[int(np.argmax(shares))] += total - int(split.sum())
        for name, count in zip(family, split, strict=True):
            if count > 0:
                counts[str(name)] = int(count)
    groups: list[dict[str, Any]] = []
    for name, count in counts.items():
        big = name in SERVER_PROFILES or name == "agx-orin-64"
        groups.append({"profile": name, "count": count, "name_prefix": f"g-{name}",
                       "cpu": 16 if big else 8, "memory_gib": 56 if big else 14})
    weights = np.array([m.weight for m in base.models])
    weights = weights * rng.uniform(1 - dist.weight_jitter, 1 + dist.weight_jitter,
                                    size=weights.size)
    weights /= weights.sum()
    # A separate stream: the jittered clusters stay the ones drawn before skewed mixes existed.
    skew_rng = np.random.default_rng(np.random.SeedSequence([seed, index, 0x5CE3]))
    skewed = bool(skew_rng.random() < dist.skew_probability)
    if skewed:
        weights = skewed_weights([m.name for m in base.models], skew_rng, dist)
    models = [{"name": m.name, "weight": max(float(round(w, 4)), 1e-4), "steps": list(m.steps),
               "input_mbit": list(m.input_mbit), "cpu": m.cpu, "memory_gib": m.memory_gib}
              for m, w in zip(base.models, weights, strict=True)]
    mix = [dataclasses.replace(m, weight=float(w))
           for m, w in zip(base.models, weights, strict=True)]
    capacity = sum(_node_rate(profiles[g["profile"]], mix) * g["count"] for g in groups)
    load = rng.uniform(dist.min_load, dist.max_load)
    rate = load * capacity / reference_capacity(base)
    h = dist.horizon_s
    unc = base.uncertainty
    cluster: dict[str, Any] = {
        "horizon_s": h,
        "arrivals": {"process": "poisson", "rate_per_s": float(round(rate, 4))},
        "models": models,
        "nodes": groups,
        "churn": {"enabled": bool(rng.random() < dist.churn_probability),
                  "mean_up_s": float(round(rng.uniform(2.0, 6.0) * h, 1)),
                  "mean_down_s": float(round(rng.uniform(0.1, 0.3) * h, 1)),
                  "max_down_fraction": 0.2},
        "exclusive": False,
        "uncertainty": {"node_speed_sigma": unc.node_speed_sigma,
                        "request_noise_sigma": unc.request_noise_sigma,
                        "scrape_interval_s": unc.scrape_interval_s},
        "residency": {"mode": "random", "max_models": int(rng.integers(1, 3))},
        "drift": {"enabled": bool(rng.random() < dist.drift_probability),
                  "initial_share": DRIFT_INITIAL_SHARE, "start_fraction": [0.0, 0.5],
                  "ramp_s": float(round(0.25 * h, 1))},
    }
    return {"kind": "k8s-edge", "name": f"train-s{seed}-c{index}",
            "description": (f"generated training cluster {index} of seed {seed}: {nodes} "
                            f"nodes, load {load:.2f} x the k8s-edge preset"
                            + (", skewed model mix" if skewed else "")),
            "cluster": cluster}


def generate_scenario(base: ClusterConfig, seed: int, index: int,
                      dist: DistributionConfig = DistributionConfig()) -> Scenario:
    """Training cluster ``index`` of ``seed``, validated as any scenario file is."""
    return scenario_from_mapping(generate_mapping(base, seed, index, dist))


def scenario_yaml(mapping: dict[str, Any]) -> str:
    """A generated (or calibrated) scenario document as readable YAML."""
    import yaml

    return str(yaml.safe_dump(mapping, sort_keys=False, default_flow_style=None, width=100))
