from __future__ import annotations

import pytest

from ladts_operator.extender import Extender
from ladts_operator.scoring import HeuristicScorer
from ladts_operator.state import ClusterState
from ladts_policy.sim.config.cluster_config import GpuProfile, ModelTiming

FAST = GpuProfile("fast", "GPU-FAST", 20.0, {
    "sd15": ModelTiming(s_per_step=0.1, overhead_s=0.5, memory_gib=4.0, load_s=10.0),
    "sdxl": ModelTiming(s_per_step=0.5, overhead_s=1.0, memory_gib=10.0, load_s=20.0),
})
SMALL = GpuProfile("small", "GPU-SMALL", 6.0, {
    "sd15": ModelTiming(s_per_step=0.3, overhead_s=1.0, memory_gib=4.0, load_s=30.0),
    "sdxl": ModelTiming(s_per_step=1.0, overhead_s=2.0, memory_gib=10.0, load_s=40.0),
})
PROFILES = {"fast": FAST, "small": SMALL}
NOW = 1_000_000.0


def node(name: str, profile: str | None = "fast", *, ready: bool = True,
         cordoned: bool = False, product: str | None = None,
         resident: str = "") -> dict:
    labels = {}
    if profile:
        labels["ladts.io/gpu-profile"] = profile
    if product:
        labels["nvidia.com/gpu.product"] = product
    return {
        "metadata": {"name": name, "labels": labels,
                     "annotations": {"ladts.io/resident-models": resident}},
        "spec": {"unschedulable": cordoned},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                   "allocatable": {"cpu": "8", "memory": "32Gi"},
                   "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]},
    }


def pod(name: str = "p", uid: str = "uid-1", model: str | None = "sd15",
        steps: str | None = "20", node_name: str | None = None, phase: str = "Pending",
        **extra_annotations: str) -> dict:
    ann = dict(extra_annotations)
    if model is not None:
        ann["ladts.io/model"] = model
    if steps is not None:
        ann["ladts.io/steps"] = steps
    spec: dict = {"containers": [{"name": "c", "resources": {"requests": {
        "cpu": "500m", "memory": "2Gi"}}}]}
    if node_name:
        spec["nodeName"] = node_name
    return {"metadata": {"name": name, "namespace": "aigc", "uid": uid, "annotations": ann},
            "spec": spec, "status": {"phase": phase}}


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> ClusterState:
    return ClusterState(PROFILES, clock=clock)


@pytest.fixture
def extender(state: ClusterState, clock: Clock) -> Extender:
    h = HeuristicScorer("greedy")
    return Extender(state, scorer=h, fallback=h, clock=clock)
