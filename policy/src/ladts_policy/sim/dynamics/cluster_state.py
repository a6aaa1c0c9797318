"""State of one ``k8s-edge`` environment and the static per-(node, model) tables.

:class:`EnvState` owns the node servers (the truth), the episode's draws, the decision clock
and the caches the simulator reads as ``[N]`` / ``[N, M]`` arrays. Shapes: ``N`` nodes,
``M`` models.

Truth and view are kept apart: the servers run every pod for its *realised* time (profile x
hidden node factor x request noise). What schedulers see is a per-node *projection*
(:func:`ladts_policy.sim.dynamics.node_service.project`) built only from what the operator can
observe: the pods bound to the node in FIFO order, the start of those running, the models the node
reported at its last metrics scrape, and run times estimated as profile x the
:class:`~ladts_policy.service_estimate.ServiceTimeCorrector` factor learned from the
completions seen so far. A projection is rebuilt when the node's observable state changes (a
placement, a start or finish, a scrape) or a running pod outlives its estimate.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from ladts_policy.service_estimate import ServiceTimeCorrector
from ladts_policy.sim.config.cluster_config import ClusterConfig, NodeSpec
from ladts_policy.sim.dynamics.node_service import (
    AnyNodeServer,
    ExclusiveNodeServer,
    ServiceTask,
    make_node_server,
    project,
)
from ladts_policy.sim.dynamics.workload import (
    JOIN,
    LEAVE,
    draw_churn,
    draw_hidden,
    draw_residency,
    draw_workload,
    episode_generators,
)


@dataclass(frozen=True)
class StaticArrays:
    """Scenario constants as arrays (inf / 0 where a model cannot run on a node)."""

    model_names: tuple[str, ...]
    """Model names by index ``m``."""

    can_run_NM: np.ndarray
    """bool [N, M]: the model has timings on the node's GPU and fits its usable memory."""

    s_per_step_NM: np.ndarray
    """float [N, M]: seconds per denoising step."""

    overhead_s_NM: np.ndarray
    """float [N, M]: fixed seconds per request."""

    load_s_NM: np.ndarray
    """float [N, M]: cold-start seconds."""

    speed_NM: np.ndarray
    """float [N, M]: steps per second (0 where the model cannot run)."""

    vram_gib_N: np.ndarray
    """float [N]: usable GPU memory, GiB."""

    concurrency_N: np.ndarray
    """int [N]: pods run at once."""

    cpu_N: np.ndarray
    """float [N]: allocatable CPU cores."""

    memory_gib_N: np.ndarray
    """float [N]: allocatable host memory, GiB."""

    pod_cpu_M: np.ndarray
    """float [M]: CPU request of a pod of each model."""

    pod_memory_gib_M: np.ndarray
    """float [M]: memory request of a pod of each model, GiB."""

    memory_gib_NM: np.ndarray
    """float [N, M]: GPU memory of the loaded model, GiB (0 where it cannot run)."""

    @classmethod
    def build(cls, config: ClusterConfig, nodes: list[NodeSpec]) -> StaticArrays:
        """Tabulate the scenario."""
        names = config.model_names
        shape = (len(nodes), len(names))
        mem = np.zeros(shape)
        can_run, sps, ovh, load = (
            np.zeros(shape, bool),
            np.full(shape, np.inf),
            np.full(shape, np.inf),
            np.full(shape, np.inf),
        )
        for n, node in enumerate(nodes):
            for m, name in enumerate(names):
                if node.profile.can_run(name):
                    timing = node.profile.timings[name]
                    can_run[n, m] = True
                    mem[n, m] = timing.memory_gib
                    sps[n, m], ovh[n, m], load[n, m] = (
                        timing.s_per_step,
                        timing.overhead_s,
                        timing.load_s,
                    )
        return cls(
            model_names=names,
            can_run_NM=can_run,
            s_per_step_NM=sps,
            overhead_s_NM=ovh,
            load_s_NM=load,
            speed_NM=np.where(can_run, 1.0 / sps, 0.0),
            vram_gib_N=np.array([node.profile.vram_gib for node in nodes]),
            concurrency_N=np.array([node.concurrency for node in nodes]),
            cpu_N=np.array([node.cpu for node in nodes]),
            memory_gib_N=np.array([node.memory_gib for node in nodes]),
            pod_cpu_M=np.array([m.cpu for m in config.models]),
            pod_memory_gib_M=np.array([m.memory_gib for m in config.models]),
            memory_gib_NM=mem,
        )


class EnvState:
    """One environment: node servers, draws, clock, current task and cached node arrays."""

    def __init__(
        self, config: ClusterConfig, nodes: list[NodeSpec], static: StaticArrays, seed: int
    ) -> None:
        self.config, self.static = config, static
        unc = config.uncertainty
        self.node_names = [node.name for node in nodes]
        self.servers: list[AnyNodeServer] = [
            make_node_server(node, exclusive=config.exclusive, history_s=unc.scrape_interval_s)
            for node in draw_residency(config, nodes, seed)
        ]
        arrivals_rng, churn_rng = episode_generators(seed)
        self.work = draw_workload(config, arrivals_rng)
        self.churn = draw_churn(config.churn, len(nodes), config.horizon_s, churn_rng)
        self.hidden = draw_hidden(unc, len(nodes), len(self.work), seed)
        self.corrector = ServiceTimeCorrector()
        n, m = static.can_run_NM.shape
        self.cordoned_N = np.zeros(n, dtype=bool)
        # the scheduler's estimates (from projections), never the truth
        self.threshold_NM = np.full((n, m), np.inf)
        self.cold_NM = np.ones((n, m), dtype=bool)
        self.factor_NM = np.ones((n, m))
        self.evicts_NMK = np.zeros((n, m, m), dtype=bool)  # placing m on n evicts model k
        self.projections: list[AnyNodeServer] = list(self.servers)
        self.observed_loaded: list[dict[str, tuple[float, int]]] = [{} for _ in range(n)]
        self.stale_at_N = np.full(n, np.inf)
        self.queue_len_N = np.zeros(n, dtype=np.int64)
        self.req_cpu_N = np.zeros(n)
        self.req_mem_N = np.zeros(n)
        self.next_change_N = np.full(n, np.inf)
        self.busy_until_N = np.zeros(n)
        self.now = 0.0
        self.task = -1  # index of the request being decided; -1 when the episode has ended
        self._next_arrival = 0  # first request not yet arrived
        self._next_churn = 0
        # arrived, unscheduled requests (no node passes the filters yet), one FIFO per model
        self.pending_M: list[deque[int]] = [deque() for _ in range(m)]
        self.placed, self.cold_starts, self.busy_s = 0, 0, 0.0
        for node in range(n):
            self._refresh_node(node)

    # --- current task ------------------------------------------------------------------

    @property
    def model(self) -> int:
        """Model index of the current task."""
        return int(self.work.model_T[self.task])

    @property
    def steps(self) -> int:
        """Denoising steps of the current task."""
        return int(self.work.steps_T[self.task])

    @property
    def arrival(self) -> float:
        """Arrival time of the current task (``now`` if none)."""
        return float(self.work.arrival_s_T[self.task]) if self.task >= 0 else self.now

    @property
    def input_mbit(self) -> float:
        """Payload of the current task, megabits."""
        return float(self.work.input_mbit_T[self.task])

    @property
    def num_pending(self) -> int:
        """Requests waiting unscheduled, the current one excluded."""
        return sum(len(q) for q in self.pending_M)

    def popularity_M(self, window_s: float) -> np.ndarray:
        """Return float [M]: each model's share of the requests of the last ``window_s`` s.

        What the operator counts from pod creations; uniform before any request.
        """
        counts_M = self.recent_counts_M(window_s)
        total = counts_M.sum()
        return counts_M / total if total > 0 else np.full(counts_M.size, 1.0 / counts_M.size)

    def recent_counts_M(self, window_s: float) -> np.ndarray:
        """Return float [M]: requests of each model arrived in the last ``window_s`` s."""
        arrivals = self.work.arrival_s_T
        hi = self._next_arrival
        lo = int(np.searchsorted(arrivals[:hi], self.now - window_s, side="right"))
        m = self.static.can_run_NM.shape[1]
        return np.bincount(self.work.model_T[lo:hi], minlength=m).astype(float)

    def requested_fraction_N(self) -> np.ndarray:
        """Return float [N]: mean requested share of allocatable cpu and memory, at most 1."""
        s = self.static
        share = 0.5 * (self.req_cpu_N / s.cpu_N + self.req_mem_N / s.memory_gib_N)
        return np.asarray(np.minimum(share, 1.0))

    # --- transitions ---------------------------------------------------------------------

    def place(self, node: int) -> float:
        """Place the current task on ``node``; return its service delay in seconds."""
        m = self.model
        task = ServiceTask(
            self.static.model_names[m],
            self.steps,
            cpu=float(self.static.pod_cpu_M[m]),
            memory_gib=float(self.static.pod_memory_gib_M[m]),
        )
        task = ServiceTask(task.model, task.steps, cpu=task.cpu, memory_gib=task.memory_gib,
                           time_factor=float(self.hidden.node_factor_N[node]
                                             * self.hidden.noise_T[self.task]))
        placement = self.servers[node].place(task, self.now)
        self.placed += 1
        self.cold_starts += int(placement.cold)
        self.busy_s += placement.finish_s - placement.start_s
        self._refresh_node(node)
        return placement.finish_s - self.arrival

    def schedulable_NM(self) -> np.ndarray:
        """Return bool [N, M]: the nodes kube-scheduler's filters pass for a pod of each model.

        Ready (not cordoned), the model can run there, the pod's cpu and memory requests fit
        the node's allocatable next to the pods bound to it (NodeResourcesFit), and in
        ``exclusive`` mode a GPU is free.
        """
        s = self.static
        tol = 1e-9  # requests are sums of floats
        cpu_NM = self.req_cpu_N[:, None] + s.pod_cpu_M[None, :] <= s.cpu_N[:, None] + tol
        mem_NM = (self.req_mem_N[:, None] + s.pod_memory_gib_M[None, :]
                  <= s.memory_gib_N[:, None] + tol)
        ok_NM: np.ndarray = s.can_run_NM & cpu_NM & mem_NM & ~self.cordoned_N[:, None]
        if self.config.exclusive:
            ok_NM &= (self.queue_len_N < s.concurrency_N)[:, None]
        return ok_NM

    def advance(self) -> None:
        """Move to the next decision (or end the episode: ``task = -1``).

        The next decision is the earliest-arrived waiting pod that some node's filters pass
        (kube-scheduler retries unschedulable pods on cluster events); pods wait unscheduled
        while none does.
        """
        arrivals = self.work.arrival_s_T
        t = self.now
        while True:
            while self._next_arrival < len(self.work) and arrivals[self._next_arrival] <= t:
                self.pending_M[int(self.work.model_T[self._next_arrival])].append(
                    self._next_arrival
                )
                self._next_arrival += 1
            self._set_clock(t)
            servable_M: np.ndarray = np.any(self.schedulable_NM(), axis=0)
            heads = [q[0] for m, q in enumerate(self.pending_M) if q and servable_M[m]]
            if heads:  # the earliest-arrived request that some free node can serve
                self.task = min(heads)
                self.pending_M[self.model].popleft()
                return
            waiting = self.num_pending
            upcoming = [math.inf]
            if self._next_arrival < len(self.work):
                upcoming.append(float(arrivals[self._next_arrival]))
            if self._next_churn < len(self.churn.time_s_K):
                upcoming.append(float(self.churn.time_s_K[self._next_churn]))
            if waiting:
                upcoming.append(float(self.next_change_N.min()))
            t_next = min(upcoming)
            if math.isinf(t_next):
                if waiting:
                    raise RuntimeError("pods wait forever: no node can ever serve them")
                self.task = -1
                return
            t = max(t, t_next)

    def _set_clock(self, now: float) -> None:
        """Advance the clock: apply churn, learn from completions, refresh changed nodes."""
        self.now = now
        self._apply_churn(now)
        for node in np.flatnonzero((self.next_change_N <= now) | (self.stale_at_N <= now)):
            self._refresh_node(int(node))

    def estimated_finish(self, node: int) -> float:
        """When the scheduler expects the current task to finish on ``node`` (its projection)."""
        m = self.model
        task = ServiceTask(self.static.model_names[m], self.steps,
                           time_factor=float(self.factor_NM[node, m]))
        return self.projections[node].what_if(task, self.now).finish_s

    def metrics_age_s(self, node: int) -> float:
        """Age of the node's last metrics scrape at ``now``, s (0 when always fresh)."""
        interval = self.config.uncertainty.scrape_interval_s
        if interval <= 0.0:
            return 0.0
        return (self.now - float(self.hidden.scrape_phase_s_N[node])) % interval

    def _observe_completions(self, node: int) -> None:
        server = self.servers[node]
        name = self.node_names[node]
        done = server.drain_finished(self.now)
        for pod in done:
            predicted = pod.slowdown * server.service_s(pod.model, pod.steps, pod.cold)
            self.corrector.observe(name, pod.model, observed_s=pod.finish_s - pod.start_s,
                                   predicted_s=predicted)
        if done:
            for m, model in enumerate(self.static.model_names):
                self.factor_NM[node, m] = self.corrector.factor(name, model)

    def _apply_churn(self, now: float) -> None:
        times, nodes, kinds = self.churn.time_s_K, self.churn.node_K, self.churn.kind_K
        while self._next_churn < len(times) and times[self._next_churn] <= now:
            node, kind = int(nodes[self._next_churn]), int(kinds[self._next_churn])
            self._next_churn += 1
            if kind == LEAVE and self._may_leave(node):
                self.cordoned_N[node] = True
            elif kind == JOIN and self.cordoned_N[node]:
                self.cordoned_N[node] = False
                server = self.servers[node]
                t_join = float(times[self._next_churn - 1])
                if server.queue_len(t_join) == 0:
                    # drained while away: back with preloaded models only (judged at the
                    # join itself, not at the next decision, when it may have drained since)
                    server.restart(t_join)
                    self._refresh_node(node)

    def _may_leave(self, node: int) -> bool:
        if self.cordoned_N[node]:
            return False
        down = int(self.cordoned_N.sum()) + 1
        if down > self.config.churn.max_down_fraction * len(self.servers):
            return False
        ready_N = ~self.cordoned_N
        ready_N[node] = False
        return bool((self.static.can_run_NM & ready_N[:, None]).any(axis=0).all())

    def _refresh_node(self, node: int) -> None:
        """Learn from completions, then rebuild the node's projection and its thresholds."""
        self._refresh_counts(node)
        self._observe_completions(node)
        server = self.servers[node]
        name = self.node_names[node]
        seen_at = self.now - self.metrics_age_s(node)

        def factor(model: str) -> float:
            return self.corrector.factor(name, model)

        proj: AnyNodeServer
        if isinstance(server, ExclusiveNodeServer):
            proj = ExclusiveNodeServer([
                project(gpu, self.now, loaded=gpu.loaded_at(seen_at), factor=factor)
                for gpu in server.gpus
            ])
            gpus = proj.gpus
        else:
            proj = project(server, self.now, loaded=server.loaded_at(seen_at), factor=factor)
            gpus = [proj]
        self.projections[node] = proj
        self.observed_loaded[node] = server.loaded_at(seen_at)
        names = self.static.model_names
        index = {model: k for k, model in enumerate(names)}
        self.evicts_NMK[node] = False
        for m, model in enumerate(names):
            threshold, cold, evicted = proj.earliest_start(model)
            self.threshold_NM[node, m], self.cold_NM[node, m] = threshold, cold
            for k in evicted:
                self.evicts_NMK[node, m, index[k]] = True
        self.busy_until_N[node] = max(proj.busy_until(), 0.0)
        # rebuild when a running pod outlives its estimate or the next scrape lands
        stale = [p.finish_s for g in gpus for p in g.unfinished(self.now)
                 if p.start_s <= self.now and p.finish_s > self.now]
        interval = self.config.uncertainty.scrape_interval_s
        if interval > 0.0:
            stale.append(self.now + interval - self.metrics_age_s(node))
        self.stale_at_N[node] = min(stale, default=np.inf)

    def attach(self, blocks: dict[str, np.ndarray], env: int) -> None:
        """Move the cached arrays into row ``env`` of simulator-wide ``[E, ...]`` blocks.

        The simulator then reads all environments at once without stacking; this state keeps
        writing through the views.
        """
        for name, block in blocks.items():
            block[env] = getattr(self, name)
            setattr(self, name, block[env])

    def _refresh_counts(self, node: int) -> None:
        server = self.servers[node]
        self.queue_len_N[node] = server.queue_len(self.now)
        self.req_cpu_N[node], self.req_mem_N[node] = server.requested(self.now)
        self.next_change_N[node] = server.next_event(self.now)
