"""The service discipline of one GPU node, shared by the simulator and the e2e emulation.

Discipline (docs/design.md, "Service discipline in k8s-edge"; docs/scenarios.md):

- A pod is placed when it is bound and queues at its node. The node runs at most
  ``concurrency`` pods at a time and starts them in placement (FIFO) order: a pod never
  starts before the pod placed ahead of it.
- A pod starts only when its model is loaded or fits in free GPU memory. Memory is counted
  per *model* (one model server per node, the GPU time-sliced): a loaded model occupies its
  ``memory_gib`` whether it is serving one pod, several, or none. Loaded models that no
  running pod uses are evicted least-recently-used first to make room.
- A pod whose model is not loaded pays ``load_s`` at its start (cold start); the model is
  *ready* only when that load ends, and stays loaded. A pod of a loaded model that is still
  loading starts when the load ends (its model server cannot serve it earlier).
- Run time = ``slowdown x time_factor x (load_s if cold + overhead_s + steps * s_per_step)``:
  ``time_factor`` is the realised / profile ratio of this run (the node's hidden speed and
  per-request noise, 1 for the profile itself); ``slowdown = 1 + share_slowdown x (k - 1)``
  where ``k`` pods (this one included) run on the GPU when it starts. ``share_slowdown = 1``
  is pure time slicing (k pods each get 1/k of the GPU), 0 no interference. The slowdown is
  fixed at the pod's start and later starts do not stretch it: that keeps every pod's finish
  known when it is placed (the reward of a placement), at the cost of under-counting the
  interference a pod suffers from pods that start after it.

Because starts are FIFO and every earlier pod's start and finish are known, a pod's start
and finish are fixed when it is placed. After the last start the set of running pods only
shrinks, so "can a pod of model *m* start at time *t*" is monotone in *t*: each model has a
threshold :meth:`NodeServer.earliest_start`, and a pod placed at ``now`` starts at
``max(now, threshold)``. A pod is running at ``t`` when ``start <= t < finish``.

:class:`ExclusiveNodeServer` is the ``exclusive`` mode: one single-slot server per GPU, each
with its own memory and model cache.

Pure Python (no numpy), so the e2e emulation controller can use it as is.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ladts_policy.sim.config.cluster_config import ModelTiming, NodeSpec


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

    time_factor: float = 1.0
    """Realised run time over the profile's (hidden node speed x request noise); an
    estimate when the server is a scheduler's projection."""


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

    slowdown: float = 1.0
    """GPU-sharing multiplier applied to this run (1 when it ran alone)."""


@dataclass(frozen=True)
class RunningPod:
    """An unfinished pod as a scheduler can know it (for projections and observations)."""

    model: str
    """Model name."""

    steps: int
    """Denoising steps."""

    start_s: float
    """Start time, seconds (in the future for a pod still queued)."""

    finish_s: float
    """Finish time, seconds (true; hidden from schedulers until it happens)."""

    cold: bool
    """Whether the pod loads its model."""

    slowdown: float
    """GPU-sharing multiplier of its run."""


@dataclass(frozen=True)
class _Pod:
    finish_s: float
    start_s: float
    model: str
    steps: int
    cold: bool
    slowdown: float
    cpu: float
    memory_gib: float


Stamp = tuple[float, int]
"""LRU stamp of a loaded model: (time of its last use, sequence number of that use), so
models used at the same time (preloaded ones) are ordered by use, whatever dict order."""


@dataclass(frozen=True)
class _StartEvent:
    """What a start changed in the model cache (to reconstruct the cache at earlier times)."""

    start_s: float
    model: str
    prev_stamp: Stamp | None  # LRU stamp of ``model`` before this start (None: not loaded)
    prev_ready: float | None
    evicted: tuple[tuple[str, Stamp, float], ...]  # (model, stamp, ready) unloaded here


class NodeServer:
    """FIFO, memory-aware service of pods on one node (see the module docstring)."""

    def __init__(
        self,
        *,
        concurrency: int,
        vram_gib: float,
        timings: Mapping[str, ModelTiming],
        resident: Iterable[str] = (),
        share_slowdown: float = 1.0,
        history_s: float = 0.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if share_slowdown < 0.0:
            raise ValueError(f"share_slowdown must be >= 0, got {share_slowdown}")
        self.concurrency = concurrency
        self.vram_gib = vram_gib
        self.timings = dict(timings)
        self.preload = tuple(resident)
        self.share_slowdown = share_slowdown
        self.history_s = history_s  # how far back loaded_at() must reach
        self._pods: list[_Pod] = []  # unfinished pods, sorted by finish time
        self._finishes: list[float] = []  # parallel to _pods, for bisect
        self._last_start = -math.inf
        self._req_cpu = 0.0  # sums over _pods, kept incrementally
        self._req_mem = 0.0
        self._loaded: dict[str, Stamp] = {}  # model -> last use (LRU order)
        self.revision = 0  # bumped by every placement and restart (lets callers cache)
        self._seq = 0
        self._ready: dict[str, float] = {}  # model -> time its load ends
        self._events: list[_StartEvent] = []  # starts after now - history_s, in start order
        self._restarted_s = 0.0
        self._done: list[_Pod] = []  # finished pods not yet handed to drain_finished()
        self.restart(0.0)

    @classmethod
    def from_spec(cls, spec: NodeSpec, *, history_s: float = 0.0) -> NodeServer:
        """Build the server of one expanded node of a cluster scenario (time-sliced GPU)."""
        return cls(
            concurrency=spec.concurrency,
            vram_gib=spec.profile.vram_gib,
            timings=spec.profile.timings,
            resident=spec.resident,
            share_slowdown=spec.profile.share_slowdown,
            history_s=history_s,
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
        """Loaded models as of the last placement, least recently used first."""
        return tuple(sorted(self._loaded, key=self._loaded.__getitem__))

    def loaded_at(self, t: float) -> dict[str, Stamp]:
        """Loaded models at time ``t`` (``{model: LRU stamp}``), what the model server reports.

        ``t`` may lie in the past as far as ``history_s`` before the latest pruning time;
        pods that start after ``t`` have not loaded or evicted anything yet.
        """
        if t < self._restarted_s:
            t = self._restarted_s
        loaded = dict(self._loaded)
        for ev in reversed(self._events):
            if ev.start_s <= t:
                break
            if ev.prev_stamp is None:
                loaded.pop(ev.model, None)
            else:
                loaded[ev.model] = ev.prev_stamp
            for model, stamp, _ in ev.evicted:
                loaded[model] = stamp
        return loaded

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

    def unfinished(self, now: float) -> list[RunningPod]:
        """Pods unfinished at ``now`` in start (FIFO) order."""
        self._prune(now)
        pods = sorted(self._pods, key=lambda p: p.start_s)
        return [RunningPod(p.model, p.steps, p.start_s, p.finish_s, p.cold, p.slowdown)
                for p in pods]

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

    def next_event(self, now: float) -> float:
        """The next time after ``now`` at which a pod starts or finishes (``inf`` if none)."""
        self._prune(now)
        starts = [p.start_s for p in self._pods if p.start_s > now]
        return min([*starts, self._finishes[0]]) if self._finishes else math.inf

    def busy_until(self) -> float:
        """Finish time of the last pod to finish (``-inf`` if none ever placed or all gone)."""
        return self._finishes[-1] if self._finishes else -math.inf

    def has_free_slot(self, now: float) -> bool:
        """Whether fewer than ``concurrency`` pods are unfinished at ``now`` (exclusive mode)."""
        return self.queue_len(now) < self.concurrency

    def drain_finished(self, now: float) -> list[RunningPod]:
        """Pods finished by ``now`` not returned before (to learn from completions)."""
        self._prune(now)
        done = [RunningPod(p.model, p.steps, p.start_s, p.finish_s, p.cold, p.slowdown)
                for p in self._done]
        self._done = []
        return done

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
        for t in [self._last_start, *self._finishes[first:]]:
            idx = bisect.bisect_right(self._finishes, t)  # running at t: pods[idx:]
            if len(self._pods) - idx >= self.concurrency:
                continue
            if not cold:
                return max(t, self._ready.get(model, -math.inf)), False, ()
            fits, evicted = self._make_room(need, {p.model for p in self._pods[idx:]})
            if fits:
                return t, True, evicted
        return math.inf, True, ()  # unreachable when can_run: an idle node always fits

    def start_thresholds(self, models: Iterable[str]) -> dict[str, tuple[float, bool]]:
        """:meth:`earliest_start` for several models: ``{model: (threshold, cold)}``."""
        out: dict[str, tuple[float, bool]] = {}
        for model in models:
            threshold, cold, _ = self.earliest_start(model)
            out[model] = (threshold, cold)
        return out

    def slowdown_at(self, start_s: float) -> float:
        """GPU-sharing multiplier of a pod that would start at ``start_s``."""
        if self.concurrency == 1:
            return 1.0  # a pod starts only when the single slot is free
        others = len(self._pods) - bisect.bisect_right(self._finishes, start_s)
        return 1.0 + self.share_slowdown * others

    def what_if(self, task: ServiceTask, now: float) -> Placement:
        """Where a pod of ``task`` placed at ``now`` would run, without placing it."""
        threshold, cold, evicted = self.earliest_start(task.model)
        if math.isinf(threshold):
            raise ValueError(f"model {task.model!r} cannot run on this node")
        start = max(now, threshold)
        if cold and start > threshold:
            # evict what is idle at the actual start (LRU order may differ from the threshold's)
            idx = bisect.bisect_right(self._finishes, start)
            _, evicted = self._make_room(self.timings[task.model].memory_gib,
                                         {p.model for p in self._pods[idx:]})
        slowdown = self.slowdown_at(start)
        run = slowdown * task.time_factor * self.service_s(task.model, task.steps, cold)
        return Placement(start_s=start, finish_s=start + run, cold=cold, evicted=evicted,
                         slowdown=slowdown)

    def service_s(self, model: str, steps: int, cold: bool) -> float:
        """Profile run time of one pod: load (if cold) + overhead + steps x seconds per step."""
        return self.timings[model].run_s(steps, cold)

    def clone(self) -> NodeServer:
        """An independent copy (for planners that try placements on a copy)."""
        twin = object.__new__(NodeServer)
        twin.__dict__.update(self.__dict__)
        twin.timings = self.timings  # read-only, shared
        twin._pods, twin._finishes = list(self._pods), list(self._finishes)
        twin._loaded, twin._ready = dict(self._loaded), dict(self._ready)
        twin._events, twin._done = list(self._events), []
        return twin

    # --- mutations -----------------------------------------------------------------------

    def place(self, task: ServiceTask, now: float) -> Placement:
        """Place a pod at ``now``; its start and finish are fixed from here on."""
        placement = self.what_if(task, now)
        self._prune(now)
        self._insert(_Pod(placement.finish_s, placement.start_s, task.model, task.steps,
                          placement.cold, placement.slowdown, task.cpu, task.memory_gib))
        start = placement.start_s
        self._last_start = start
        evicted = tuple((m, self._loaded[m], self._ready.get(m, -math.inf))
                        for m in placement.evicted)
        self._events.append(_StartEvent(start, task.model, self._loaded.get(task.model),
                                        self._ready.get(task.model), evicted))
        for model in placement.evicted:
            del self._loaded[model]
            self._ready.pop(model, None)
        self._loaded.pop(task.model, None)
        self._loaded[task.model] = self._stamp(start)
        if placement.cold:
            load = self.timings[task.model].load_s
            self._ready[task.model] = start + placement.slowdown * task.time_factor * load
        self.revision += 1
        return placement

    def pin_running(self, pod: RunningPod, finish_s: float, ready_s: float | None) -> None:
        """Add a pod already running (for a scheduler's projection of a node's queue).

        The pod keeps its known ``start_s``; ``finish_s`` is the projection's estimate.
        ``ready_s`` is when the model it loads is expected ready (None when it ran warm).
        """
        self._insert(_Pod(finish_s, pod.start_s, pod.model, pod.steps, pod.cold, pod.slowdown,
                          0.0, 0.0))
        self._last_start = max(self._last_start, pod.start_s)
        if pod.model not in self._loaded:
            self._loaded[pod.model] = self._stamp(pod.start_s)
        if ready_s is not None:
            self._ready[pod.model] = ready_s

    def set_loaded(self, loaded: Mapping[str, Stamp], now: float) -> None:
        """Replace the model cache (a projection starting from what the node reports)."""
        self._loaded = dict(sorted(loaded.items(), key=lambda kv: kv[1]))
        self._seq = max([self._seq, *(stamp[1] + 1 for stamp in loaded.values())])
        self._ready = {}
        self._events = []
        self._restarted_s = now
        self._last_start = max(self._last_start, now)

    def restart(self, now: float) -> None:
        """Node (re)start: only the preloaded models are loaded. Requires no unfinished pods."""
        if self.queue_len(now):
            raise RuntimeError("cannot restart a node with unfinished pods")
        self._loaded = {}
        self._ready = {}
        self._events = []
        used = 0.0
        for model in self.preload:
            if self.can_run(model) and used + self.timings[model].memory_gib <= self.vram_gib:
                used += self.timings[model].memory_gib
                self._loaded[model] = self._stamp(now)
        self._last_start = now
        self._restarted_s = now
        self.revision += 1

    def loaded_snapshot(self) -> tuple[tuple[str, Stamp], ...]:
        """Loaded models and their LRU stamps, in the server's LRU bookkeeping order.

        With :meth:`restore` this lets a process that persisted the snapshot taken after a
        placement (the e2e emulation writes it into the pod's annotations) rebuild the server.
        """
        return tuple(self._loaded.items())

    def ready_snapshot(self) -> tuple[tuple[str, float], ...]:
        """When each model's last load ends (``{model: ready_s}`` as pairs), for :meth:`restore`.

        A warm pod of a model still loading starts only when the load ends, so a rebuilt
        server needs these times as well as the LRU stamps.
        """
        return tuple(self._ready.items())

    def restore(
        self,
        *,
        loaded: Iterable[tuple[str, Stamp]],
        last_start: float,
        pods: Iterable[tuple[ServiceTask, float, float, bool]],
        ready: Mapping[str, float] | None = None,
    ) -> None:
        """Replace the state with the one right after some placement.

        Args:
            loaded: :meth:`loaded_snapshot` taken right after that placement.
            last_start: Start time of the pod placed then (FIFO: no later pod starts earlier).
            pods: ``(task, start_s, finish_s, cold)`` of the pods still unfinished, any order.
            ready: Per model, when its load ends (models still loading at that placement).
        """
        self._loaded = {m: (float(t), int(q)) for m, (t, q) in loaded}
        # the placement's own stamp is the newest one: the next stamp follows it, as it would
        # have on the server that took the snapshot
        self._seq = max([self._seq, *(q for _, q in self._loaded.values())])
        self._ready = dict(ready or {})
        self._last_start = last_start
        self._pods, self._finishes = [], []
        self._req_cpu = self._req_mem = 0.0
        for task, start, finish, cold in pods:
            self._insert(_Pod(finish, start, task.model, task.steps, cold, 1.0, task.cpu,
                              task.memory_gib))
        self.revision += 1

    # --- internals -----------------------------------------------------------------------

    def _stamp(self, t: float) -> Stamp:
        self._seq += 1
        return (t, self._seq)

    def _insert(self, pod: _Pod) -> None:
        i = bisect.bisect_right(self._finishes, pod.finish_s)
        self._finishes.insert(i, pod.finish_s)
        self._pods.insert(i, pod)
        self._req_cpu += pod.cpu
        self._req_mem += pod.memory_gib

    def _prune(self, now: float) -> None:
        """Forget pods finished by ``now`` (they no longer affect any later start)."""
        k = bisect.bisect_right(self._finishes, now)
        if k:
            for pod in self._pods[:k]:
                self._req_cpu -= pod.cpu
                self._req_mem -= pod.memory_gib
            self._done.extend(self._pods[:k])
            del self._finishes[:k]
            del self._pods[:k]
        # loaded_at(t) undoes the starts after t; t never goes back further than history_s
        horizon = now - self.history_s
        j = 0
        while j < len(self._events) and self._events[j].start_s <= horizon:
            j += 1
        if j:
            del self._events[:j]

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


class ExclusiveNodeServer:
    """``exclusive`` mode: pods take a whole GPU; each GPU has its own memory and model cache.

    A node with ``concurrency`` GPUs is that many single-slot :class:`NodeServer` s. A pod
    goes to the GPU where it would start first, warm before cold, lowest index on ties.
    Every GPU starts with the node's resident models. Same query interface as
    :class:`NodeServer`; per-node counts sum over GPUs.
    """

    def __init__(self, gpus: list[NodeServer]) -> None:
        if not gpus or any(g.concurrency != 1 for g in gpus):
            raise ValueError("an exclusive node needs >= 1 single-slot GPU servers")
        self.gpus = gpus
        self.concurrency = len(gpus)
        self.vram_gib = gpus[0].vram_gib
        self.timings = gpus[0].timings
        self.preload = gpus[0].preload

    @classmethod
    def from_spec(cls, spec: NodeSpec, *, history_s: float = 0.0) -> ExclusiveNodeServer:
        """One single-slot server per GPU (``spec.concurrency`` GPUs)."""
        return cls([
            NodeServer(concurrency=1, vram_gib=spec.profile.vram_gib,
                       timings=spec.profile.timings, resident=spec.resident,
                       history_s=history_s)
            for _ in range(spec.concurrency)
        ])

    def _pick(self, model: str) -> int:
        keys = []
        for i, gpu in enumerate(self.gpus):
            t, cold, _ = gpu.earliest_start(model)
            keys.append((t, cold, i))
        return min(keys)[2]

    def can_run(self, model: str) -> bool:
        """Whether the model can ever run on one GPU of the node."""
        return self.gpus[0].can_run(model)

    def is_loaded(self, model: str) -> bool:
        """Whether some GPU holds the model (as of the last placement)."""
        return any(g.is_loaded(model) for g in self.gpus)

    def loaded_models(self) -> tuple[str, ...]:
        """Models loaded on any GPU."""
        return tuple(dict.fromkeys(m for g in self.gpus for m in g.loaded_models()))

    def loaded_at(self, t: float) -> dict[str, Stamp]:
        """Models loaded on any GPU at ``t`` (latest LRU stamp over GPUs)."""
        out: dict[str, Stamp] = {}
        for g in self.gpus:
            for m, stamp in g.loaded_at(t).items():
                out[m] = max(stamp, out.get(m, (-math.inf, 0)))
        return out

    def free_vram_gib(self) -> float:
        """The most free memory on one GPU (what the next pod can use), GiB."""
        return max(g.free_vram_gib() for g in self.gpus)

    def queue_len(self, now: float) -> int:
        """Unfinished pods over all GPUs."""
        return sum(g.queue_len(now) for g in self.gpus)

    def running(self, now: float) -> int:
        """Running pods over all GPUs."""
        return sum(g.running(now) for g in self.gpus)

    def unfinished(self, now: float) -> list[RunningPod]:
        """Unfinished pods over all GPUs, by start."""
        return sorted((p for g in self.gpus for p in g.unfinished(now)), key=lambda p: p.start_s)

    def requested(self, now: float) -> tuple[float, float]:
        """Requested (cpu, memory) over all GPUs' pods."""
        cpu = mem = 0.0
        for g in self.gpus:
            c, m = g.requested(now)
            cpu, mem = cpu + c, mem + m
        return cpu, mem

    def next_change(self, now: float) -> float:
        """Next finish on any GPU."""
        return min(g.next_change(now) for g in self.gpus)

    def next_event(self, now: float) -> float:
        """Next start or finish on any GPU."""
        return min(g.next_event(now) for g in self.gpus)

    def busy_until(self) -> float:
        """Last finish over all GPUs."""
        return max(g.busy_until() for g in self.gpus)

    def has_free_slot(self, now: float) -> bool:
        """Whether some GPU is idle at ``now``."""
        return any(g.has_free_slot(now) for g in self.gpus)

    def drain_finished(self, now: float) -> list[RunningPod]:
        """Finished pods of every GPU."""
        return [p for g in self.gpus for p in g.drain_finished(now)]

    def earliest_start(self, model: str) -> tuple[float, bool, tuple[str, ...]]:
        """The threshold on the GPU a new pod would take."""
        return self.gpus[self._pick(model)].earliest_start(model)

    def start_thresholds(self, models: Iterable[str]) -> dict[str, tuple[float, bool]]:
        """:meth:`earliest_start` for several models."""
        out = {}
        for model in models:
            t, cold, _ = self.earliest_start(model)
            out[model] = (t, cold)
        return out

    def what_if(self, task: ServiceTask, now: float) -> Placement:
        """Where a pod would run (on the GPU it would take)."""
        return self.gpus[self._pick(task.model)].what_if(task, now)

    def service_s(self, model: str, steps: int, cold: bool) -> float:
        """Profile run time of one pod."""
        return self.gpus[0].service_s(model, steps, cold)

    def clone(self) -> ExclusiveNodeServer:
        """An independent copy."""
        return ExclusiveNodeServer([g.clone() for g in self.gpus])

    def place(self, task: ServiceTask, now: float) -> Placement:
        """Place a pod on the GPU where it starts first."""
        return self.gpus[self._pick(task.model)].place(task, now)

    def restart(self, now: float) -> None:
        """Restart every GPU (requires no unfinished pods)."""
        if self.queue_len(now):
            raise RuntimeError("cannot restart a node with unfinished pods")
        for g in self.gpus:
            g.restart(now)


AnyNodeServer = NodeServer | ExclusiveNodeServer
"""Either service model; both offer the same queries and mutations."""


def make_node_server(spec: NodeSpec, *, exclusive: bool, history_s: float = 0.0) -> AnyNodeServer:
    """The node's server: time-sliced (:class:`NodeServer`) or one per GPU (exclusive)."""
    if exclusive:
        return ExclusiveNodeServer.from_spec(spec, history_s=history_s)
    return NodeServer.from_spec(spec, history_s=history_s)


def project(
    server: NodeServer,
    now: float,
    *,
    loaded: Mapping[str, Stamp],
    factor: Callable[[str], float],
) -> NodeServer:
    """A scheduler's projection of one time-sliced node's queue from what it can observe.

    The projection knows the unfinished pods in FIFO order, the start of those running, the
    models the node reports loaded (``loaded``), and estimates every run time as profile x
    ``factor(model)`` (observed / predicted, learned from completions). It never reads the
    true finish times. A running pod overdue by the estimate is expected to finish at ``now``.
    """
    proj = NodeServer(concurrency=server.concurrency, vram_gib=server.vram_gib,
                      timings=server.timings, resident=(),
                      share_slowdown=server.share_slowdown)
    proj.set_loaded(loaded, now)
    queued: list[RunningPod] = []
    for pod in server.unfinished(now):
        if pod.start_s > now:
            queued.append(pod)
            continue
        f = factor(pod.model)
        run = pod.slowdown * f * server.service_s(pod.model, pod.steps, pod.cold)
        ready = None
        if pod.cold:
            ready = pod.start_s + pod.slowdown * f * server.timings[pod.model].load_s
        proj.pin_running(pod, max(pod.start_s + run, now), ready)
    for pod in queued:
        proj.place(ServiceTask(pod.model, pod.steps, time_factor=factor(pod.model)), now)
    return proj
