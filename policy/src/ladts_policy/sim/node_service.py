"""The service discipline of one GPU node, shared by the simulator and the e2e emulation.

Discipline (DESIGN.md, "Service discipline in k8s-edge"):

- A pod is placed when it is bound and queues at its node. The node runs at most
  ``concurrency`` pods at a time and starts them in placement (FIFO) order: a pod never
  starts before the pod placed ahead of it.
- A pod starts only when its model is loaded or fits in free GPU memory. Memory is counted
  per *model* (one model server per node, the GPU time-sliced): a loaded model occupies its
  ``memory_gib`` whether it is serving one pod, several, or none. Loaded models that no
  running pod uses are evicted least-recently-used first to make room.
- A pod whose model is not loaded pays ``load_s`` at its start (cold start); the model then
  stays loaded. Service time = ``load_s`` (if cold) + ``overhead_s`` + ``steps * s_per_step``.

Because starts are FIFO and every earlier pod's start and finish are known, a pod's start
and finish are fixed when it is placed. Moreover, after the last start the set of running
pods only shrinks, so "can a pod of model *m* start at time *t*" is monotone in *t*: each
model has a threshold :meth:`NodeServer.earliest_start`, and a pod placed at ``now`` starts
at ``max(now, threshold)``. Simulators cache that threshold per (node, model) and recompute
it only after a placement or a restart.

Pure Python (no numpy), so the e2e emulation controller can use it as is.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ladts_policy.sim.cluster_config import ModelTiming, NodeSpec


@dataclass(frozen=True)
class ServiceTask:
    """One inference request as the node sees it."""

    model: str
    """Model name (a key of the node's timings)."""

    steps: int
    """Denoising steps."""

    cpu: float = 0.0
    """CPU request of the pod in cores (counted by :meth:`NodeServer.requested`)."""

    memory_gib: float = 0.0
    """Host memory request of the pod in GiB (counted by :meth:`NodeServer.requested`)."""


@dataclass(frozen=True)
class Placement:
    """When a placed pod runs on its node."""

    start_s: float
    """Simulation time the pod starts (model load included in the run), seconds."""

    finish_s: float
    """Simulation time the pod finishes, seconds."""

    cold: bool
    """Whether the pod had to load its model (paid ``load_s``)."""

    evicted: tuple[str, ...] = ()
    """Idle models unloaded (LRU) at the start to make room."""


@dataclass(frozen=True)
class _Pod:
    finish_s: float
    start_s: float
    model: str
    cpu: float
    memory_gib: float


class NodeServer:
    """FIFO, memory-aware service of pods on one node (see the module docstring)."""

    def __init__(
        self,
        *,
        concurrency: int,
        vram_gib: float,
        timings: Mapping[str, ModelTiming],
        resident: Iterable[str] = (),
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.concurrency = concurrency
        self.vram_gib = vram_gib
        self.timings = dict(timings)
        self.preload = tuple(resident)
        self._pods: list[_Pod] = []  # unfinished pods, sorted by finish time
        self._finishes: list[float] = []  # parallel to _pods, for bisect
        self._last_start = -math.inf
        self._req_cpu = 0.0  # sums over _pods, kept incrementally
        self._req_mem = 0.0
        self._loaded: dict[str, float] = {}  # model -> last start using it (LRU order)
        self.revision = 0  # bumped by every placement and restart (lets callers cache)
        self.restart(0.0)

    @classmethod
    def from_spec(cls, spec: NodeSpec) -> NodeServer:
        """Build the server of one expanded node of a cluster scenario."""
        return cls(
            concurrency=spec.concurrency,
            vram_gib=spec.profile.vram_gib,
            timings=spec.profile.timings,
            resident=spec.resident,
        )

    # --- queries -------------------------------------------------------------------------

    def can_run(self, model: str) -> bool:
        """Whether the model can ever run here (it has timings and fits the usable memory)."""
        timing = self.timings.get(model)
        return timing is not None and timing.memory_gib <= self.vram_gib

    def is_loaded(self, model: str) -> bool:
        """Whether the model is loaded as of the last placement."""
        return model in self._loaded

    def loaded_models(self) -> tuple[str, ...]:
        """Loaded models, least recently used first."""
        return tuple(sorted(self._loaded, key=self._loaded.__getitem__))

    def free_vram_gib(self) -> float:
        """GPU memory not held by loaded models, as of the last placement, GiB."""
        return self.vram_gib - sum(self.timings[m].memory_gib for m in self._loaded)

    def queue_len(self, now: float) -> int:
        """Pods placed here and not finished at ``now`` (running or waiting)."""
        self._prune(now)
        return len(self._pods)

    def running(self, now: float) -> int:
        """Pods running at ``now``."""
        self._prune(now)
        return sum(1 for p in self._pods if p.start_s <= now)

    def requested(self, now: float) -> tuple[float, float]:
        """Sum of (cpu cores, memory GiB) requested by pods unfinished at ``now``."""
        self._prune(now)
        if not self._pods:
            self._req_cpu = self._req_mem = 0.0  # drop accumulated rounding error
        return self._req_cpu, self._req_mem

    def next_change(self, now: float) -> float:
        """The next time after ``now`` at which a pod finishes (``inf`` if none)."""
        self._prune(now)
        return self._finishes[0] if self._finishes else math.inf

    def busy_until(self) -> float:
        """Finish time of the last pod to finish (``-inf`` if none ever placed or all gone)."""
        return self._finishes[-1] if self._finishes else -math.inf

    def has_free_slot(self, now: float) -> bool:
        """Whether fewer than ``concurrency`` pods are unfinished at ``now`` (exclusive mode)."""
        return self.queue_len(now) < self.concurrency

    def earliest_start(self, model: str) -> tuple[float, bool, tuple[str, ...]]:
        """Threshold time from which a new pod of ``model`` could start, ignoring ``now``.

        Returns ``(threshold_s, cold, evicted)``; a pod placed at ``now`` starts at
        ``max(now, threshold_s)``. ``threshold_s`` is ``inf`` if the model can never run.
        """
        if not self.can_run(model):
            return math.inf, True, ()
        cold = model not in self._loaded
        need = self.timings[model].memory_gib
        # Candidate times: the last start, then each finish after it (running set shrinks).
        first = bisect.bisect_right(self._finishes, self._last_start)
        candidates = [(self._last_start, first)]
        candidates += [(self._finishes[i], i + 1) for i in range(first, len(self._pods))]
        for t, idx in candidates:
            running = self._pods[idx:]
            if len(running) >= self.concurrency:
                continue
            if not cold:
                return t, False, ()
            fits, evicted = self._make_room(need, {p.model for p in running})
            if fits:
                return t, True, evicted
        return math.inf, True, ()  # unreachable when can_run: an idle node always fits

    def start_thresholds(self, models: Iterable[str]) -> dict[str, tuple[float, bool]]:
        """:meth:`earliest_start` for several models in one pass: ``{model: (threshold, cold)}``."""
        out: dict[str, tuple[float, bool]] = {}
        todo = []
        for model in models:
            if self.can_run(model):
                todo.append(model)
            else:
                out[model] = (math.inf, True)
        first = bisect.bisect_right(self._finishes, self._last_start)
        times = [self._last_start, *self._finishes[first:]]
        for k, t in enumerate(times):
            idx = first + k  # running at t: pods[idx:]
            if len(self._pods) - idx >= self.concurrency:
                continue
            room = -1.0
            rest = []
            for model in todo:
                if model in self._loaded:
                    out[model] = (t, False)
                    continue
                if room < 0.0:  # free memory once every idle model is evicted
                    busy = {p.model for p in self._pods[idx:]}
                    room = self.vram_gib - sum(
                        self.timings[m].memory_gib for m in self._loaded if m in busy
                    )
                if self.timings[model].memory_gib <= room:
                    out[model] = (t, True)
                else:
                    rest.append(model)
            todo = rest
            if not todo:
                break
        for model in todo:
            out[model] = (math.inf, True)
        return out

    def what_if(self, task: ServiceTask, now: float) -> Placement:
        """Where a pod of ``task`` placed at ``now`` would run, without placing it."""
        threshold, cold, evicted = self.earliest_start(task.model)
        if math.isinf(threshold):
            raise ValueError(f"model {task.model!r} cannot run on this node")
        start = max(now, threshold)
        finish = start + self.service_s(task.model, task.steps, cold)
        return Placement(start_s=start, finish_s=finish, cold=cold, evicted=evicted)

    def service_s(self, model: str, steps: int, cold: bool) -> float:
        """Run time of one pod: load (if cold) + overhead + steps x seconds per step."""
        timing = self.timings[model]
        return (timing.load_s if cold else 0.0) + timing.overhead_s + steps * timing.s_per_step

    # --- mutations -----------------------------------------------------------------------

    def place(self, task: ServiceTask, now: float) -> Placement:
        """Place a pod at ``now``; its start and finish are fixed from here on."""
        placement = self.what_if(task, now)
        self._prune(now)
        pod = _Pod(placement.finish_s, placement.start_s, task.model, task.cpu, task.memory_gib)
        i = bisect.bisect_right(self._finishes, pod.finish_s)
        self._finishes.insert(i, pod.finish_s)
        self._pods.insert(i, pod)
        self._req_cpu += pod.cpu
        self._req_mem += pod.memory_gib
        self._last_start = placement.start_s
        for model in placement.evicted:
            del self._loaded[model]
        self._loaded.pop(task.model, None)
        self._loaded[task.model] = placement.start_s
        self.revision += 1
        return placement

    def restart(self, now: float) -> None:
        """Node (re)start: only the preloaded models are loaded. Requires no unfinished pods."""
        if self.queue_len(now):
            raise RuntimeError("cannot restart a node with unfinished pods")
        self._loaded = {}
        used = 0.0
        for model in self.preload:
            if self.can_run(model) and used + self.timings[model].memory_gib <= self.vram_gib:
                used += self.timings[model].memory_gib
                self._loaded[model] = now
        self._last_start = now
        self.revision += 1

    def loaded_snapshot(self) -> tuple[tuple[str, float], ...]:
        """Loaded models and the start of their last use, in the server's LRU bookkeeping order.

        With :meth:`restore` this lets a process that persisted the snapshot taken after a
        placement (the e2e emulation writes it into the pod's annotations) rebuild the server.
        """
        return tuple(self._loaded.items())

    def restore(
        self,
        *,
        loaded: Iterable[tuple[str, float]],
        last_start: float,
        pods: Iterable[tuple[ServiceTask, float, float]],
    ) -> None:
        """Replace the state with the one right after some placement.

        Args:
            loaded: :meth:`loaded_snapshot` taken right after that placement.
            last_start: Start time of the pod placed then (FIFO: no later pod starts earlier).
            pods: ``(task, start_s, finish_s)`` of the pods still unfinished, any order.
        """
        self._loaded = dict(loaded)
        self._last_start = last_start
        unfinished = sorted(
            (
                _Pod(finish, start, task.model, task.cpu, task.memory_gib)
                for task, start, finish in pods
            ),
            key=lambda p: p.finish_s,
        )
        self._pods = unfinished
        self._finishes = [p.finish_s for p in unfinished]
        self._req_cpu = sum(p.cpu for p in unfinished)
        self._req_mem = sum(p.memory_gib for p in unfinished)

    # --- internals -----------------------------------------------------------------------

    def _prune(self, now: float) -> None:
        """Forget pods finished by ``now`` (they no longer affect any later start)."""
        k = bisect.bisect_right(self._finishes, now)
        if k:
            for pod in self._pods[:k]:
                self._req_cpu -= pod.cpu
                self._req_mem -= pod.memory_gib
            del self._finishes[:k]
            del self._pods[:k]

    def _make_room(self, need: float, busy: set[str]) -> tuple[bool, tuple[str, ...]]:
        """Evict idle loaded models LRU-first until ``need`` GiB are free."""
        free = self.vram_gib - sum(self.timings[m].memory_gib for m in self._loaded)
        evicted: list[str] = []
        if free >= need:
            return True, ()
        for model in sorted(self._loaded, key=self._loaded.__getitem__):
            if model in busy:
                continue
            evicted.append(model)
            free += self.timings[model].memory_gib
            if free >= need:
                return True, tuple(evicted)
        return False, ()
