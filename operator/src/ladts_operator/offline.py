"""A simulated cluster for ``ladts serve --offline`` and ``ladts bench extender``.

The nodes of a ``k8s-edge`` scenario become Node objects (the scenario's names; label
``ladts.io/gpu-profile``; allocatable cpu/memory; annotation ``ladts.io/resident-models``
from the group's resident models), fed to the state store through the same parsers as a real
cluster's. Each node gets a seeded queue of 0-3 unfinished pods of models it can run, bound in
the last few seconds, so the scorer has queues to weigh. Pods for requests come from
:func:`pod_object` (the scenario's model mix and step ranges).

Time passes (:class:`OfflineCluster`), driven by wall time: the next pod to finish is the
one with the earliest finish in its node's replay of the *current* queue (the same
``NodeServer`` rules the scorer reads, from the state store), and it finishes exactly then.
Completions are taken one at a time in time order and every node is replayed again after its
queue changed (a completion, a new bind, a deleted or evicted pod), so each completion agrees
with the queue the store replays at that moment: for a node serving one pod at a time (every
offline node: :func:`node_object` sets no ``ladts.io/concurrency`` label, whatever the
scenario's ``concurrency``) its observed service time is the predicted one. (With more, the
replay restarts the node's running pods at each completion, and so would this clock.)
A seeded background pod is replaced, when it finishes, by a new one of the scenario's mix
bound to the same node when the replacement is made (at the tick's time, so it joins the
tail of the queue and never goes ahead of a pod already queued there); each node keeps its
seeded queue length (a steady state for the benchmark and for a user's curl session). A pod
bound through ``/bind`` finishes and leaves. Completions go through the state store like a
real cluster's, so residency, the trace and the service-time estimator see them.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
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
from ladts_operator.state import ClusterState, NodeEntry
from ladts_policy.sim.config.cluster_config import ClusterConfig, NodeSpec


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
                finish_s=None, cpu=model.cpu, memory_gib=model.memory_gib,
                created_s=now - 5.0))
            index += 1
    state.synced = True
    return nodes


log = logging.getLogger(__name__)

BACKGROUND_PREFIX = "offline-"
"""UID prefix of the seeded background pods (replaced when they finish)."""


class OfflineCluster:
    """Finishes the offline state's pods as wall time passes (see the module docstring)."""

    def __init__(self, state: ClusterState, config: ClusterConfig, *, seed: int,
                 tick_s: float = 0.25) -> None:
        self.state = state
        self.config = config
        self.tick_s = tick_s
        self.rng = random.Random(seed + 1_000_003)
        self.finished = 0
        # Per node: (its store entry and that entry's version when computed, (finish, uid) of
        # its next completion or None); recomputed only for nodes whose entry changed.
        self._next_finish: dict[str, tuple[NodeEntry, int, tuple[float, str] | None]] = {}
        self._next = 0
        # (finish, uid, node) of every node's next completion, kept between ticks: a tick
        # pushes entries only for the nodes the store says changed (``on_node_changed``),
        # so it costs the changes, not a walk over every node; an entry a later change
        # replaced is recognised as stale when it comes up.
        self._heap: list[tuple[float, str, str]] = []
        self._changed: set[str] = set(state.nodes)
        state.on_node_changed.append(self._changed.add)

    def advance(self, now: float) -> int:
        """Finish, in time order, every pod whose replayed finish is at or before ``now``.

        Returns:
            How many pods finished.
        """
        state = self.state
        done = 0
        finishing: set[str] = set()
        heap = self._heap
        self._push_changed()
        while heap and heap[0][0] <= now:
            finish, uid, node = heapq.heappop(heap)
            if node not in state.nodes or self._node_next(node) != (finish, uid, node):
                continue
            if uid in finishing:  # the store kept a finished pod queued: never loop on it
                log.warning("offline: pod %s stayed queued on %s after finishing", uid, node)
                heapq.heappush(heap, (finish, uid, node))
                break
            finishing.add(uid)
            pod = state.nodes[node].pods[uid]
            state.upsert_pod(replace(pod, finished=True, finish_s=finish))
            done += 1
            if uid.startswith(BACKGROUND_PREFIX):
                self._replace(node, now)
            self._push_changed()
        self.finished += done
        return done

    def _push_changed(self) -> None:
        """Push the next completion of every node changed since the last push."""
        changed = list(self._changed)
        self._changed.clear()  # the same set: the store's hook holds its ``add``
        for node in changed:
            if node not in self.state.nodes:
                self._next_finish.pop(node, None)
                continue
            following = self._node_next(node)
            if following is not None:
                heapq.heappush(self._heap, following)

    def _node_next(self, node: str) -> tuple[float, str, str] | None:
        """The next completion on ``node`` as its current queue replays: (finish, uid, node)."""
        entry = self.state.nodes[node]
        cached = self._next_finish.get(node)
        if cached is None or cached[0] is not entry or cached[1] != entry.version:
            nxt: tuple[float, str] | None = None
            if entry.pods and entry.profile is not None:  # no profile: never runs, stays queued
                # Replayed as of the earliest bind: the FIFO's own finishes, none shifted as
                # an overrun (the store's replay at a later ``now`` moves overdue finishes).
                earliest = min(p.bind_s or 0.0 for p in entry.pods.values())
                placements = self.state.replay(node, now=earliest, cache=False).placements
                nxt = min(((pl.finish_s, uid) for uid, pl in placements.items()), default=None)
            cached = self._next_finish[node] = (entry, entry.version, nxt)
        return None if cached[2] is None else (*cached[2], node)

    def _replace(self, node: str, at: float) -> None:
        profile = self.state.nodes[node].profile
        runnable = [m for m in self.config.models
                    if profile is not None and profile.can_run(m.name)]
        if not runnable:
            return
        model = self.rng.choice(runnable)
        self._next += 1
        uid = f"{BACKGROUND_PREFIX}r{self._next}"
        self.state.upsert_pod(PodObservation(
            uid=uid, namespace="offline", name=f"background-{self._next}",
            work=PodWork(model.name, self.rng.randint(*model.steps)), error=None, node=node,
            bind_s=at, finished=False, finish_s=None, cpu=model.cpu,
            memory_gib=model.memory_gib, bind_exact=True, created_s=at))

    async def run(self) -> None:
        """Advance with wall time every ``tick_s`` until cancelled."""
        while True:
            self.advance(time.time())
            await asyncio.sleep(self.tick_s)
