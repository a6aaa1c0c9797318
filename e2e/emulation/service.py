"""The emulation's service model: one simulator :class:`NodeServer` per scenario node.

This is a thin adapter: the discipline itself (FIFO up to the node's concurrency, VRAM
admission with LRU eviction of idle models, cold-start load time) lives in
:mod:`ladts_policy.sim.dynamics.node_service` and is exactly what the simulator uses. The controller
keeps one :class:`~e2e.emulation.node_queue.NodeQueue` per node built from
:meth:`ScenarioService.server_factory`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from e2e.emulation.pods import AigcWork
from ladts_policy.sim.config.cluster_config import ClusterConfig, NodeSpec
from ladts_policy.sim.dynamics.node_service import NodeServer, ServiceTask


class ScenarioService:
    """Node specs and per-model pod requests of one scenario."""

    def __init__(self, specs: Sequence[NodeSpec], config: ClusterConfig | None = None) -> None:
        """Index the nodes; ``config`` supplies the pods' cpu/memory per model."""
        self._specs = {s.name: s for s in specs}
        self._requests = {m.name: (m.cpu, m.memory_gib) for m in (config.models if config else ())}

    @property
    def node_names(self) -> list[str]:
        """Nodes served, in scenario order."""
        return list(self._specs)

    def server_factory(self, node: str) -> Callable[[], NodeServer]:
        """A builder of the node's fresh (idle, preloaded) server.

        Raises:
            KeyError: ``node`` is not a scenario node.
        """
        spec = self._specs[node]
        return lambda: NodeServer.from_spec(spec)

    def task(self, work: AigcWork) -> ServiceTask:
        """The node-side view of one pod's work (cpu/memory requests of its model)."""
        cpu, mem = self._requests.get(work.model, (0.0, 0.0))
        return ServiceTask(model=work.model, steps=work.steps, cpu=cpu, memory_gib=mem)

    def expected(self, node: str, model: str, steps: int, cold: bool) -> float:
        """Run time of one pod on ``node`` (load if cold + overhead + steps × s/step)."""
        return NodeServer.from_spec(self._specs[node]).service_s(model, steps, cold)

    def gpu_memory_gib(self, node: str, model: str) -> float:
        """GPU memory ``model`` holds on ``node`` while it runs (0 when unknown)."""
        timing = self._specs[node].profile.timings.get(model)
        return timing.memory_gib if timing else 0.0
