"""The held-out evaluation clusters (benchmarks/scenarios/heldout/) are valid scenarios, and
each lies outside the cluster trainer's generator in the way its file says.

The generator's ranges (policy/src/ladts_policy/train/cluster_distribution.py on the trainer's
branch, docs/training.md): 6..48 nodes, always Jetson boards and server GPUs mixed, every
model within ±35 % of its k8s-edge weight or (35 % of clusters) a skewed mix in which SDXL
never exceeds 45 %, load 0.5..2.5 × the preset's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ladts_policy.cli import main
from ladts_policy.sim.config.cluster_config import ClusterConfig
from ladts_policy.sim.config.scenario import load_scenario

HELDOUT = Path(__file__).resolve().parents[2] / "benchmarks" / "scenarios" / "heldout"
JETSON = {"agx-orin-64", "agx-orin-32", "orin-nx-16", "orin-nano-8"}
DATACENTRE = {"a10", "l4", "a100-80"}
MIN_NODES, MAX_NODES, MAX_LOAD, MAX_SHARE = 6, 48, 2.5, 0.5
PRESET = load_scenario("k8s-edge").cluster


def profiles(c: ClusterConfig) -> set[str]:
    return {n.profile.name for n in c.expand_nodes()}


def capacity(c: ClusterConfig) -> float:
    """Warm requests/s of the nodes on the mix at mid-range steps (the generator's measure)."""
    total = 0.0
    for node in c.expand_nodes():
        runnable = [m for m in c.models if node.profile.can_run(m.name)]
        seconds = sum(m.weight * node.profile.timings[m.name].service_s(
            round(0.5 * (m.steps[0] + m.steps[1]))) for m in runnable)
        total += sum(m.weight for m in runnable) / seconds if seconds else 0.0
    return total


def load(c: ClusterConfig) -> float:
    """Arrival rate per unit of capacity, relative to the k8s-edge preset's."""
    return (c.arrivals.rate_per_s / capacity(c)) / (PRESET.arrivals.rate_per_s / capacity(PRESET))


def sdxl_share(c: ClusterConfig) -> float:
    return sum(m.weight for m in c.models if m.name == "sdxl") / sum(m.weight for m in c.models)


CLAIMS: dict[str, Callable[[ClusterConfig], bool]] = {
    "heldout-4-nodes": lambda c: len(c.expand_nodes()) == 4 < MIN_NODES,
    "heldout-100-nodes": lambda c: len(c.expand_nodes()) == 100 > MAX_NODES,
    "heldout-jetson-only": lambda c: profiles(c) <= JETSON,
    "heldout-datacentre-only": lambda c: profiles(c) <= DATACENTRE,
    "heldout-skewed-mix": lambda c: sdxl_share(c) > MAX_SHARE,
    "heldout-4rps": lambda c: c.arrivals.rate_per_s == 4.0 and load(c) > MAX_LOAD,
}


def test_every_file_has_a_claim():
    assert sorted(p.stem for p in HELDOUT.glob("*.yaml")) == sorted(CLAIMS)


@pytest.mark.parametrize("name", sorted(CLAIMS))
def test_heldout_cluster_is_valid_and_outside_the_training_distribution(name, capsys):
    path = HELDOUT / f"{name}.yaml"
    assert main(["scenarios", str(path)]) == 0
    assert f"{path}: ok" in capsys.readouterr().out
    scenario = load_scenario(str(path))
    assert scenario.kind == "k8s-edge" and scenario.name == name
    assert CLAIMS[name](scenario.cluster)
