"""The ``k8s-edge`` simulator: heterogeneous GPU nodes serving diffusion pods, in lockstep.

Each environment replays its own episode (requests and churn drawn from its seed, see
:mod:`ladts_policy.sim.dynamics.workload`) through one
:class:`~ladts_policy.sim.dynamics.node_service.NodeServer` per node. One step = one placement
decision per active environment.

- Default (time-sliced) mode: a pod is decided at its arrival and queues at its node; its
  delay (finish - arrival) is fixed at placement.
- ``exclusive`` mode: pods request ``nvidia.com/gpu: 1``. A pod is decided when it can be
  bound: the earliest-arrived waiting pod for which some ready node has a free GPU slot
  (kube-scheduler retries unschedulable pods on cluster events). Only such nodes are in the
  mask; the delay still counts from arrival.
- Churn: a leaving node is cordoned (masked out) and drains: its placed pods still finish at
  their fixed times. A rejoining node is schedulable again; if it had drained, it restarts
  with only its preloaded models. Leaves that would take more than ``max_down_fraction`` of
  the nodes away, or leave a model of the mix with no ready node, are skipped.

Per-(env, node, model) start thresholds are cached (see ``node_service``), so a decision
costs a few numpy operations over ``[E, N]`` plus Python work only on nodes that changed.
"""

from __future__ import annotations

import numpy as np

from ladts_policy.features import ClusterSnapshot, TaskSpec, loaded_multi_hot
from ladts_policy.sim.base import DecisionView
from ladts_policy.sim.config.cluster_config import ClusterConfig, warm_service_s
from ladts_policy.sim.dynamics.cluster_state import EnvState, StaticArrays
from ladts_policy.sim.dynamics.node_service import ServiceTask

_SHARED = ("threshold_NM", "cold_NM", "factor_NM", "evicts_NMK", "queue_len_N", "cordoned_N",
           "req_cpu_N", "req_mem_N")

POPULARITY_WINDOW_S = 600.0
"""Requests of the last this-many seconds define each model's popularity (``DecisionView``)."""
"""Cached per-environment arrays the simulator reads as ``[E, ...]`` blocks."""


class ClusterSimulator:
    """Vectorised simulator of the ``k8s-edge`` scenario (implements ``VecSimulator``)."""

    def __init__(self, config: ClusterConfig, *, num_envs: int) -> None:
        self.config = config
        self.nodes = config.expand_nodes()
        self.static = StaticArrays.build(config, self.nodes)
        self._num_envs = num_envs
        self.envs: list[EnvState] = []
        self._mask_EN = np.zeros((num_envs, len(self.nodes)), dtype=bool)
        self._shared_gpu_nodes = [
            n for n, node in enumerate(self.nodes)
            if not config.exclusive and node.concurrency > 1 and node.profile.share_slowdown > 0
        ]
        self._blocks: dict[str, np.ndarray] = {}

    @property
    def num_envs(self) -> int:
        """Number of environments stepped together."""
        return self._num_envs

    @property
    def num_nodes(self) -> int:
        """Number of node slots (every node of the scenario, present or not)."""
        return len(self.nodes)

    def reset(self, seeds: list[int]) -> DecisionView:
        """Start one episode per seed; return the first view."""
        if len(seeds) != self._num_envs:
            raise ValueError(f"expected {self._num_envs} seeds, got {len(seeds)}")
        self.envs = [EnvState(self.config, self.nodes, self.static, seed) for seed in seeds]
        self._blocks = {
            name: np.stack([getattr(env, name) for env in self.envs]) for name in _SHARED
        }
        for e, env in enumerate(self.envs):
            env.attach(self._blocks, e)
        for env in self.envs:
            env.advance()
        view = self._view()
        if view is None:
            raise RuntimeError("no requests in any episode (horizon or rate too small)")
        return view

    def reset_env(self, env: int, seed: int) -> None:
        """Start a new episode in one environment only (vector envs' autoreset)."""
        state = EnvState(self.config, self.nodes, self.static, seed)
        state.attach(self._blocks, env)
        self.envs[env] = state
        state.advance()

    def current_view(self) -> DecisionView | None:
        """The view of the pending decisions (None when every episode has ended)."""
        return self._view()

    def step(self, actions_E: np.ndarray) -> tuple[np.ndarray, DecisionView | None]:
        """Place every active environment's pending pod on ``actions_E[e]``.

        Raises:
            ValueError: an action names a node outside the last view's mask.
        """
        delay_E = np.full(self._num_envs, np.nan)
        actions_E = np.asarray(actions_E)
        if actions_E.shape != (self._num_envs,):
            raise ValueError(f"expected {self._num_envs} actions, got shape {actions_E.shape}")
        # validate every action before changing any environment
        for e, env in enumerate(self.envs):
            if env.task < 0:
                continue
            node = int(actions_E[e])
            if not (0 <= node < self.num_nodes and self._mask_EN[e, node]):
                name = self.nodes[node].name if 0 <= node < self.num_nodes else str(node)
                raise ValueError(f"env {e}: node {name} is not schedulable for this task")
        for e, env in enumerate(self.envs):
            if env.task < 0:
                continue
            delay_E[e] = env.place(int(actions_E[e]))
            env.advance()
        return delay_E, self._view()

    def _view(self) -> DecisionView | None:
        active_E = np.array([env.task >= 0 for env in self.envs])
        if not active_E.any():
            return None
        s = self.static
        model_E = np.array([env.model if env.task >= 0 else 0 for env in self.envs])
        steps_E = np.array([env.steps if env.task >= 0 else 0 for env in self.envs], dtype=float)
        now_E1 = np.array([env.now for env in self.envs])[:, None]
        arrival_E1 = np.array([env.arrival for env in self.envs])[:, None]
        b, rows = self._blocks, np.arange(self._num_envs)
        threshold_EN = b["threshold_NM"][rows, :, model_E]
        cold_EN = b["cold_NM"][rows, :, model_E]
        service_EN = np.asarray(warm_service_s(s.overhead_s_NM[:, model_E].T,
                                               s.s_per_step_NM[:, model_E].T, steps_E[:, None]))
        service_EN += np.where(cold_EN, s.load_s_NM[:, model_E].T, 0.0)
        service_EN *= b["factor_NM"][rows, :, model_E]
        with np.errstate(invalid="ignore"):
            delay_EN = np.maximum(now_E1, threshold_EN) + service_EN - arrival_E1
        for n in self._shared_gpu_nodes:  # pods beside others on a time-sliced GPU slow down
            for e, env in enumerate(self.envs):
                if env.task >= 0 and s.can_run_NM[n, env.model]:
                    delay_EN[e, n] = env.estimated_finish(n) - env.arrival
        queue_EN = b["queue_len_N"]
        mask_EN = np.zeros((self._num_envs, self.num_nodes), dtype=bool)
        for e, env in enumerate(self.envs):
            if env.task >= 0:
                mask_EN[e] = env.schedulable_NM()[:, env.model]
        self._mask_EN = mask_EN
        # kube-scheduler's LeastAllocated scores the node as it would be *with* this pod, which
        # favours nodes with large allocatable when idle (docs/baseline.md measures the effect).
        cpu_EN = b["req_cpu_N"] + s.pod_cpu_M[model_E][:, None]
        mem_EN = b["req_mem_N"] + s.pod_memory_gib_M[model_E][:, None]
        requested_EN = np.minimum(0.5 * (cpu_EN / s.cpu_N + mem_EN / s.memory_gib_N), 1.0)
        load_EN = s.load_s_NM[:, model_E].T * b["factor_NM"][rows, :, model_E]
        pop_EM = np.stack([env.popularity_M(POPULARITY_WINDOW_S) for env in self.envs])
        est_load_ENM = np.where(s.can_run_NM[None], s.load_s_NM[None], 0.0) * b["factor_NM"]
        evicts_ENM = b["evicts_NMK"][rows, :, model_E].astype(float)
        evict_cost_EN = np.einsum("enk,ek,enk->en", evicts_ENM, pop_EM, est_load_ENM)
        return DecisionView(
            cold_EN=cold_EN.copy(),
            load_s_EN=np.where(s.can_run_NM[:, model_E].T, load_EN, np.inf),
            evict_cost_EN=evict_cost_EN,
            popularity_E=pop_EM[rows, model_E],
            active_E=active_E,
            node_mask_EN=mask_EN,
            capacity_EN=s.speed_NM[:, model_E].T.copy(),
            queue_len_EN=queue_EN.astype(float),
            expected_delay_EN=np.where(s.can_run_NM[:, model_E].T, delay_EN, np.inf),
            requested_fraction_EN=requested_EN,
            local_node_E=np.full(self._num_envs, -1, dtype=np.int64),
        )

    def snapshot(self, env: int) -> tuple[ClusterSnapshot, TaskSpec]:
        """The cluster state and pending task of one environment, for feature encoding.

        Raises:
            RuntimeError: the environment has no pending task (its episode has ended).
        """
        state = self.envs[env]
        if state.task < 0:
            raise RuntimeError(f"env {env} has no pending task")
        s, m = self.static, state.model
        name = s.model_names[m]
        cold_N = state.cold_NM[:, m]
        factor_N = state.factor_NM[:, m]
        service_N = factor_N * warm_service_s(s.overhead_s_NM[:, m], s.s_per_step_NM[:, m],
                                              state.steps)
        load_N = factor_N * s.load_s_NM[:, m]
        start_N = np.maximum(state.now, state.threshold_NM[:, m])
        delay_N = start_N + service_N + np.where(cold_N, load_N, 0.0) - state.arrival
        for n in self._shared_gpu_nodes:
            if s.can_run_NM[n, m]:
                delay_N[n] = state.estimated_finish(n) - state.arrival
        queue_N = state.queue_len_N.astype(float)
        running_N = np.array([srv.running(state.now) for srv in state.servers], dtype=float)
        busy_N = state.queue_len_N if self.config.exclusive else running_N
        pop_M = state.popularity_M(POPULARITY_WINDOW_S)
        loaded = state.observed_loaded
        used_N = np.array([sum(srv.timings[k].memory_gib for k in seen)
                           for srv, seen in zip(state.servers, loaded, strict=True)])
        snap = ClusterSnapshot(
            present_N=~state.cordoned_N | (queue_N > 0),
            # schedulable for this pod: kube-scheduler's filters (resources fit, free GPU)
            ready_N=state.schedulable_NM()[:, m] | (~state.cordoned_N & ~s.can_run_NM[:, m]),
            fits_N=s.can_run_NM[:, m].copy(),
            resident_N=np.array([name in seen for seen in loaded]),
            speed_N=np.where(s.can_run_NM[:, m], s.speed_NM[:, m] / factor_N, 0.0),
            service_s_N=np.where(s.can_run_NM[:, m], service_N, np.inf),
            load_s_N=load_N,
            vram_gib_N=s.vram_gib_N.copy(),
            vram_free_gib_N=np.maximum(s.vram_gib_N - used_N, 0.0),
            queue_len_N=queue_N,
            running_N=running_N,
            backlog_s_N=np.maximum(state.busy_until_N - state.now, 0.0),
            concurrency_N=s.concurrency_N.astype(float),
            requested_fraction_N=state.requested_fraction_N(),
            est_delay_s_N=np.where(s.can_run_NM[:, m], delay_N, np.inf),
            metrics_age_s_N=np.array([state.metrics_age_s(n) for n in range(self.num_nodes)]),
            memory_gib_N=s.memory_gib_NM[:, m].copy(),
            free_slots_N=np.maximum(s.concurrency_N - busy_N, 0).astype(float),
            evicted_models_N=state.evicts_NMK[:, m, :].sum(axis=1).astype(float),
            evict_popularity_N=state.evicts_NMK[:, m, :].astype(float) @ pop_M,
            evict_cost_s_N=(state.evicts_NMK[:, m, :] * pop_M[None, :]
               * np.where(s.can_run_NM, s.load_s_NM, 0.0) * state.factor_NM).sum(axis=1),
            cold_N=cold_N.copy(),
            loaded_NV=loaded_multi_hot([list(seen) for seen in loaded]),
            pending=state.num_pending + 1,
            popularity=float(pop_M[m]),
        )
        task = TaskSpec(
            model=s.model_names[m],
            steps=state.steps,
            input_mbit=state.input_mbit,
            wait_s=state.now - state.arrival,
        )
        return snap, task

    def service_task(self, env: int) -> ServiceTask:
        """The pending task of one environment as a node sees it."""
        state = self.envs[env]
        spec = self.config.models[state.model]
        return ServiceTask(spec.name, state.steps, cpu=spec.cpu, memory_gib=spec.memory_gib)

    def episode_stats(self) -> dict[str, np.ndarray]:
        """Per-environment totals so far: ``placed``, ``cold_starts``, ``busy_s``, ``utilisation``.

        ``utilisation`` is busy node-seconds over (nodes x horizon).
        """
        busy_E = np.array([env.busy_s for env in self.envs])
        return {
            "placed": np.array([env.placed for env in self.envs]),
            "cold_starts": np.array([env.cold_starts for env in self.envs]),
            "busy_s": busy_E,
            "utilisation": busy_E / (self.num_nodes * self.config.horizon_s),
            "end_s": np.array([max(env.now, float(env.busy_until_N.max())) for env in self.envs]),
        }
