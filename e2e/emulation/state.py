"""Thread-safe emulation state shared by the controller (writer) and the exporter (reader).

Pure bookkeeping, no I/O: which AIGC pods are running on which emulated node and how much GPU
(and host) memory they hold. The fake exporter turns a :meth:`EmulationState.snapshot` into
dcgm-exporter and node-exporter series.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field

MIB = 1024 * 1024
GIB = 1024 * MIB


@dataclass(frozen=True)
class NodeHardware:
    """Static facts of one emulated node, as the exporters would report them.

    Attributes:
        name: Kubernetes node name (the dcgm-exporter host label value).
        gpu_model_name: GPU product name (dcgm-exporter ``modelName``).
        gpu_count: GPUs on the node (one series set per GPU).
        vram_mib: Framebuffer size of one GPU, MiB.
        memory_bytes: Host memory (node-exporter ``MemTotal``).
        unified_memory: True when GPU and host share DRAM (Jetson): model memory then also
            lowers ``MemAvailable``.
    """

    name: str
    gpu_model_name: str
    gpu_count: int
    vram_mib: float
    memory_bytes: int
    unified_memory: bool = False

    def gpu_uuid(self, index: int) -> str:
        """Return a stable fake ``GPU-…`` UUID for GPU ``index`` of this node."""
        return f"GPU-{uuid.uuid5(uuid.NAMESPACE_DNS, f'{self.name}.gpu{index}.ladts')}"


@dataclass(frozen=True)
class GpuSample:
    """One GPU's current values (one row of dcgm-exporter output)."""

    node: str
    gpu_index: int
    uuid: str
    model_name: str
    util_pct: float
    fb_used_mib: float
    fb_free_mib: float


@dataclass(frozen=True)
class HostSample:
    """One node's host memory (node-exporter)."""

    node: str
    mem_total_bytes: int
    mem_available_bytes: int


@dataclass(frozen=True)
class Snapshot:
    """Everything the exporter serves at one instant."""

    gpus: tuple[GpuSample, ...]
    hosts: tuple[HostSample, ...]


@dataclass
class _NodeLoad:
    """Mutable per-node load: running pod -> GPU memory (GiB) and host memory (bytes)."""

    running_gpu_gib: dict[str, float] = field(default_factory=dict)
    running_host_bytes: dict[str, int] = field(default_factory=dict)


def _gpu_samples(hw: NodeHardware, load: _NodeLoad) -> list[GpuSample]:
    """Spread the node's running model memory over its GPUs (first-fit by index)."""
    used_mib = [0.0] * hw.gpu_count
    for gib in sorted(load.running_gpu_gib.values(), reverse=True):
        target = min(range(hw.gpu_count), key=lambda i: used_mib[i])
        used_mib[target] += gib * 1024.0
    samples = []
    for i in range(hw.gpu_count):
        used = min(used_mib[i], hw.vram_mib)
        busy = used_mib[i] > 0.0 or (i == 0 and bool(load.running_gpu_gib))
        samples.append(
            GpuSample(
                node=hw.name,
                gpu_index=i,
                uuid=hw.gpu_uuid(i),
                model_name=hw.gpu_model_name,
                util_pct=100.0 if busy else 0.0,
                fb_used_mib=round(used, 3),
                fb_free_mib=round(hw.vram_mib - used, 3),
            )
        )
    return samples


def _host_sample(hw: NodeHardware, load: _NodeLoad) -> HostSample:
    """Host memory: total minus running pods' requests (and model memory when unified)."""
    used = sum(load.running_host_bytes.values())
    if hw.unified_memory:
        used += int(sum(load.running_gpu_gib.values()) * GIB)
    return HostSample(
        node=hw.name,
        mem_total_bytes=hw.memory_bytes,
        mem_available_bytes=max(0, hw.memory_bytes - used),
    )


class EmulationState:
    """Per-node running AIGC pods, updated by the controller and read by the exporter."""

    def __init__(self, nodes: list[NodeHardware] | None = None) -> None:
        """Create the state for ``nodes`` (more can be added with :meth:`set_nodes`)."""
        self._lock = threading.Lock()
        self._hardware: dict[str, NodeHardware] = {}
        self._load: dict[str, _NodeLoad] = {}
        self.set_nodes(nodes or [])

    def set_nodes(self, nodes: list[NodeHardware]) -> None:
        """Add or replace nodes; existing load on a replaced node is kept."""
        with self._lock:
            for hw in nodes:
                self._hardware[hw.name] = hw
                self._load.setdefault(hw.name, _NodeLoad())

    def remove_node(self, name: str) -> None:
        """Forget a node and its load (its series disappear from the exporter)."""
        with self._lock:
            self._hardware.pop(name, None)
            self._load.pop(name, None)

    def node_names(self) -> list[str]:
        """Names of the known nodes, sorted."""
        with self._lock:
            return sorted(self._hardware)

    def start(self, node: str, pod: str, gpu_gib: float, host_bytes: int = 0) -> None:
        """Record that ``pod`` started on ``node`` holding ``gpu_gib`` of GPU memory."""
        with self._lock:
            load = self._load.setdefault(node, _NodeLoad())
            load.running_gpu_gib[pod] = gpu_gib
            load.running_host_bytes[pod] = host_bytes

    def finish(self, node: str, pod: str) -> None:
        """Record that ``pod`` finished (no error when it was never started)."""
        with self._lock:
            load = self._load.get(node)
            if load is not None:
                load.running_gpu_gib.pop(pod, None)
                load.running_host_bytes.pop(pod, None)

    def running(self, node: str) -> list[str]:
        """Pods currently running on ``node``."""
        with self._lock:
            load = self._load.get(node)
            return sorted(load.running_gpu_gib) if load else []

    def snapshot(self) -> Snapshot:
        """Return the current per-GPU and per-host values of every node."""
        with self._lock:
            gpus: list[GpuSample] = []
            hosts: list[HostSample] = []
            for name in sorted(self._hardware):
                hw, load = self._hardware[name], self._load[name]
                gpus.extend(_gpu_samples(hw, load))
                hosts.append(_host_sample(hw, load))
        return Snapshot(gpus=tuple(gpus), hosts=tuple(hosts))
