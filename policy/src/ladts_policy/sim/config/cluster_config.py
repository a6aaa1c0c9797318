"""Typed configuration of the ``k8s-edge`` scenario: GPU profiles, models, nodes, load, churn.

Units: seconds, GiB, CPU cores, megabits. The GPU figures come from
``docs/scenarios.md`` (GPU profile defaults and their sources); the sources quote GB and
the tables use the same numbers as GiB (a 7 % difference, far inside the stated ranges). Parsing and
validation live in :mod:`ladts_policy.sim.config.cluster_schema`; the schema is documented in
``docs/scenarios.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class ModelTiming:
    """How one model runs on one GPU class (``request latency = overhead + steps * step``)."""

    s_per_step: float
    """Seconds per denoising step at the model's default resolution, batch 1
    (gpu-profiles.md §3, column "s/step")."""

    overhead_s: float
    """Fixed seconds per request: text encoders, VAE decode, pipeline bookkeeping
    (gpu-profiles.md §3, column "Overhead s")."""

    memory_gib: float
    """GPU memory (VRAM, or usable unified memory on Jetson) the loaded model occupies while
    serving batch 1, activations included (gpu-profiles.md §3, column "Memory GB")."""

    load_s: float
    """Cold start: seconds to load the model before its first request on a node (runtime
    init, weights from local disk with a cold page cache, warm-up; gpu-profiles.md §3,
    column "Load s")."""

    def service_s(self, steps: int) -> float:
        """Seconds to serve one warm request of ``steps`` denoising steps."""
        return float(warm_service_s(self.overhead_s, self.s_per_step, steps))

    def run_s(self, steps: int, cold: bool) -> float:
        """Profile seconds of one request: the load when ``cold``, then the warm run."""
        return (self.load_s if cold else 0.0) + self.service_s(steps)


def warm_service_s(overhead_s: np.ndarray | float, s_per_step: np.ndarray | float,
                   steps: np.ndarray | float) -> np.ndarray | float:
    """Profile seconds of one warm request: ``overhead_s + steps * s_per_step``.

    The one implementation of the warm run time, for scalars or arrays (element-wise); the
    compiled simulator's twin is ``ladts_policy.sim.dynamics.vec_dynamics._service``, which the
    differential tests (``tests/policy/test_cluster_vec.py``) hold to it.
    """
    return overhead_s + steps * s_per_step


@dataclass(frozen=True)
class GpuProfile:
    """One GPU class: memory and per-model timings. A model absent here cannot run on it."""

    name: str
    """Profile name referenced by node groups and by the ``ladts.io/gpu-profile`` label."""

    product_label: str
    """Value of the node label ``nvidia.com/gpu.product`` that identifies this class."""

    vram_gib: float
    """Usable GPU memory in GiB (on Jetson: shared DRAM minus OS; gpu-profiles.md §2)."""

    timings: Mapping[str, ModelTiming]
    """Per-model timings keyed by model name; a model missing here never fits this class."""

    description: str = ""
    """Free text: where the numbers come from."""

    share_slowdown: float = 1.0
    """Slowdown of pods sharing the time-sliced GPU (``concurrency > 1``): a pod that starts
    while ``k - 1`` others run takes ``1 + share_slowdown * (k - 1)`` times its time alone.
    1 (default) is pure time slicing, where k pods each get 1/k of the GPU (NVIDIA's GPU
    time-slicing shares the GPU round-robin between processes with no memory or fault
    isolation and no throughput gain); below 1 models overlap gains (e.g. MPS)."""

    def can_run(self, model: str) -> bool:
        """Whether ``model`` has timings here and fits in the usable memory."""
        timing = self.timings.get(model)
        return timing is not None and timing.memory_gib <= self.vram_gib


@dataclass(frozen=True)
class ModelSpec:
    """A diffusion model in the workload mix and the pod that serves one request of it."""

    name: str
    """Model name; must have timings in at least one node's GPU profile."""

    weight: float
    """Relative share of arrivals (normalised over all models; any positive number)."""

    steps: tuple[int, int]
    """Denoising steps per request, drawn uniformly from ``[low, high]`` inclusive."""

    input_mbit: tuple[float, float]
    """Request payload in megabits (prompt plus optional image), uniform on ``[low, high]``;
    carried as a task feature, it does not change the service time."""

    cpu: float = 1.0
    """CPU request of the pod in cores (kube-scheduler's NodeResourcesFit view; default 1)."""

    memory_gib: float = 4.0
    """Host memory request of the pod in GiB (default 4; not the GPU memory)."""


@dataclass(frozen=True)
class ArrivalSpec:
    """The request arrival process of the whole cluster."""

    process: str = "poisson"
    """``poisson`` (constant rate) or ``bursty`` (two-state Markov-modulated Poisson)."""

    rate_per_s: float = 1.0
    """Long-run mean arrival rate in requests per second (same mean for both processes)."""

    burst_multiplier: float = 5.0
    """``bursty`` only: arrival rate in the burst state divided by the calm-state rate."""

    burst_time_fraction: float = 0.2
    """``bursty`` only: long-run share of time spent in the burst state, in (0, 1)."""

    mean_burst_s: float = 120.0
    """``bursty`` only: mean duration of one burst in seconds (exponential sojourns)."""

    def state_rates(self) -> tuple[float, float]:
        """Return ``(calm, burst)`` rates in requests/s whose time-average is ``rate_per_s``."""
        if self.process == "poisson":
            return self.rate_per_s, self.rate_per_s
        f, k = self.burst_time_fraction, self.burst_multiplier
        calm = self.rate_per_s / (f * k + 1.0 - f)
        return calm, calm * k

    def mean_calm_s(self) -> float:
        """Mean calm-state duration in seconds implied by the burst fraction."""
        f = self.burst_time_fraction
        return self.mean_burst_s * (1.0 - f) / f


@dataclass(frozen=True)
class ChurnSpec:
    """Nodes leaving and rejoining. Disabled unless ``enabled`` is true."""

    enabled: bool = False
    """Whether nodes leave and rejoin during an episode."""

    mean_up_s: float = 3600.0
    """Mean seconds a node stays in the cluster before it leaves (exponential)."""

    mean_down_s: float = 600.0
    """Mean seconds a node stays away before it rejoins (exponential)."""

    max_down_fraction: float = 0.25
    """A leave is skipped if more than this share of nodes would be away, or if some model
    of the mix would have no schedulable node left."""


@dataclass(frozen=True)
class ResidencySpec:
    """Which models each node holds when the episode starts (and after a cold restart)."""

    mode: str = "fixed"
    """``fixed``: every node group's ``resident`` list, as written. ``random``: drawn per
    node and episode: the models the node can run in random order, each kept while it fits
    the GPU memory left, at most ``max_models``; the ``resident`` lists are ignored. A
    policy cannot then win by memorising one good placement of one preset."""

    max_models: int = 2
    """``random`` only: at most this many models per node (0 = empty caches)."""


@dataclass(frozen=True)
class DriftSpec:
    """Model-popularity drift: one model is rolled out during the episode.

    The rolled-out model's weight is multiplied by ``initial_share`` until a start time
    drawn uniformly in ``start_fraction x horizon_s``, then rises linearly to its full
    weight over ``ramp_s`` seconds; the other weights stay. Requests draw their model from
    the weights at their arrival time.
    """

    enabled: bool = False
    """Whether the mix drifts."""

    model: str = ""
    """The rolled-out model; empty = drawn uniformly from the mix per episode."""

    initial_share: float = 0.05
    """Multiplier of the model's weight before the roll-out starts (near zero: a new model)."""

    start_fraction: tuple[float, float] = (0.0, 0.5)
    """The roll-out starts at a uniform time in ``[low, high] x horizon_s``."""

    ramp_s: float = 900.0
    """Seconds from the start of the roll-out to the model's full weight."""


@dataclass(frozen=True)
class UncertaintySpec:
    """What the scheduler cannot see exactly: hidden speed, request noise, metric age.

    Realised run times are the profile's times x the node's hidden speed factor x the
    request's noise factor (both lognormal with median 1, drawn per episode from the seed).
    Schedulers never see them: they see the profile corrected by
    ``ladts_policy.service_estimate.ServiceTimeCorrector`` from completed requests.
    """

    node_speed_sigma: float = 0.15
    """Log-standard deviation of the hidden per-node speed factor (one draw per node and
    episode; 0.15 puts 95% of nodes within x0.75..x1.35 of their profile). Identical GPUs
    differ by up to about 20% in measured performance (Sinha et al., "Not All GPUs Are
    Created Equal", SC'22), and Jetson power modes, thermals and clocks move the same board
    further; the profile defaults themselves are stated to ±50% for Orin NX/Nano
    (docs/scenarios.md)."""

    request_noise_sigma: float = 0.05
    """Log-standard deviation of one request's run time around its node's (run-to-run
    jitter of a fixed-step diffusion pipeline: a few percent)."""

    scrape_interval_s: float = 15.0
    """Prometheus scrape interval, s: metrics the operator reads from Prometheus (loaded
    models, free GPU memory) are this stale at worst; each node has its own scrape phase.
    15 s is the dcgm-exporter Helm chart's ServiceMonitor interval. 0 = always fresh."""


@dataclass(frozen=True)
class NodeSpec:
    """One node of the cluster, after expanding its group."""

    name: str
    """Stable node name ``<name_prefix>-<index in group>``, e.g. ``edge-orin-0``."""

    profile: GpuProfile
    """The node's GPU class."""

    concurrency: int
    """Pods the node runs at the same time (time-sliced GPU); default 1."""

    resident: tuple[str, ...]
    """Models loaded when the node (re)starts, so their first request is warm."""

    cpu: float
    """Allocatable CPU cores (NodeResourcesFit denominator)."""

    memory_gib: float
    """Allocatable host memory in GiB (NodeResourcesFit denominator)."""

    group: int
    """Index of the node group this node came from."""


@dataclass(frozen=True)
class NodeGroup:
    """``count`` identical nodes."""

    profile: str
    """Name of the GPU profile of these nodes."""

    count: int
    """Number of nodes in the group."""

    name_prefix: str
    """Node names are ``<name_prefix>-0`` … ``<name_prefix>-<count-1>``; defaults to the
    profile name."""

    concurrency: int = 1
    """Pods a node runs at the same time; default 1 (docs/design.md: one pod at a time)."""

    resident: tuple[str, ...] = ()
    """Models preloaded at node start; must fit the GPU together."""

    cpu: float = 8.0
    """Allocatable CPU cores per node (default 8)."""

    memory_gib: float = 32.0
    """Allocatable host memory per node in GiB (default 32)."""


@dataclass(frozen=True)
class ClusterConfig:
    """The complete ``k8s-edge`` scenario."""

    horizon_s: float
    """Seconds of cluster time during which requests arrive (the episode length)."""

    arrivals: ArrivalSpec
    """Arrival process of requests."""

    models: tuple[ModelSpec, ...]
    """The workload mix."""

    gpu_profiles: Mapping[str, GpuProfile]
    """GPU classes by name: the shipped ``scenarios/gpu-profiles.yaml`` plus inline ones."""

    nodes: tuple[NodeGroup, ...]
    """Node groups, expanded in order by :meth:`expand_nodes`."""

    churn: ChurnSpec = field(default_factory=ChurnSpec)
    """Node leave/rejoin process."""

    exclusive: bool = False
    """If true, pods request ``nvidia.com/gpu: 1``: a pod waits unscheduled in a cluster-wide
    queue until a node has a free GPU slot, instead of queueing at its node."""

    uncertainty: UncertaintySpec = field(default_factory=UncertaintySpec)
    """Hidden node speed, request noise and metric age (what schedulers cannot see)."""

    residency: ResidencySpec = field(default_factory=ResidencySpec)
    """Initial resident models: fixed lists or drawn per episode."""

    drift: DriftSpec = field(default_factory=DriftSpec)
    """Model-popularity drift over the episode."""

    def expand_nodes(self) -> list[NodeSpec]:
        """Return every node in group order with its stable name."""
        out: list[NodeSpec] = []
        for g, group in enumerate(self.nodes):
            profile = self.gpu_profiles[group.profile]
            for i in range(group.count):
                out.append(
                    NodeSpec(
                        name=f"{group.name_prefix}-{i}",
                        profile=profile,
                        concurrency=group.concurrency,
                        resident=group.resident,
                        cpu=group.cpu,
                        memory_gib=group.memory_gib,
                        group=g,
                    )
                )
        return out

    def profile_for_label(self, product_label: str) -> GpuProfile | None:
        """The GPU profile whose ``product_label`` equals a node's ``nvidia.com/gpu.product``."""
        for profile in self.gpu_profiles.values():
            if profile.product_label == product_label:
                return profile
        return None

    @property
    def model_names(self) -> tuple[str, ...]:
        """Model names in mix order (the model index used by the simulator)."""
        return tuple(m.name for m in self.models)

    @property
    def num_nodes(self) -> int:
        """Total number of nodes over all groups."""
        return sum(g.count for g in self.nodes)
