"""The benchmark's requests and their pods (pure): the simulator's draw, as AIGC pod bodies."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from e2e.emulation.pods import aigc_pod_manifest
from e2e.emulation.scenario_nodes import GPU_PROFILE_LABEL
from ladts_policy.sim.config.cluster_config import (
    ChurnSpec,
    ClusterConfig,
    ResidencySpec,
    UncertaintySpec,
)
from ladts_policy.sim.dynamics.workload import Workload, draw_workload, episode_generators

NAMESPACE = "default"


@dataclass(frozen=True)
class Request:
    """One AIGC request of the episode."""

    index: int
    """Position in the episode (the pod is ``aigc-<index>``)."""
    arrival_s: float
    """Arrival, cluster seconds."""
    model: str
    """Diffusion model."""
    steps: int
    """Denoising steps."""
    input_mbit: float
    """Input size, Mbit."""
    cpu: float
    """CPU request, cores."""
    memory_gib: float
    """Memory request, GiB."""


def bench_cluster(
    cluster: ClusterConfig, horizon_s: float | None = None, rate_per_s: float | None = None
) -> ClusterConfig:
    """The scenario as benchmarked: churn off, optionally another horizon or arrival rate.

    The emulated nodes start with the fixed ``resident`` lists and run the profile times, so
    the simulator side is compared with those too (no per-episode residency, no hidden
    speed or noise, fresh metrics).
    """
    horizon = cluster.horizon_s if horizon_s is None else horizon_s
    arrivals = cluster.arrivals
    if rate_per_s is not None:
        arrivals = dataclasses.replace(arrivals, rate_per_s=rate_per_s)
    return dataclasses.replace(
        cluster, churn=ChurnSpec(enabled=False), horizon_s=horizon, arrivals=arrivals,
        residency=ResidencySpec(mode="fixed"),
        uncertainty=UncertaintySpec(node_speed_sigma=0.0, request_noise_sigma=0.0,
                                    scrape_interval_s=0.0),
    )


def draw_requests(cluster: ClusterConfig, seed: int) -> list[Request]:
    """The episode's requests, drawn exactly as the simulator draws them for ``seed``."""
    arrivals_rng, _ = episode_generators(seed)
    work: Workload = draw_workload(cluster, arrivals_rng)
    models = cluster.models
    return [
        Request(
            index=i,
            arrival_s=float(work.arrival_s_T[i]),
            model=models[int(work.model_T[i])].name,
            steps=int(work.steps_T[i]),
            input_mbit=float(work.input_mbit_T[i]),
            cpu=models[int(work.model_T[i])].cpu,
            memory_gib=models[int(work.model_T[i])].memory_gib,
        )
        for i in range(len(work))
    ]


def capable_profiles(cluster: ClusterConfig) -> dict[str, list[str]]:
    """Model -> GPU profiles (present in the cluster) that can run it."""
    used = {g.profile for g in cluster.nodes}
    return {
        m.name: sorted(p for p in used if cluster.gpu_profiles[p].can_run(m.name))
        for m in cluster.models
    }


def request_pod(
    req: Request,
    profiles: Sequence[str],
    created_s: float,
    scheduler_name: str = "default-scheduler",
    exclusive: bool = False,
) -> dict[str, Any]:
    """The Pod body of one request, with a required affinity to the GPU profiles that can run
    its model (the counterpart of the simulator's node mask)."""
    body = aigc_pod_manifest(
        f"aigc-{req.index:06d}",
        req.model,
        req.steps,
        cpu=req.cpu,
        memory_gib=req.memory_gib,
        scheduler_name=scheduler_name,
        namespace=NAMESPACE,
        input_mbit=req.input_mbit,
        created_s=created_s,
        exclusive=exclusive,
    )
    term = {
        "matchExpressions": [{"key": GPU_PROFILE_LABEL, "operator": "In", "values": list(profiles)}]
    }
    body["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
        }
    }
    return body
