"""An extender built in process over a scenario's offline cluster, warmed, with request bodies.

Shared by ``benchmarks/gc_pauses.py`` and ``benchmarks/prioritize_phases.py``: the state
``ladts bench extender`` serves (``ladts_operator.offline``), without HTTP.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from ladts_operator.offline import OfflineCluster, pod_object, populate, scaled_nodes
from ladts_operator.runtime import Runtime, build_runtime
from ladts_operator.settings import ServeSettings
from ladts_policy.sim.config.scenario import load_scenario

WARMUP_REQUESTS = 50
"""Filter + prioritize pairs answered before measuring (caches, each node's first replay)."""


@dataclass
class InProcessExtender:
    """A warmed runtime, its offline cluster and 300 request bodies over every node."""

    rt: Runtime
    """The runtime ``ladts serve`` would build (state, extender, scorer)."""

    cluster: OfflineCluster
    """The simulated cluster behind the state; ``advance(clock)`` finishes pods."""

    bodies: list[bytes]
    """Extender request bodies (``Pod`` and ``NodeNames``), cycled by the benchmarks."""


def build(scenario: str, policy: str, nodes: int, seed: int) -> InProcessExtender:
    """Build and warm the extender (``policy``: ``bundled``, a file, or ``none``)."""
    config = load_scenario(scenario).cluster
    rt = build_runtime(ServeSettings(policy=None if policy == "none" else policy),
                       profiles=config.gpu_profiles)
    node_specs = scaled_nodes(config, nodes)
    populate(rt.state, config, seed=seed, nodes=node_specs)
    names = [n.name for n in node_specs]
    cluster = OfflineCluster(rt.state, config, seed=seed)
    rng = random.Random(seed + 1)
    bodies = [json.dumps({"Pod": pod_object(config, rng, i), "NodeNames": names}).encode()
              for i in range(300)]
    for body in bodies[:WARMUP_REQUESTS]:
        rt.extender.handle("filter", body)
        rt.extender.handle("prioritize", body)
    return InProcessExtender(rt, cluster, bodies)
