"""A simulated cluster for ``ladts serve --offline`` and ``ladts bench extender``.

The nodes of a ``k8s-edge`` scenario become Node objects (the scenario's names; label
``ladts.io/gpu-profile``; allocatable cpu/memory; annotation ``ladts.io/resident-models``
from the group's resident models), fed to the state store through the same parsers as a real
cluster's. Each node gets a seeded queue of 0-3 unfinished pods of models it can run, bound in
the last few seconds, so the scorer has queues to weigh. Pods for requests come from
:func:`pod_object` (the scenario's model mix and step ranges).
"""

from __future__ import annotations

import random
import time
from dataclasses import replace
from typing import Any

from ladts_operator.objects import (
    MODEL_ANNOTATION,
    PROFILE_LABEL,
    RESIDENT_ANNOTATION,
    STEPS_ANNOTATION,
    PodObservation,
    PodWork,
    parse_node,
)
from ladts_operator.state import ClusterState
from ladts_policy.sim.cluster_config import ClusterConfig, NodeSpec


def node_object(spec: NodeSpec) -> dict[str, Any]:
    """The Node object of one scenario node (as the API would return it)."""
    return {
        "metadata": {
            "name": spec.name,
            "labels": {PROFILE_LABEL: spec.profile.name,
                       "nvidia.com/gpu.product": spec.profile.product_label},
            "annotations": {RESIDENT_ANNOTATION: ",".join(spec.resident)},
        },
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "allocatable": {"cpu": str(spec.cpu), "memory": f"{int(spec.memory_gib)}Gi"},
        },
    }


def pod_object(config: ClusterConfig, rng: random.Random, index: int) -> dict[str, Any]:
    """A pending AIGC Pod object drawn from the scenario's model mix."""
    weights = [m.weight for m in config.models]
    model = rng.choices(config.models, weights=weights)[0]
    steps = rng.randint(*model.steps)
    return {
        "metadata": {
            "name": f"aigc-{index}",
            "namespace": "offline",
            "uid": f"00000000-0000-4000-8000-{index:012d}",
            "annotations": {MODEL_ANNOTATION: model.name, STEPS_ANNOTATION: str(steps)},
        },
        "spec": {
            "schedulerName": "ladts-scheduler",
            "containers": [{"name": "client", "image": "client",
                            "resources": {"requests": {"cpu": str(model.cpu),
                                                       "memory": f"{int(model.memory_gib)}Gi"}}}],
        },
        "status": {"phase": "Pending"},
    }


def scaled_nodes(config: ClusterConfig, count: int) -> list[NodeSpec]:
    """``count`` nodes cycling through the scenario's nodes (names ``<name>-r<k>``)."""
    base = config.expand_nodes()
    if count == len(base):
        return base
    return [replace(base[i % len(base)], name=f"{base[i % len(base)].name}-r{i // len(base)}")
            for i in range(count)]


def populate(state: ClusterState, config: ClusterConfig, *, seed: int,
             now: float | None = None, nodes: list[NodeSpec] | None = None) -> list[NodeSpec]:
    """Fill ``state`` with the scenario's nodes and seeded queues; return the nodes."""
    now = time.time() if now is None else now
    rng = random.Random(seed)
    nodes = config.expand_nodes() if nodes is None else nodes
    for spec in nodes:
        state.upsert_node(parse_node(node_object(spec)))
    runnable = {spec.name: [m for m in config.models if spec.profile.can_run(m.name)]
                for spec in nodes}
    index = 0
    for spec in nodes:
        for _ in range(rng.randint(0, 3)):
            if not runnable[spec.name]:
                break
            model = rng.choice(runnable[spec.name])
            state.upsert_pod(PodObservation(
                uid=f"offline-{index}", namespace="offline", name=f"queued-{index}",
                work=PodWork(model.name, rng.randint(*model.steps)), error=None,
                node=spec.name, bind_s=now - rng.uniform(0.0, 5.0), finished=False,
                finish_s=None, cpu=model.cpu, memory_gib=model.memory_gib))
            index += 1
    state.synced = True
    return nodes
