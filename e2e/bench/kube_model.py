"""A kube-scheduler-faithful placement model over the simulator's node service (pure Python).

The simulator's ``spread`` heuristic places every pod on arrival on the node with the least
requested share of allocatable, clipped at 1, even when the pod's requests no longer fit
there. kube-scheduler does not: its ``NodeResourcesFit`` filter rejects a node whose unfinished
pods' requests plus this pod's exceed allocatable, so such a pod stays Pending in one
cluster-wide queue and is bound, when a pod finishes somewhere, to a node that has room
(``pkg/scheduler/framework/plugins/noderesources``). This module replays a request stream with
that behaviour, to tell modelling differences from emulation artefacts:

- Filter: GPU-profile affinity (the benchmark's pods carry it) and ``requested + pod <=
  allocatable`` for cpu and memory.
- Score: ``NodeResourcesFit`` LeastAllocated (cpu and memory, weight 1 each, integer maths) plus
  ``NodeResourcesBalancedAllocation`` (v1.36: the change of ``(1 - |f_cpu - f_mem| / 2) * 100``
  that the pod brings, mapped to 50..100), both weight 1; the other default plugins score every
  node alike here. Ties are broken uniformly at random.
- ``percentageOfNodesToScore`` (adaptive default): from 100 nodes on, only the first
  ``max(100, N * (50 - N/125) / 100)`` feasible nodes found, scanning from a rotating start
  index, are scored.
- Unschedulable pods wait in FIFO order and are retried whenever a pod finishes (no backoff:
  the emulated scheduler pops its backoff queue whenever its active queue is empty).

Node service itself (FIFO per node, VRAM admission, cold starts) is the simulator's
:class:`~ladts_policy.sim.node_service.NodeServer`, as in the simulator and the emulation.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ladts_policy.sim.cluster_config import ClusterConfig
from ladts_policy.sim.node_service import NodeServer, ServiceTask

MAX_NODE_SCORE = 100
MIN_FEASIBLE_NODES_TO_FIND = 100


class RequestLike(Protocol):
    """What the model needs of a request (read-only attributes)."""

    @property
    def arrival_s(self) -> float:
        """Arrival time, seconds."""
        ...

    @property
    def model(self) -> str:
        """Model name."""
        ...

    @property
    def steps(self) -> int:
        """Denoising steps."""
        ...

    @property
    def cpu(self) -> float:
        """CPU request, cores."""
        ...

    @property
    def memory_gib(self) -> float:
        """Memory request, GiB."""
        ...


def num_feasible_nodes_to_find(num_nodes: int) -> int:
    """kube-scheduler's adaptive ``percentageOfNodesToScore`` (``schedule_one.go``)."""
    if num_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_nodes
    percentage = max(5, 50 - num_nodes // 125)
    return max(MIN_FEASIBLE_NODES_TO_FIND, num_nodes * percentage // 100)


def least_allocated(
    req_m: np.ndarray, cap_m: np.ndarray, req_b: np.ndarray, cap_b: np.ndarray
) -> np.ndarray:
    """LeastAllocated score per node (requests include the incoming pod; milli-cores, bytes)."""
    cpu = np.where(req_m > cap_m, 0, (cap_m - req_m) * MAX_NODE_SCORE // cap_m)
    mem = np.where(req_b > cap_b, 0, (cap_b - req_b) * MAX_NODE_SCORE // cap_b)
    return np.asarray((cpu + mem) // 2)


def _balance(
    req_m: np.ndarray, cap_m: np.ndarray, req_b: np.ndarray, cap_b: np.ndarray
) -> np.ndarray:
    """``int((1 - |f_cpu - f_mem| / 2) * 100)`` with fractions capped at 1."""
    f_cpu = np.minimum(req_m / cap_m, 1.0)
    f_mem = np.minimum(req_b / cap_b, 1.0)
    return np.asarray(((1.0 - np.abs(f_cpu - f_mem) / 2.0) * MAX_NODE_SCORE).astype(np.int64))


def balanced_allocation(
    alloc_m: np.ndarray,
    cap_m: np.ndarray,
    alloc_b: np.ndarray,
    cap_b: np.ndarray,
    pod_m: int,
    pod_b: int,
) -> np.ndarray:
    """BalancedAllocation score per node as of v1.36: the change in balance the pod brings.

    ``50 + (50 + balance_with_pod - balance_without_pod) / 2`` (Go integer division).
    """
    with_pod = _balance(alloc_m + pod_m, cap_m, alloc_b + pod_b, cap_b)
    without = _balance(alloc_m, cap_m, alloc_b, cap_b)
    half = MAX_NODE_SCORE // 2
    return np.asarray(half + np.trunc((half + with_pod - without) / 2).astype(np.int64))


class KubeSchedulerModel:
    """Replays requests with kube-scheduler's default filtering/scoring and a pending queue."""

    def __init__(self, cluster: ClusterConfig, seed: int) -> None:
        """Build node servers and allocatable arrays for the scenario's nodes."""
        self.specs = cluster.expand_nodes()
        self.servers = [NodeServer.from_spec(s) for s in self.specs]
        self.profile = [s.profile.name for s in self.specs]
        self.cap_m = np.array([round(s.cpu * 1000) for s in self.specs], dtype=np.int64)
        self.cap_b = np.array([round(s.memory_gib * 2**30) for s in self.specs], dtype=np.int64)
        self.req_m = np.zeros(len(self.specs), dtype=np.int64)
        self.req_b = np.zeros(len(self.specs), dtype=np.int64)
        self.capable = {
            m.name: np.array([s.profile.can_run(m.name) for s in self.specs])
            for m in cluster.models
        }
        self.k = num_feasible_nodes_to_find(len(self.specs))
        self.start = 0
        self.rng = np.random.default_rng(seed)

    def _choose(self, req: RequestLike) -> int | None:
        """Node for one pod now, or None when no node passes the filters."""
        pod_m, pod_b = round(req.cpu * 1000), round(req.memory_gib * 2**30)
        fits = (
            self.capable[req.model]
            & (self.req_m + pod_m <= self.cap_m)
            & (self.req_b + pod_b <= self.cap_b)
        )
        n = len(fits)
        order = np.roll(np.arange(n), -self.start)
        feasible = order[fits[order]]
        if feasible.size == 0:
            return None
        if n >= MIN_FEASIBLE_NODES_TO_FIND:
            if feasible.size > self.k:
                processed = int(np.flatnonzero(fits[order])[self.k - 1]) + 1
                feasible = feasible[: self.k]
            else:
                processed = n
            self.start = (self.start + processed) % n
        am, ab = self.req_m[feasible], self.req_b[feasible]
        cm, cb = self.cap_m[feasible], self.cap_b[feasible]
        score = least_allocated(am + pod_m, cm, ab + pod_b, cb) + balanced_allocation(
            am, cm, ab, cb, pod_m, pod_b
        )
        best = np.flatnonzero(score == score.max())
        return int(feasible[best[self.rng.integers(best.size)]])

    def run(self, requests: Sequence[RequestLike]) -> list[float]:
        """Service delays (finish - arrival) of every request, in request order."""
        delays = [math.nan] * len(requests)
        finishes: list[tuple[float, int, int, int]] = []  # (finish, node, milli-cpu, bytes)
        pending: list[int] = []
        nxt, t = 0, 0.0
        while nxt < len(requests) or pending:
            upcoming = requests[nxt].arrival_s if nxt < len(requests) else math.inf
            if pending and finishes:
                upcoming = min(upcoming, finishes[0][0])
            if math.isinf(upcoming):
                raise RuntimeError(f"{len(pending)} pods can never be scheduled")
            t = max(t, upcoming)
            while finishes and finishes[0][0] <= t:
                _, node, m, b = heapq.heappop(finishes)
                self.req_m[node] -= m
                self.req_b[node] -= b
            while nxt < len(requests) and requests[nxt].arrival_s <= t:
                pending.append(nxt)
                nxt += 1
            pending = self._schedule_pending(requests, pending, t, finishes, delays)
        return delays

    def _schedule_pending(
        self,
        requests: Sequence[RequestLike],
        pending: list[int],
        t: float,
        finishes: list[tuple[float, int, int, int]],
        delays: list[float],
    ) -> list[int]:
        """Try every pending pod in FIFO order; return those still unschedulable."""
        still: list[int] = []
        blocked: set[str] = set()  # pods of one model share requests and affinity
        for i in pending:
            req = requests[i]
            node = None if req.model in blocked else self._choose(req)
            if node is None:
                blocked.add(req.model)
                still.append(i)
                continue
            task = ServiceTask(req.model, req.steps, cpu=req.cpu, memory_gib=req.memory_gib)
            placed = self.servers[node].place(task, t)
            m, b = round(req.cpu * 1000), round(req.memory_gib * 2**30)
            self.req_m[node] += m
            self.req_b[node] += b
            heapq.heappush(finishes, (placed.finish_s, node, m, b))
            delays[i] = placed.finish_s - req.arrival_s
        return still


def kube_scheduler_delays(
    cluster: ClusterConfig, requests: Sequence[RequestLike], seed: int
) -> list[float]:
    """Convenience wrapper: delays of ``requests`` under :class:`KubeSchedulerModel`."""
    return KubeSchedulerModel(cluster, seed).run(requests)
