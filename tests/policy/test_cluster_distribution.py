"""The cluster policy's training distribution: valid scenarios, never the held-out ground."""

from __future__ import annotations

import pytest
import yaml

from ladts_policy.sim.config.cluster_schema import builtin_gpu_profiles
from ladts_policy.sim.config.scenario import load_scenario, scenario_from_mapping
from ladts_policy.train.cluster_config import ClusterTrainConfig
from ladts_policy.train.cluster_distribution import (
    JETSON_PROFILES,
    SERVER_PROFILES,
    DistributionConfig,
    check_training_seed,
    generate_mapping,
    generate_scenario,
    reference_capacity,
    scenario_yaml,
)

BASE = load_scenario("k8s-edge").cluster


@pytest.mark.parametrize("seed", [10_000, 10_004, 12_345, -1])
def test_held_out_and_negative_seeds_are_refused(seed):
    with pytest.raises(ValueError, match="training seeds"):
        generate_mapping(BASE, seed, 0)
    with pytest.raises(ValueError):
        check_training_seed(seed)
    with pytest.raises(ValueError, match="seed"):
        ClusterTrainConfig(seed=seed)


def test_generated_clusters_are_valid_and_stay_inside_the_training_ground():
    dist = DistributionConfig()
    profiles = builtin_gpu_profiles()
    ref = reference_capacity(BASE)
    sizes = set()
    for seed in (0, 1, 9_999):
        for index in range(25):
            mapping = generate_mapping(BASE, seed, index, dist)
            spec = scenario_from_mapping(mapping)  # the ordinary scenario validation
            cluster = spec.cluster
            nodes = cluster.num_nodes
            sizes.add(nodes)
            assert dist.min_nodes <= nodes <= dist.max_nodes
            kinds = {g.profile for g in cluster.nodes}
            assert kinds & set(JETSON_PROFILES) and kinds & set(SERVER_PROFILES), kinds
            assert kinds <= set(profiles)
            weights = [m.weight for m in cluster.models]
            assert max(weights) / sum(weights) < 0.5
            assert cluster.arrivals.process == "poisson" and not cluster.exclusive
            assert all(g.concurrency == 1 for g in cluster.nodes)
            # load = rate / (cluster capacity / preset capacity), an independent recomputation
            capacity = 0.0
            for g in cluster.nodes:
                p = profiles[g.profile]
                rate_w = [(m.weight, p.timings[m.name].service_s(round(sum(m.steps) / 2)))
                          for m in cluster.models if p.can_run(m.name)]
                capacity += g.count * sum(w for w, _ in rate_w) / sum(w * s for w, s in rate_w)
            load = cluster.arrivals.rate_per_s / (capacity / ref)
            assert dist.min_load - 0.01 <= load <= dist.max_load + 0.01
            assert cluster.horizon_s == dist.horizon_s
    assert min(sizes) < 12 and max(sizes) > 30  # the range is actually covered


def test_same_seed_same_cluster_and_yaml_round_trip(tmp_path):
    a, b = generate_mapping(BASE, 3, 7), generate_mapping(BASE, 3, 7)
    assert a == b and a != generate_mapping(BASE, 3, 8)
    path = tmp_path / "c.yaml"
    path.write_text(scenario_yaml(a))
    assert yaml.safe_load(path.read_text()) == a
    assert load_scenario(str(path)).cluster == generate_scenario(BASE, 3, 7).cluster


def test_distribution_ranges_are_checked():
    with pytest.raises(ValueError):
        DistributionConfig(min_nodes=10, max_nodes=5)
    with pytest.raises(ValueError):
        DistributionConfig(min_load=0.0)
