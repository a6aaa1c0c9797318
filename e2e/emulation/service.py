"""The emulation's service model: one simulator :class:`NodeServer` per scenario node.

This is a thin adapter: the discipline itself (FIFO up to the node's concurrency, VRAM
admission with LRU eviction of idle models, cold-start load time) lives in
:mod:`ladts_policy.sim.node_service` and is exactly what the simulator uses.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from e2e.emulation.controller import Placement
from e2e.emulation.pods import AigcWork
from ladts_policy.sim.cluster_config import ClusterConfig, NodeSpec
from ladts_policy.sim.node_service import NodeServer, ServiceTask


class ScenarioService:
    """Per-node :class:`NodeServer` instances keyed by node name (thread-safe)."""

    def __init__(self, specs: Sequence[NodeSpec], config: ClusterConfig | None = None) -> None:
        """Build one server per node; ``config`` supplies the pods' cpu/memory per model."""
        self._specs = {s.name: s for s in specs}
        self._servers = {s.name: NodeServer.from_spec(s) for s in specs}
        self._requests = {m.name: (m.cpu, m.memory_gib) for m in (config.models if config else ())}
        self._lock = threading.Lock()

    @property
    def node_names(self) -> list[str]:
        """Nodes served, in scenario order."""
        return list(self._specs)

    def place(self, node: str, work: AigcWork, now_s: float) -> Placement:
        """Queue ``work`` on ``node`` at cluster time ``now_s`` and return its start and finish.

        Raises:
            KeyError: ``node`` is not a scenario node.
            ValueError: The model has no timings on the node or does not fit its GPU memory.
        """
        server = self._servers[node]
        cpu, mem = self._requests.get(work.model, (0.0, 0.0))
        task = ServiceTask(model=work.model, steps=work.steps, cpu=cpu, memory_gib=mem)
        with self._lock:
            placed = server.place(task, now_s)
        return Placement(start_s=placed.start_s, finish_s=placed.finish_s, cold=placed.cold)

    def expected(self, node: str, model: str, steps: int, cold: bool) -> float:
        """Run time of one pod on ``node`` (load if cold + overhead + steps × s/step)."""
        return self._servers[node].service_s(model, steps, cold)

    def is_loaded(self, node: str, model: str) -> bool:
        """Whether ``model`` is loaded on ``node`` as of the last placement."""
        return self._servers[node].is_loaded(model)

    def gpu_memory_gib(self, node: str, model: str) -> float:
        """GPU memory ``model`` holds on ``node`` while it runs (0 when unknown)."""
        timing = self._specs[node].profile.timings.get(model)
        return timing.memory_gib if timing else 0.0
