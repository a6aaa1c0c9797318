"""The vectorised ``k8s-edge`` simulator: every environment's state as ``[E, ...]`` arrays.

:class:`VecClusterSimulator` has the interface of
:class:`ladts_policy.sim.dynamics.cluster.ClusterSimulator` (``reset``, ``reset_env``, ``step``,
``current_view``, ``snapshot``, ``service_task``, ``episode_stats``) and the same dynamics,
draws and seeds, but keeps the node servers, the scheduler's projections and the
``ServiceTimeCorrector`` state as struct-of-arrays stepped by the compiled kernels of
:mod:`ladts_policy.sim.dynamics.vec_dynamics`. It also gives every environment's snapshot at once
(:meth:`VecClusterSimulator.snapshot_batch`) for the batched feature encoder.

It covers scenarios whose nodes run one pod at a time in the time-sliced mode (every preset).
Anything else (``concurrency > 1``, ``exclusive``) is not vectorised:
:func:`make_cluster_simulator` returns the reference ``ClusterSimulator`` for it.
``tests/policy/test_cluster_vec.py`` checks both agree to 1e-9 s.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ladts_policy.contract import MODEL_VOCAB
from ladts_policy.features import ClusterSnapshot, TaskSpec
from ladts_policy.features_batch import EncodedBatch, SnapshotBatch
from ladts_policy.service_estimate import CorrectionConfig
from ladts_policy.sim.base import DecisionView
from ladts_policy.sim.config.cluster_config import ClusterConfig, warm_service_s
from ladts_policy.sim.dynamics.cluster import POPULARITY_WINDOW_S, ClusterSimulator
from ladts_policy.sim.dynamics.cluster_state import StaticArrays
from ladts_policy.sim.dynamics.node_service import ServiceTask
from ladts_policy.sim.dynamics.workload import (
    draw_churn,
    draw_hidden,
    draw_resident,
    draw_workload,
    episode_generators,
)

try:
    from ladts_policy.sim.dynamics import vec_dynamics as vd
    from ladts_policy.sim.dynamics import vec_encode
except ImportError:  # no numba (the serving image installs the runtime only): reference only
    vd = None  # type: ignore[assignment]



class _Kernel:
    """A compiled kernel called through its native entry point after the first call.

    Numba's dispatcher types every argument on each call, which for the named tuples of
    arrays here costs about 0.5 ms; the entry point of the signature resolved on the first
    call skips that. Callers pass arrays of fixed dtypes and layouts (this module builds them
    all), so the signature never changes for one simulator. ``threads`` > 1 calls the
    parallel variant of the kernel on that many numba threads.
    """

    def __init__(self, serial: Any, parallel: Any = None, threads: int = 1) -> None:
        self._dispatcher = serial if threads == 1 or parallel is None else parallel
        self._threads = threads if self._dispatcher is parallel else 0
        self._entry: Any = None

    def __call__(self, *args: Any) -> Any:
        if self._threads:
            import numba

            numba.set_num_threads(self._threads)
        if self._entry is None:
            result = self._dispatcher(*args)
            sig = tuple(self._dispatcher.typeof_pyval(a) for a in args)
            self._entry = self._dispatcher.overloads[sig].entry_point
            return result
        return self._entry(*args)


def vectorisable(config: ClusterConfig) -> bool:
    """Whether :class:`VecClusterSimulator` covers the scenario (one pod per node, time-sliced).

    False as well where numba is not installed.
    """
    return vd is not None and not config.exclusive and all(g.concurrency == 1 for g in config.nodes)


def make_cluster_simulator(
    config: ClusterConfig, *, num_envs: int, reference: bool = False, threads: int = 1
) -> VecClusterSimulator | ClusterSimulator:
    """The vectorised simulator where it applies, else (or with ``reference``) the reference.

    ``threads``: numba threads of the vectorised simulator (``VecClusterSimulator``).
    """
    if reference or not vectorisable(config):
        return ClusterSimulator(config, num_envs=num_envs)
    return VecClusterSimulator(config, num_envs=num_envs, threads=threads)


class VecClusterSimulator:
    """Vectorised ``k8s-edge`` simulator (implements ``VecSimulator``; module docstring).

    ``threads`` > 1 steps, plays and encodes the environments in parallel on that many numba
    threads (at most ``numba.config.NUMBA_NUM_THREADS``); 1 (default) runs them in the
    calling thread, which is faster on a machine whose cores are busy with other work.
    """

    def __init__(self, config: ClusterConfig, *, num_envs: int, buffer: int = 16,
                 threads: int = 1) -> None:
        if not vectorisable(config):
            raise ValueError("the vectorised simulator needs concurrency 1, time-sliced nodes "
                             "and numba; make_cluster_simulator falls back to the reference")
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        import numba

        most = int(getattr(numba.config, "NUMBA_NUM_THREADS", 1))
        if not 1 <= threads <= most:
            raise ValueError(f"threads must be in 1..{most} (NUMBA_NUM_THREADS), got {threads}")
        self.config = config
        self.nodes = config.expand_nodes()
        self.static = StaticArrays.build(config, self.nodes)
        self._num_envs = num_envs
        st = self.static
        corr = CorrectionConfig()
        self._s = vd.Static(
            can_run_NM=st.can_run_NM, s_per_step_NM=st.s_per_step_NM,
            overhead_s_NM=st.overhead_s_NM, load_s_NM=st.load_s_NM,
            memory_gib_NM=st.memory_gib_NM, speed_NM=st.speed_NM,
            vram_gib_N=st.vram_gib_N.astype(float), cpu_N=st.cpu_N.astype(float),
            memory_N=st.memory_gib_N.astype(float), pod_cpu_M=st.pod_cpu_M.astype(float),
            pod_mem_M=st.pod_memory_gib_M.astype(float),
            scrape_interval_s=float(config.uncertainty.scrape_interval_s),
            max_down_fraction=float(config.churn.max_down_fraction),
            alpha=float(corr.alpha), log_max_ratio=float(math.log(corr.max_ratio)),
            popularity_window_s=float(POPULARITY_WINDOW_S),
        )
        e, n, m = num_envs, self.num_nodes, len(config.models)
        self._dims = {"E": e, "N": n, "M": m, "K": m, "Q": buffer}
        self._d = vd.Dyn(**{name: np.full(self._shape(name), value, dtype=dtype)
                            for name, (dtype, value) in vd.DYN_INITIAL.items()})
        self._ep = self._empty_episode(1, 1)
        self._input_mbit_ET = np.zeros((e, 1))
        self._mask_EN = np.zeros((e, n), dtype=bool)
        self._view_out = {name: np.zeros((e, n), dtype=bool if name in ("mask", "cold")
                                         else float)
                          for name in ("mask", "delay", "cold", "load", "evict", "capacity",
                                       "queue", "requested")}
        self._pop_EM = np.zeros((e, m))
        self._refs()
        self._step_envs = _Kernel(vd.step_envs, vd.step_envs_parallel, threads)
        self._fill_view = _Kernel(vd.fill_view)
        self._init_envs = _Kernel(vd.init_envs)
        self._encode_envs = _Kernel(vec_encode.encode_envs, vec_encode.encode_envs_parallel,
                                    threads)
        self._play_envs = _Kernel(vd.play_envs, vd.play_envs_parallel, threads)
        self._rollout_scores = _Kernel(vd.rollout_scores)
        self._layout = vec_encode.layout()
        self._vocab_col_M = np.array([MODEL_VOCAB.index(name if name in MODEL_VOCAB else "other")
                                      for name in self.static.model_names], dtype=np.int64)

    # --- the VecSimulator interface ---------------------------------------------------------

    @property
    def num_envs(self) -> int:
        """Number of environments stepped together."""
        return self._num_envs

    @property
    def num_nodes(self) -> int:
        """Number of node slots (every node of the scenario, present or not)."""
        return len(self.nodes)

    @property
    def active_E(self) -> np.ndarray:
        """Return bool [E]: the environment has a pending task (its episode goes on)."""
        return np.asarray(self._d.task_E >= 0)

    def reset(self, seeds: list[int]) -> DecisionView:
        """Start one episode per seed; return the first view."""
        if len(seeds) != self._num_envs:
            raise ValueError(f"expected {self._num_envs} seeds, got {len(seeds)}")
        for env, seed in enumerate(seeds):
            self._load_episode(env, seed)
        self._init(np.arange(self._num_envs))
        view = self._view()
        if view is None:
            raise RuntimeError("no requests in any episode (horizon or rate too small)")
        return view

    def reset_env(self, env: int, seed: int) -> None:
        """Start a new episode in one environment only (vector envs' autoreset)."""
        self._load_episode(env, seed)
        self._init(np.array([env]))
        self._view()  # the new episode's mask

    def current_view(self) -> DecisionView | None:
        """The view of the pending decisions (None when every episode has ended)."""
        return self._view()

    def step(self, actions_E: np.ndarray) -> tuple[np.ndarray, DecisionView | None]:
        """Place every active environment's pending pod on ``actions_E[e]``.

        Raises:
            ValueError: an action names a node outside the last view's mask (no environment
                is changed).
        """
        delay_E = self.place(actions_E)
        return delay_E, self._view()

    def place(self, actions_E: np.ndarray) -> np.ndarray:
        """:meth:`step` without building the next :class:`DecisionView` (returns the delays).

        The mask checked is that of the last view or :meth:`encode_all`.

        Raises:
            ValueError: an action names a node outside that mask (no environment is changed).
        """
        actions_E = np.asarray(actions_E)
        if actions_E.shape != (self._num_envs,):
            raise ValueError(f"expected {self._num_envs} actions, got shape {actions_E.shape}")
        actions_E = actions_E.astype(np.int64)
        active_E = self._d.task_E >= 0
        inside_E = (actions_E >= 0) & (actions_E < self.num_nodes)
        ok_E = inside_E & self._mask_EN[np.arange(self._num_envs),
                                        np.clip(actions_E, 0, self.num_nodes - 1)]
        bad_E = active_E & ~ok_E
        if bad_E.any():
            e = int(np.flatnonzero(bad_E)[0])
            node = int(actions_E[e])
            name = self.nodes[node].name if 0 <= node < self.num_nodes else str(node)
            raise ValueError(f"env {e}: node {name} is not schedulable for this task")
        delay_E = np.full(self._num_envs, np.nan)
        todo_E = active_E.copy()
        status_E = np.zeros(self._num_envs, dtype=np.int64)
        while True:
            self._step_envs(self._s_ref, self._ep_ref, self._d_ref, actions_E, todo_E,
                            delay_E, status_E)
            if (status_E < 0).any():
                env = int(np.flatnonzero(status_E < 0)[0])
                raise RuntimeError(f"env {env}: pods wait forever: no node can ever serve them")
            if not todo_E.any():
                # The mask described the state before these placements: a second place()
                # needs a fresh view or encode_all() (the mask is a private copy).
                self._mask_EN[:] = False
                return delay_E
            self._grow_buffer()

    def play(self, rng: np.random.Generator, *, amortise: float = 0.0, evict: float = 0.0,
             batch_steps: int = 256) -> np.ndarray:
        """Play every episode to its end under greedy (or residency-greedy), in compiled code.

        The decisions are those of ``step(policy.act(view))`` in a loop with
        ``ResidencyGreedyPolicy(amortise, evict)`` (``GreedyPolicy`` at 0, 0) whose generator
        is ``rng``: the tie-breaking noise is drawn from ``rng`` in the same order, ``[E, N]``
        per step, ``batch_steps`` steps at a time (the draws of the last batch's steps after
        every episode ended are not used). ``tests/policy/test_cluster_vec.py`` checks the
        two agree exactly. Environments run in parallel with ``threads`` > 1.

        Returns:
            float [steps, E]: the delay of each environment's decision at each step, NaN
            where the environment had ended.

        Raises:
            RuntimeError: pods of an environment would wait forever.
        """
        e, n = self._num_envs, self.num_nodes
        delays = []
        done_E = np.zeros(e, dtype=np.int64)
        status_E = np.zeros(e, dtype=np.int64)
        while (self._d.task_E >= 0).any():
            noise_SEN = rng.random((batch_steps, e, n))
            delay_SE = np.full((batch_steps, e), np.nan)
            done_E[:] = 0
            while True:
                self._play_envs(self._s_ref, self._ep_ref, self._d_ref, float(amortise),
                                float(evict), noise_SEN, done_E, delay_SE, status_E)
                if (status_E < 0).any():
                    env = int(np.flatnonzero(status_E < 0)[0])
                    raise RuntimeError(f"env {env}: pods wait forever: no node can ever "
                                       "serve them")
                if not (status_E == vd.GROW).any():
                    break
                self._grow_buffer()
            delays.append(delay_SE)
        out = np.concatenate(delays) if delays else np.zeros((0, e))
        last = np.flatnonzero((~np.isnan(out)).any(axis=1))
        self._mask_EN[:] = False
        return out[: last[-1] + 1 if last.size else 0]

    def rollout_scores(self, env: int, candidates: np.ndarray,
                       future: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        """The rollout planner's score of each candidate node for env ``env``'s pending pod.

        ``future`` is one sampled future (arrival times, model indices, steps) as
        ``ladts_policy.rollout.RolloutPolicy`` draws it; the score is the summed estimated
        delay of the pod on the candidate and the sampled requests placed by greedy on the
        scheduler's projections (``vec_dynamics.rollout_scores``).
        """
        if self._d.task_E[env] < 0:
            raise RuntimeError(f"env {env} has no pending task")
        cand_C = np.asarray(candidates, dtype=np.int64)
        time_K, model_K, steps_K = future
        score_C = np.zeros(cand_C.shape[0])
        self._rollout_scores(self._s_ref, self._ep_ref, self._d_ref, int(env), cand_C,
                             np.asarray(time_K, dtype=float), np.asarray(model_K, dtype=np.int64),
                             np.asarray(steps_K, dtype=np.int64), score_C)
        return score_C

    def recent_counts(self, env: int) -> np.ndarray:
        """Return float [M]: requests per model in the popularity window (``recent_counts_M``)."""
        return np.asarray(self._d.win_count_EM[env], dtype=float)

    def now(self, env: int) -> float:
        """The clock of one environment (its pending decision's time)."""
        return float(self._d.now_E[env])

    # --- what schedulers and encoders read --------------------------------------------------

    def snapshot(self, env: int) -> tuple[ClusterSnapshot, TaskSpec]:
        """The cluster state and pending task of one environment (``ClusterSimulator.snapshot``).

        Raises:
            RuntimeError: the environment has no pending task (its episode has ended).
        """
        if self._d.task_E[env] < 0:
            raise RuntimeError(f"env {env} has no pending task")
        batch = self.snapshot_batch(np.array([env]))
        snap = ClusterSnapshot(
            **{name: array[0] for name, array in batch.arrays.items()},
            loaded_NV=batch.loaded_ENV[0],
            pending=int(batch.pending_E[0]),
            popularity=float(batch.popularity_E[0]),
        )
        task = TaskSpec(model=batch.model_E[0], steps=int(batch.steps_E[0]),
                        input_mbit=float(batch.input_mbit_E[0]), wait_s=float(batch.wait_s_E[0]))
        return snap, task

    def snapshot_batch(self, envs: np.ndarray | None = None) -> SnapshotBatch:
        """The snapshots of ``envs`` (default all; rows of ended episodes are zero).

        The same arrays as :meth:`ClusterSimulator.snapshot`, computed for all rows at once.
        """
        d, s, ep = self._d, self.static, self._ep
        rows = np.arange(self._num_envs) if envs is None else np.asarray(envs, dtype=np.int64)
        task_R = d.task_E[rows]
        active_R = task_R >= 0
        safe_R = np.where(active_R, task_R, 0)
        m_R = ep.model_ET[rows, safe_R]
        steps_R = ep.steps_ET[rows, safe_R]
        now_R1 = d.now_E[rows][:, None]
        arrival_R1 = ep.arrival_ET[rows, safe_R][:, None]
        n = self.num_nodes
        nodes = np.arange(n)
        take = (rows[:, None], nodes[None, :], m_R[:, None])
        can_RN = s.can_run_NM[nodes[None, :], m_R[:, None]]
        cold_RN = d.cold_ENM[take]
        factor_RN = d.factor_ENM[take]
        sps_RN = s.s_per_step_NM[nodes[None, :], m_R[:, None]]
        ovh_RN = s.overhead_s_NM[nodes[None, :], m_R[:, None]]
        load_s_RN = s.load_s_NM[nodes[None, :], m_R[:, None]]
        service_RN = factor_RN * warm_service_s(ovh_RN, sps_RN, steps_R[:, None])
        load_RN = factor_RN * load_s_RN
        start_RN = np.maximum(now_R1, d.threshold_ENM[take])
        with np.errstate(invalid="ignore"):
            delay_RN = start_RN + service_RN + np.where(cold_RN, load_RN, 0.0) - arrival_R1
        queue_RN = d.queue_len_EN[rows].astype(float)
        running_RN = self._running(rows)
        pop_RM = self._popularity(rows)
        observed_RNM = d.observed_ENM[rows]
        used_RN = (observed_RNM * s.memory_gib_NM[None]).sum(axis=2)
        cordoned_RN = d.cordoned_EN[rows]
        req_cpu_RN, req_mem_RN = d.req_cpu_EN[rows], d.req_mem_EN[rows]
        tol = 1e-9
        pod_cpu_R1 = s.pod_cpu_M[m_R][:, None]
        pod_mem_R1 = s.pod_memory_gib_M[m_R][:, None]
        schedulable_RN = (can_RN & (req_cpu_RN + pod_cpu_R1 <= s.cpu_N + tol)
                          & (req_mem_RN + pod_mem_R1 <= s.memory_gib_N + tol) & ~cordoned_RN)
        evicts_RNK = d.evicts_ENMK[take]
        age_RN = self._metrics_age(rows)
        est_load_RNK = (np.where(s.can_run_NM, s.load_s_NM, 0.0)[None] * d.factor_ENM[rows])
        speed_RN = s.speed_NM[nodes[None, :], m_R[:, None]]
        arrays = {
            "present_N": ~cordoned_RN | (queue_RN > 0),
            "ready_N": schedulable_RN | (~cordoned_RN & ~can_RN),
            "fits_N": can_RN.copy(),
            "resident_N": observed_RNM[np.arange(len(rows))[:, None], nodes[None, :],
                                       m_R[:, None]],
            "speed_N": np.where(can_RN, speed_RN / factor_RN, 0.0),
            "service_s_N": np.where(can_RN, service_RN, np.inf),
            "load_s_N": load_RN,
            "vram_gib_N": np.broadcast_to(s.vram_gib_N, (len(rows), n)).copy(),
            "vram_free_gib_N": np.maximum(s.vram_gib_N - used_RN, 0.0),
            "queue_len_N": queue_RN,
            "running_N": running_RN,
            "backlog_s_N": np.maximum(d.busy_until_EN[rows] - now_R1, 0.0),
            "concurrency_N": np.broadcast_to(s.concurrency_N.astype(float), (len(rows), n)).copy(),
            "requested_fraction_N": np.minimum(
                0.5 * (req_cpu_RN / s.cpu_N + req_mem_RN / s.memory_gib_N), 1.0),
            "est_delay_s_N": np.where(can_RN, delay_RN, np.inf),
            "metrics_age_s_N": age_RN,
            "memory_gib_N": s.memory_gib_NM[nodes[None, :], m_R[:, None]],
            "free_slots_N": np.maximum(s.concurrency_N - running_RN, 0).astype(float),
            "evicted_models_N": evicts_RNK.sum(axis=2).astype(float),
            "evict_popularity_N": np.einsum("rnk,rk->rn", evicts_RNK.astype(float), pop_RM),
            "evict_cost_s_N": (evicts_RNK * pop_RM[:, None, :] * est_load_RNK).sum(axis=2),
            "cold_N": cold_RN.copy(),
        }
        vocab = len(MODEL_VOCAB)
        loaded_RNV = self._loaded_multi_hot(observed_RNM, vocab)
        zero_R = ~active_R
        if zero_R.any():
            for array in arrays.values():
                array[zero_R] = 0
            loaded_RNV[zero_R] = 0.0
        names = self.static.model_names
        return SnapshotBatch(
            active_E=active_R,
            arrays=arrays,
            loaded_ENV=loaded_RNV,
            pending_E=np.where(active_R, (d.tail_EM[rows] - d.head_EM[rows]).sum(axis=1) + 1,
                               0).astype(float),
            popularity_E=np.where(active_R, pop_RM[np.arange(len(rows)), m_R], 0.0),
            model_E=tuple(names[int(k)] if a else "" for k, a in zip(m_R, active_R,
                                                                     strict=True)),
            steps_E=np.where(active_R, steps_R, 0).astype(float),
            input_mbit_E=np.where(active_R, self._input_mbit_ET[rows, safe_R], 0.0),
            wait_s_E=np.where(active_R, now_R1[:, 0] - arrival_R1[:, 0], 0.0),
        )

    def encode_all(self, *, node_slots: int) -> EncodedBatch:
        """Every environment's ``features.encode`` output, from one compiled pass.

        The same values as ``encode_batch(snapshot_batch())``
        (``ladts_policy.sim.dynamics.vec_encode``); rows of ended episodes are zero. Fresh arrays
        on every call.

        Raises:
            ValueError: the scenario has more nodes than ``node_slots``.
        """
        if self.num_nodes > node_slots:
            raise ValueError(f"snapshot has {self.num_nodes} nodes, more than the "
                             f"{node_slots} node slots")
        lay, e = self._layout, self._num_envs
        rows_ESF = np.zeros((e, node_slots, lay["node_src"].size), dtype=np.float32)
        task_ET = np.zeros((e, lay["task_src"].size), dtype=np.float32)
        global_EG = np.zeros((e, lay["global_src"].size), dtype=np.float32)
        mask_ES = np.zeros((e, node_slots), dtype=bool)
        self._encode_envs(self._s_ref, self._ep_ref, self._d_ref, self._input_mbit_ET,
                          self._vocab_col_M, lay["node_src"], lay["node_scale"],
                          lay["node_log1p"], lay["task_src"], lay["task_scale"],
                          lay["task_log1p"], lay["global_src"], lay["global_scale"],
                          lay["global_log1p"], rows_ESF, task_ET, global_EG, mask_ES)
        self._mask_EN = mask_ES[:, :self.num_nodes].copy()  # what place() checks
        return EncodedBatch(node_rows_ESF=rows_ESF, task_ET=task_ET, global_EG=global_EG,
                            node_mask_ES=mask_ES)

    def service_task(self, env: int) -> ServiceTask:
        """The pending task of one environment as a node sees it."""
        task = int(self._d.task_E[env])
        if task < 0:
            raise RuntimeError(f"env {env} has no pending task")
        spec = self.config.models[int(self._ep.model_ET[env, task])]
        return ServiceTask(spec.name, int(self._ep.steps_ET[env, task]), cpu=spec.cpu,
                           memory_gib=spec.memory_gib)

    def episode_stats(self) -> dict[str, np.ndarray]:
        """Per-environment totals so far (``ClusterSimulator.episode_stats``)."""
        d = self._d
        busy_E = d.busy_s_E.copy()
        return {
            "placed": d.placed_E.copy(),
            "cold_starts": d.cold_starts_E.copy(),
            "busy_s": busy_E,
            "utilisation": busy_E / (self.num_nodes * self.config.horizon_s),
            "end_s": np.maximum(d.now_E, d.busy_until_EN.max(axis=1)),
        }

    # --- internals --------------------------------------------------------------------------

    def _refs(self) -> None:
        """(Re)build the kernels' references to the current arrays."""
        self._s_ref = vd.new_static_ref(self._s)
        self._ep_ref = vd.new_episode_ref(self._ep)
        self._d_ref = vd.new_dyn_ref(self._d)

    def _shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._dims[c] for c in name.rsplit("_", 1)[1])

    def _empty_episode(self, t: int, k: int) -> vd.Episode:
        e, n, m = self._num_envs, self.num_nodes, len(self.config.models)
        return vd.Episode(
            arrival_ET=np.zeros((e, t)), model_ET=np.zeros((e, t), np.int64),
            steps_ET=np.zeros((e, t), np.int64), noise_ET=np.ones((e, t)),
            num_tasks_E=np.zeros(e, np.int64), tasks_EMT=np.zeros((e, m, t), np.int64),
            churn_t_EK=np.zeros((e, k)), churn_node_EK=np.zeros((e, k), np.int64),
            churn_kind_EK=np.zeros((e, k), np.int64), num_churn_E=np.zeros(e, np.int64),
            node_factor_EN=np.ones((e, n)), scrape_phase_EN=np.zeros((e, n)),
            preload_ENM=np.full((e, n, m), -1, np.int64),
        )

    def _load_episode(self, env: int, seed: int) -> None:
        """Draw one episode exactly as ``EnvState`` does and write it into row ``env``."""
        config = self.config
        names = self.static.model_names
        residency = draw_resident(config, self.nodes, seed)
        arrivals_rng, churn_rng = episode_generators(seed)
        work = draw_workload(config, arrivals_rng)
        churn = draw_churn(config.churn, self.num_nodes, config.horizon_s, churn_rng)
        hidden = draw_hidden(config.uncertainty, self.num_nodes, len(work), seed)
        t, k = len(work), len(churn.time_s_K)
        ep = self._ep
        if t > ep.arrival_ET.shape[1] or k > ep.churn_t_EK.shape[1]:
            self._grow_episode(max(t, ep.arrival_ET.shape[1]), max(k, ep.churn_t_EK.shape[1]))
            ep = self._ep
        ep.arrival_ET[env, :t] = work.arrival_s_T
        ep.model_ET[env, :t] = work.model_T
        ep.steps_ET[env, :t] = work.steps_T
        ep.noise_ET[env, :t] = hidden.noise_T
        self._input_mbit_ET[env, :t] = work.input_mbit_T
        ep.num_tasks_E[env] = t
        for m in range(len(names)):
            idx = np.flatnonzero(work.model_T == m)
            ep.tasks_EMT[env, m, :idx.size] = idx
        ep.churn_t_EK[env, :k] = churn.time_s_K
        ep.churn_node_EK[env, :k] = churn.node_K
        ep.churn_kind_EK[env, :k] = churn.kind_K
        ep.num_churn_E[env] = k
        ep.node_factor_EN[env] = hidden.node_factor_N
        ep.scrape_phase_EN[env] = hidden.scrape_phase_s_N
        ep.preload_ENM[env] = -1
        index = {name: i for i, name in enumerate(names)}
        for n, models in enumerate(residency):
            resident = [index[r] for r in models if r in index]
            ep.preload_ENM[env, n, :len(resident)] = resident

    def _grow_episode(self, t: int, k: int) -> None:
        old, new = self._ep, self._empty_episode(t, k)
        for name in old._fields:
            a, b = getattr(old, name), getattr(new, name)
            b[tuple(slice(0, size) for size in a.shape)] = a
        mbit = np.zeros((self._num_envs, t))
        mbit[:, :self._input_mbit_ET.shape[1]] = self._input_mbit_ET
        self._input_mbit_ET = mbit
        self._ep = new
        self._ep_ref = vd.new_episode_ref(new)

    def _grow_buffer(self) -> None:
        """Double the per-node pod buffer ``Q`` (entries keep their positions)."""
        q = self._dims["Q"]
        self._dims["Q"] = 2 * q
        fields = {}
        for name in vd.Dyn._fields:
            array = getattr(self._d, name)
            if "Q" in name.rsplit("_", 1)[1]:
                dtype, value = vd.DYN_INITIAL[name]
                grown = np.full(self._shape(name), value, dtype=dtype)
                grown[:, :, :q] = array
                array = grown
            fields[name] = array
        self._d = vd.Dyn(**fields)
        self._d_ref = vd.new_dyn_ref(self._d)

    def _init(self, envs: np.ndarray) -> None:
        for name, (_, value) in vd.DYN_INITIAL.items():
            getattr(self._d, name)[envs] = value
        bad = self._init_envs(self._s_ref, self._ep_ref, self._d_ref, envs.astype(np.int64))
        if bad >= 0:
            raise RuntimeError(f"env {int(envs[bad])}: pods wait forever: no node can serve them")

    def _view(self) -> DecisionView | None:
        d = self._d
        active_E = d.task_E >= 0
        if not active_E.any():
            return None
        out = self._view_out
        self._fill_view(self._s_ref, self._ep_ref, self._d_ref, out["mask"], out["delay"],
                     out["cold"], out["load"], out["evict"], out["capacity"], out["queue"],
                     out["requested"], self._pop_EM)
        self._mask_EN = out["mask"].copy()
        model_E = self._ep.model_ET[np.arange(self._num_envs), np.maximum(d.task_E, 0)]
        return DecisionView(
            cold_EN=out["cold"].copy(),
            load_s_EN=out["load"].copy(),
            evict_cost_EN=out["evict"].copy(),
            popularity_E=self._pop_EM[np.arange(self._num_envs), model_E],
            active_E=active_E,
            node_mask_EN=self._mask_EN.copy(),
            capacity_EN=out["capacity"].copy(),
            queue_len_EN=out["queue"].copy(),
            expected_delay_EN=out["delay"].copy(),
            requested_fraction_EN=out["requested"].copy(),
            local_node_E=np.full(self._num_envs, -1, dtype=np.int64),
        )

    def _running(self, rows: np.ndarray) -> np.ndarray:
        """Return float [R, N]: pods running at ``now`` on each true node server.

        One pod runs at a time, and at a decision every node whose first pod has finished
        was refreshed (pruned), so the pod at ``q_pod`` is the only candidate.
        """
        d = self._d
        lo_RN, hi_RN = d.q_pod_EN[rows], d.q_hi_EN[rows]
        idx_RN = np.minimum(lo_RN, d.b_start_ENQ.shape[2] - 1)
        take = (rows[:, None], np.arange(self.num_nodes)[None, :], idx_RN)
        now_R1 = d.now_E[rows][:, None]
        running_RN = ((lo_RN < hi_RN) & (d.b_start_ENQ[take] <= now_R1)
                      & (d.b_finish_ENQ[take] > now_R1))
        return np.asarray(running_RN, dtype=float)

    def _popularity(self, rows: np.ndarray) -> np.ndarray:
        """Return float [R, M]: ``EnvState.popularity_M`` of each row (window as of the view)."""
        counts_RM = self._d.win_count_EM[rows].astype(float)
        total_R1 = counts_RM.sum(axis=1, keepdims=True)
        m = counts_RM.shape[1]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(np.where(total_R1 > 0, counts_RM / total_R1, 1.0 / m))

    def _metrics_age(self, rows: np.ndarray) -> np.ndarray:
        interval = self.config.uncertainty.scrape_interval_s
        if interval <= 0.0:
            return np.zeros((len(rows), self.num_nodes))
        now_R1 = self._d.now_E[rows][:, None]
        return np.asarray((now_R1 - self._ep.scrape_phase_EN[rows]) % interval)

    def _loaded_multi_hot(self, observed_RNM: np.ndarray, vocab: int) -> np.ndarray:
        """Return float [R, N, V]: ``features.loaded_multi_hot`` of the observed caches."""
        col_M = np.array([MODEL_VOCAB.index(name if name in MODEL_VOCAB else "other")
                          for name in self.static.model_names])
        out = np.zeros((*observed_RNM.shape[:2], vocab))
        for m, col in enumerate(col_M):
            out[:, :, col] = np.maximum(out[:, :, col], observed_RNM[:, :, m])
        return out
