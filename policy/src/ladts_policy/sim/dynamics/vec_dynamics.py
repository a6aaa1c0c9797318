# mypy: disable-error-code="no-untyped-call,no-any-return,call-arg,var-annotated"
"""Compiled dynamics of the vectorised ``k8s-edge`` simulator (struct-of-arrays over envs).

The same discipline as :class:`ladts_policy.sim.dynamics.node_service.NodeServer` and
:class:`ladts_policy.sim.dynamics.cluster_state.EnvState` (the reference, which stays as it
is), for the common case every preset uses: **one pod at a time per node**
(``concurrency == 1``) and the time-sliced (not ``exclusive``) mode.
``ladts_policy.sim.dynamics.cluster_vec`` builds the arrays and falls back to the reference
for any other scenario.

With one slot the node is a FIFO: pods start and finish in placement order, a pod starts at
``max(now, finish of the pod ahead, last start)``, and no model is busy when a pod starts, so
a cold start evicts idle models least recently used first until the new one fits. A model's
ready time never delays a start (its load ends inside the run of the pod that loaded it), so
it is not kept. Each node's pods live in a linear buffer ``[E, N, Q]`` in placement order with
three cursors: ``q_obs`` (first pod the corrector has not learned from), ``q_pod`` (first
unfinished pod) and ``q_hi`` (end). Every entry also stores the model cache *before* its
start, so the cache a scrape at ``t`` saw is the pre-state of the first entry starting after
``t`` (``NodeServer.loaded_at`` undoes those starts one by one: the same result).

Every function here mirrors one method of the reference (named in its docstring); the
differential test ``tests/policy/test_cluster_vec.py`` checks that both agree to 1e-9 s.
Arrays are passed as named tuples (:class:`Static`, :class:`Episode`, :class:`Dyn`); the
Python side owns them. Shapes: ``E`` envs, ``N`` nodes, ``M`` models, ``Q`` pod buffer,
``T`` requests, ``K`` churn events.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numba
import numpy as np
from numba.core import types
from numba.experimental import structref

LEAVE = 0
JOIN = 1

OK = 0
"""Kernel status: every environment was stepped."""

GROW = 1
"""Kernel status: a node's pod buffer is full; grow ``Q`` and call again from ``env``."""

_INF = math.inf


class Static(NamedTuple):
    """Scenario constants (``StaticArrays`` plus the scalars the dynamics need)."""

    can_run_NM: np.ndarray
    s_per_step_NM: np.ndarray
    overhead_s_NM: np.ndarray
    load_s_NM: np.ndarray
    memory_gib_NM: np.ndarray
    speed_NM: np.ndarray
    vram_gib_N: np.ndarray
    cpu_N: np.ndarray
    memory_N: np.ndarray
    pod_cpu_M: np.ndarray
    pod_mem_M: np.ndarray
    scrape_interval_s: float
    max_down_fraction: float
    alpha: float
    log_max_ratio: float
    popularity_window_s: float


class Episode(NamedTuple):
    """Per-environment draws, padded to the longest episode."""

    arrival_ET: np.ndarray
    model_ET: np.ndarray
    steps_ET: np.ndarray
    noise_ET: np.ndarray
    num_tasks_E: np.ndarray
    tasks_EMT: np.ndarray  # the task indices of each model in arrival order
    churn_t_EK: np.ndarray
    churn_node_EK: np.ndarray
    churn_kind_EK: np.ndarray
    num_churn_E: np.ndarray
    node_factor_EN: np.ndarray
    scrape_phase_EN: np.ndarray
    preload_ENM: np.ndarray  # resident model indices in list order, -1 padded


class Dyn(NamedTuple):
    """Mutable state of every environment (truth, the scheduler's view, and counters)."""

    now_E: np.ndarray
    task_E: np.ndarray
    next_arrival_E: np.ndarray
    next_churn_E: np.ndarray
    head_EM: np.ndarray
    tail_EM: np.ndarray
    cordoned_EN: np.ndarray
    # true node servers
    loaded_ENM: np.ndarray
    stamp_t_ENM: np.ndarray
    stamp_q_ENM: np.ndarray
    seq_EN: np.ndarray
    last_start_EN: np.ndarray
    restarted_EN: np.ndarray
    req_cpu_EN: np.ndarray
    req_mem_EN: np.ndarray
    q_obs_EN: np.ndarray
    q_pod_EN: np.ndarray
    q_hi_EN: np.ndarray
    b_start_ENQ: np.ndarray
    b_finish_ENQ: np.ndarray
    b_model_ENQ: np.ndarray
    b_steps_ENQ: np.ndarray
    b_cold_ENQ: np.ndarray
    b_cpu_ENQ: np.ndarray
    b_mem_ENQ: np.ndarray
    b_pre_loaded_ENQM: np.ndarray
    b_pre_t_ENQM: np.ndarray
    b_pre_q_ENQM: np.ndarray
    # ServiceTimeCorrector
    pair_log_ENM: np.ndarray
    pair_n_ENM: np.ndarray
    node_log_EN: np.ndarray
    node_n_EN: np.ndarray
    # the scheduler's estimates (projections)
    factor_ENM: np.ndarray
    threshold_ENM: np.ndarray
    cold_ENM: np.ndarray
    evicts_ENMK: np.ndarray
    observed_ENM: np.ndarray
    queue_len_EN: np.ndarray
    next_change_EN: np.ndarray
    busy_until_EN: np.ndarray
    stale_at_EN: np.ndarray
    # each node's projection after its queued pods (the rollout planner starts from it):
    # cache, LRU stamps, stamp counter, and the time from which a new pod could start
    proj_loaded_ENM: np.ndarray
    proj_t_ENM: np.ndarray
    proj_q_ENM: np.ndarray
    proj_seq_EN: np.ndarray
    proj_tail_EN: np.ndarray
    # episode totals
    placed_E: np.ndarray
    cold_starts_E: np.ndarray
    busy_s_E: np.ndarray
    # requests per model arrived in the popularity window (first one in it: win_lo_E)
    win_lo_E: np.ndarray
    win_count_EM: np.ndarray


# Kernels take the three groups as StructRefs (one reference each): a named tuple of ~70
# arrays costs about 1 us per call of a non-inlined function (every member is counted in
# and out), which was most of the time of a decision.


class _GroupType(types.StructRef):
    def preprocess_fields(self, fields: Any) -> Any:
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


@structref.register
class _StaticType(_GroupType):
    pass


@structref.register
class _EpisodeType(_GroupType):
    pass


@structref.register
class _DynType(_GroupType):
    pass


class StaticRef(structref.StructRefProxy):
    """:class:`Static` as one reference for the kernels (same arrays, not copies)."""


class EpisodeRef(structref.StructRefProxy):
    """:class:`Episode` as one reference for the kernels."""


class DynRef(structref.StructRefProxy):
    """:class:`Dyn` as one reference for the kernels."""


structref.define_proxy(StaticRef, _StaticType, list(Static._fields))
structref.define_proxy(EpisodeRef, _EpisodeType, list(Episode._fields))
structref.define_proxy(DynRef, _DynType, list(Dyn._fields))



DYN_INITIAL: dict[str, tuple[Any, float | bool | int]] = {
    "now_E": (np.float64, 0.0), "task_E": (np.int64, -1), "next_arrival_E": (np.int64, 0),
    "next_churn_E": (np.int64, 0), "head_EM": (np.int64, 0), "tail_EM": (np.int64, 0),
    "cordoned_EN": (np.bool_, False), "loaded_ENM": (np.bool_, False),
    "stamp_t_ENM": (np.float64, 0.0), "stamp_q_ENM": (np.int64, 0), "seq_EN": (np.int64, 0),
    "last_start_EN": (np.float64, 0.0), "restarted_EN": (np.float64, 0.0),
    "req_cpu_EN": (np.float64, 0.0), "req_mem_EN": (np.float64, 0.0), "q_obs_EN": (np.int64, 0),
    "q_pod_EN": (np.int64, 0), "q_hi_EN": (np.int64, 0), "b_start_ENQ": (np.float64, 0.0),
    "b_finish_ENQ": (np.float64, 0.0), "b_model_ENQ": (np.int64, 0), "b_steps_ENQ": (np.int64, 0),
    "b_cold_ENQ": (np.bool_, False), "b_cpu_ENQ": (np.float64, 0.0),
    "b_mem_ENQ": (np.float64, 0.0), "b_pre_loaded_ENQM": (np.bool_, False),
    "b_pre_t_ENQM": (np.float64, 0.0), "b_pre_q_ENQM": (np.int64, 0),
    "pair_log_ENM": (np.float64, 0.0), "pair_n_ENM": (np.int64, 0),
    "node_log_EN": (np.float64, 0.0), "node_n_EN": (np.int64, 0), "factor_ENM": (np.float64, 1.0),
    "threshold_ENM": (np.float64, math.inf), "cold_ENM": (np.bool_, True),
    "evicts_ENMK": (np.bool_, False), "observed_ENM": (np.bool_, False),
    "queue_len_EN": (np.int64, 0), "next_change_EN": (np.float64, math.inf),
    "busy_until_EN": (np.float64, 0.0), "stale_at_EN": (np.float64, math.inf),
    "proj_loaded_ENM": (np.bool_, False), "proj_t_ENM": (np.float64, 0.0),
    "proj_q_ENM": (np.int64, 0), "proj_seq_EN": (np.int64, 0), "proj_tail_EN": (np.float64, 0.0),
    "placed_E": (np.int64, 0), "cold_starts_E": (np.int64, 0), "busy_s_E": (np.float64, 0.0),
    "win_lo_E": (np.int64, 0), "win_count_EM": (np.int64, 0),
}
"""Every :class:`Dyn` field: (dtype, value of a fresh environment)."""

_STATIC_DTYPES = {"can_run_NM": np.bool_, "scrape_interval_s": None, "max_down_fraction": None,
                  "alpha": None, "log_max_ratio": None, "popularity_window_s": None}
_EPISODE_INT = {"model_ET", "steps_ET", "num_tasks_E", "tasks_EMT", "churn_node_EK",
                "churn_kind_EK", "num_churn_E", "preload_ENM"}


def _array_type(name: str, dtype: Any) -> Any:
    if dtype is None:
        return types.float64
    ndim = len(name.rsplit("_", 1)[1])
    return types.Array(numba.from_dtype(np.dtype(dtype)), ndim, "C")


_STATIC_T = _StaticType([(f, _array_type(f, _STATIC_DTYPES.get(f, np.float64)))
                         for f in Static._fields])
_EPISODE_T = _EpisodeType([(f, _array_type(f, np.int64 if f in _EPISODE_INT else np.float64))
                           for f in Episode._fields])
_DYN_T = _DynType([(f, _array_type(f, DYN_INITIAL[f][0])) for f in Dyn._fields])


@numba.njit(cache=True)
def new_static_ref(g: Any) -> Any:
    """The kernels' reference to the arrays of ``g`` (no copy)."""
    r = structref.new(_STATIC_T)
    r.can_run_NM = g.can_run_NM
    r.s_per_step_NM = g.s_per_step_NM
    r.overhead_s_NM = g.overhead_s_NM
    r.load_s_NM = g.load_s_NM
    r.memory_gib_NM = g.memory_gib_NM
    r.speed_NM = g.speed_NM
    r.vram_gib_N = g.vram_gib_N
    r.cpu_N = g.cpu_N
    r.memory_N = g.memory_N
    r.pod_cpu_M = g.pod_cpu_M
    r.pod_mem_M = g.pod_mem_M
    r.scrape_interval_s = g.scrape_interval_s
    r.max_down_fraction = g.max_down_fraction
    r.alpha = g.alpha
    r.log_max_ratio = g.log_max_ratio
    r.popularity_window_s = g.popularity_window_s
    return r


@numba.njit(cache=True)
def new_episode_ref(g: Any) -> Any:
    """The kernels' reference to the arrays of ``g`` (no copy)."""
    r = structref.new(_EPISODE_T)
    r.arrival_ET = g.arrival_ET
    r.model_ET = g.model_ET
    r.steps_ET = g.steps_ET
    r.noise_ET = g.noise_ET
    r.num_tasks_E = g.num_tasks_E
    r.tasks_EMT = g.tasks_EMT
    r.churn_t_EK = g.churn_t_EK
    r.churn_node_EK = g.churn_node_EK
    r.churn_kind_EK = g.churn_kind_EK
    r.num_churn_E = g.num_churn_E
    r.node_factor_EN = g.node_factor_EN
    r.scrape_phase_EN = g.scrape_phase_EN
    r.preload_ENM = g.preload_ENM
    return r


@numba.njit(cache=True)
def new_dyn_ref(g: Any) -> Any:
    """The kernels' reference to the arrays of ``g`` (no copy)."""
    r = structref.new(_DYN_T)
    r.now_E = g.now_E
    r.task_E = g.task_E
    r.next_arrival_E = g.next_arrival_E
    r.next_churn_E = g.next_churn_E
    r.head_EM = g.head_EM
    r.tail_EM = g.tail_EM
    r.cordoned_EN = g.cordoned_EN
    r.loaded_ENM = g.loaded_ENM
    r.stamp_t_ENM = g.stamp_t_ENM
    r.stamp_q_ENM = g.stamp_q_ENM
    r.seq_EN = g.seq_EN
    r.last_start_EN = g.last_start_EN
    r.restarted_EN = g.restarted_EN
    r.req_cpu_EN = g.req_cpu_EN
    r.req_mem_EN = g.req_mem_EN
    r.q_obs_EN = g.q_obs_EN
    r.q_pod_EN = g.q_pod_EN
    r.q_hi_EN = g.q_hi_EN
    r.b_start_ENQ = g.b_start_ENQ
    r.b_finish_ENQ = g.b_finish_ENQ
    r.b_model_ENQ = g.b_model_ENQ
    r.b_steps_ENQ = g.b_steps_ENQ
    r.b_cold_ENQ = g.b_cold_ENQ
    r.b_cpu_ENQ = g.b_cpu_ENQ
    r.b_mem_ENQ = g.b_mem_ENQ
    r.b_pre_loaded_ENQM = g.b_pre_loaded_ENQM
    r.b_pre_t_ENQM = g.b_pre_t_ENQM
    r.b_pre_q_ENQM = g.b_pre_q_ENQM
    r.pair_log_ENM = g.pair_log_ENM
    r.pair_n_ENM = g.pair_n_ENM
    r.node_log_EN = g.node_log_EN
    r.node_n_EN = g.node_n_EN
    r.factor_ENM = g.factor_ENM
    r.threshold_ENM = g.threshold_ENM
    r.cold_ENM = g.cold_ENM
    r.evicts_ENMK = g.evicts_ENMK
    r.observed_ENM = g.observed_ENM
    r.queue_len_EN = g.queue_len_EN
    r.next_change_EN = g.next_change_EN
    r.busy_until_EN = g.busy_until_EN
    r.stale_at_EN = g.stale_at_EN
    r.proj_loaded_ENM = g.proj_loaded_ENM
    r.proj_t_ENM = g.proj_t_ENM
    r.proj_q_ENM = g.proj_q_ENM
    r.proj_seq_EN = g.proj_seq_EN
    r.proj_tail_EN = g.proj_tail_EN
    r.placed_E = g.placed_E
    r.cold_starts_E = g.cold_starts_E
    r.busy_s_E = g.busy_s_E
    r.win_lo_E = g.win_lo_E
    r.win_count_EM = g.win_count_EM
    return r


# --- one node's true server (NodeServer) ---------------------------------------------------


@numba.njit(cache=True)
def _service(overhead_s_NM: np.ndarray, s_per_step_NM: np.ndarray, load_s_NM: np.ndarray,
             n: int, m: int, steps: float, cold: bool) -> float:
    """``NodeServer.service_s``: load (if cold) + ``ModelTiming.service_s``.

    The compiled twin of ``cluster_config.warm_service_s`` (the kernels cannot call Python);
    every kernel computes run times through it.
    """
    warm = overhead_s_NM[n, m] + steps * s_per_step_NM[n, m]
    return (load_s_NM[n, m] if cold else 0.0) + warm


@numba.njit(cache=True)
def _lru_order(loaded_M: np.ndarray, t_M: np.ndarray, q_M: np.ndarray, out_M: np.ndarray) -> int:
    """Loaded models least recently used first (stamps compare as ``(t, seq)``)."""
    count = 0
    for k in range(loaded_M.shape[0]):
        if loaded_M[k]:
            pos = count
            while pos > 0 and (t_M[out_M[pos - 1]] > t_M[k] or (
                    t_M[out_M[pos - 1]] == t_M[k] and q_M[out_M[pos - 1]] > q_M[k])):
                out_M[pos] = out_M[pos - 1]
                pos -= 1
            out_M[pos] = k
            count += 1
    return count


@numba.njit(cache=True)
def _make_room(vram_gib_N: np.ndarray, memory_gib_NM: np.ndarray, n: int, need: float,
               loaded_M: np.ndarray, t_M: np.ndarray, q_M: np.ndarray, order_M: np.ndarray,
               evict_M: np.ndarray) -> None:
    """``NodeServer._make_room`` with no busy model: evict LRU-first until ``need`` fits."""
    count = _lru_order(loaded_M, t_M, q_M, order_M)
    evict_M[:] = False
    used = 0.0
    for i in range(count):  # summed in LRU order, as the reference's dict is kept
        used += memory_gib_NM[n, order_M[i]]
    free = vram_gib_N[n] - used
    if free >= need:
        return
    for i in range(count):
        k = order_M[i]
        evict_M[k] = True
        free += memory_gib_NM[n, k]
        if free >= need:
            return
    evict_M[:] = False  # unreachable when the model fits the node


@numba.njit(cache=True)
def _prune(q_pod_EN: np.ndarray, q_hi_EN: np.ndarray, b_finish_ENQ: np.ndarray,
           b_cpu_ENQ: np.ndarray, b_mem_ENQ: np.ndarray, req_cpu_EN: np.ndarray,
           req_mem_EN: np.ndarray, e: int, n: int, now: float) -> None:
    """``NodeServer._prune``: pods finished by ``now`` leave the queue (requests freed)."""
    i = q_pod_EN[e, n]
    hi = q_hi_EN[e, n]
    while i < hi and b_finish_ENQ[e, n, i] <= now:
        req_cpu_EN[e, n] -= b_cpu_ENQ[e, n, i]
        req_mem_EN[e, n] -= b_mem_ENQ[e, n, i]
        i += 1
    q_pod_EN[e, n] = i


@numba.njit(cache=True)
def _stamp(seq_EN: np.ndarray, loaded_ENM: np.ndarray, stamp_t_ENM: np.ndarray,
           stamp_q_ENM: np.ndarray, e: int, n: int, m: int, t: float) -> None:
    seq_EN[e, n] += 1
    loaded_ENM[e, n, m] = True
    stamp_t_ENM[e, n, m] = t
    stamp_q_ENM[e, n, m] = seq_EN[e, n]


@numba.njit(cache=True)
def _restart(s: Static, ep: Episode, d: Dyn, e: int, n: int, now: float) -> None:
    """``NodeServer.restart``: only the preloaded models (that fit, in list order) stay."""
    d.loaded_ENM[e, n, :] = False
    used = 0.0
    for i in range(ep.preload_ENM.shape[2]):
        m = ep.preload_ENM[e, n, i]
        if m < 0:
            break
        if s.can_run_NM[n, m] and used + s.memory_gib_NM[n, m] <= s.vram_gib_N[n]:
            used += s.memory_gib_NM[n, m]
            _stamp(d.seq_EN, d.loaded_ENM, d.stamp_t_ENM, d.stamp_q_ENM, e, n, m, now)
    d.last_start_EN[e, n] = now
    d.restarted_EN[e, n] = now


@numba.njit(cache=True)
def _compact(s: Static, d: Dyn, e: int, n: int) -> bool:
    """Drop buffer entries nothing needs any more; False when the buffer is still full."""
    hi = d.q_hi_EN[e, n]
    horizon = d.now_E[e] - s.scrape_interval_s  # loaded_at never looks further back
    lo = 0
    while lo < d.q_obs_EN[e, n] and d.b_start_ENQ[e, n, lo] <= horizon:
        lo += 1
    if lo > 0:
        keep = hi - lo
        d.b_start_ENQ[e, n, :keep] = d.b_start_ENQ[e, n, lo:hi].copy()
        d.b_finish_ENQ[e, n, :keep] = d.b_finish_ENQ[e, n, lo:hi].copy()
        d.b_model_ENQ[e, n, :keep] = d.b_model_ENQ[e, n, lo:hi].copy()
        d.b_steps_ENQ[e, n, :keep] = d.b_steps_ENQ[e, n, lo:hi].copy()
        d.b_cold_ENQ[e, n, :keep] = d.b_cold_ENQ[e, n, lo:hi].copy()
        d.b_cpu_ENQ[e, n, :keep] = d.b_cpu_ENQ[e, n, lo:hi].copy()
        d.b_mem_ENQ[e, n, :keep] = d.b_mem_ENQ[e, n, lo:hi].copy()
        d.b_pre_loaded_ENQM[e, n, :keep] = d.b_pre_loaded_ENQM[e, n, lo:hi].copy()
        d.b_pre_t_ENQM[e, n, :keep] = d.b_pre_t_ENQM[e, n, lo:hi].copy()
        d.b_pre_q_ENQM[e, n, :keep] = d.b_pre_q_ENQM[e, n, lo:hi].copy()
        d.q_obs_EN[e, n] -= lo
        d.q_pod_EN[e, n] -= lo
        d.q_hi_EN[e, n] = keep
    return d.q_hi_EN[e, n] < d.b_start_ENQ.shape[2]


@numba.njit(cache=True)
def _place_true(s: Static, ep: Episode, d: Dyn, e: int, n: int, order_M: np.ndarray,
                evict_M: np.ndarray) -> float:
    """``EnvState.place`` -> ``NodeServer.place``; returns the pod's finish time."""
    task = d.task_E[e]
    m = ep.model_ET[e, task]
    steps = ep.steps_ET[e, task]
    now = d.now_E[e]
    tf = ep.node_factor_EN[e, n] * ep.noise_ET[e, task]
    hi = d.q_hi_EN[e, n]
    threshold = d.last_start_EN[e, n]
    if hi > d.q_pod_EN[e, n] and d.b_finish_ENQ[e, n, hi - 1] > threshold:
        threshold = d.b_finish_ENQ[e, n, hi - 1]
    cold = not d.loaded_ENM[e, n, m]
    if cold:
        _make_room(s.vram_gib_N, s.memory_gib_NM, n, s.memory_gib_NM[n, m], d.loaded_ENM[e, n],
                   d.stamp_t_ENM[e, n],
                   d.stamp_q_ENM[e, n], order_M, evict_M)
    else:
        evict_M[:] = False
    start = max(now, threshold)
    finish = start + tf * _service(s.overhead_s_NM, s.s_per_step_NM, s.load_s_NM, n, m, steps, cold)
    _prune(d.q_pod_EN, d.q_hi_EN, d.b_finish_ENQ, d.b_cpu_ENQ, d.b_mem_ENQ,
           d.req_cpu_EN, d.req_mem_EN, e, n, now)
    # the entry keeps the cache before this start (NodeServer._events)
    d.b_start_ENQ[e, n, hi] = start
    d.b_finish_ENQ[e, n, hi] = finish
    d.b_model_ENQ[e, n, hi] = m
    d.b_steps_ENQ[e, n, hi] = steps
    d.b_cold_ENQ[e, n, hi] = cold
    d.b_cpu_ENQ[e, n, hi] = s.pod_cpu_M[m]
    d.b_mem_ENQ[e, n, hi] = s.pod_mem_M[m]
    d.b_pre_loaded_ENQM[e, n, hi] = d.loaded_ENM[e, n]
    d.b_pre_t_ENQM[e, n, hi] = d.stamp_t_ENM[e, n]
    d.b_pre_q_ENQM[e, n, hi] = d.stamp_q_ENM[e, n]
    d.q_hi_EN[e, n] = hi + 1
    d.req_cpu_EN[e, n] += s.pod_cpu_M[m]
    d.req_mem_EN[e, n] += s.pod_mem_M[m]
    d.last_start_EN[e, n] = start
    for k in range(evict_M.shape[0]):
        if evict_M[k]:
            d.loaded_ENM[e, n, k] = False
    _stamp(d.seq_EN, d.loaded_ENM, d.stamp_t_ENM, d.stamp_q_ENM, e, n, m, start)
    d.placed_E[e] += 1
    d.cold_starts_E[e] += 1 if cold else 0
    d.busy_s_E[e] += finish - start
    return finish


# --- the scheduler's view of one node (EnvState._refresh_node) ------------------------------


@numba.njit(cache=True)
def _metrics_age(interval: float, phase: float, now: float) -> float:
    """``EnvState.metrics_age_s``."""
    if interval <= 0.0:
        return 0.0
    return (now - phase) % interval


@numba.njit(cache=True)
def _observe(s: Static, d: Dyn, e: int, n: int) -> None:
    """``EnvState._observe_completions`` with ``ServiceTimeCorrector.observe``."""
    lo = d.q_obs_EN[e, n]
    hi = d.q_pod_EN[e, n]
    if lo == hi:
        return
    bound = s.log_max_ratio
    alpha = s.alpha
    for i in range(lo, hi):
        m = d.b_model_ENQ[e, n, i]
        observed = d.b_finish_ENQ[e, n, i] - d.b_start_ENQ[e, n, i]
        predicted = 1.0 * _service(s.overhead_s_NM, s.s_per_step_NM, s.load_s_NM, n, m,
                                   d.b_steps_ENQ[e, n, i], d.b_cold_ENQ[e, n, i])
        if not (observed > 0.0 and predicted > 0.0):
            continue
        if not (math.isfinite(observed) and math.isfinite(predicted)):
            continue
        log_ratio = min(max(math.log(observed / predicted), -bound), bound)
        if d.pair_n_ENM[e, n, m] == 0:
            d.pair_log_ENM[e, n, m] = log_ratio
        else:
            d.pair_log_ENM[e, n, m] = (1.0 - alpha) * d.pair_log_ENM[e, n, m] + alpha * log_ratio
        d.pair_n_ENM[e, n, m] += 1
        if d.node_n_EN[e, n] == 0:
            d.node_log_EN[e, n] = log_ratio
        else:
            d.node_log_EN[e, n] = (1.0 - alpha) * d.node_log_EN[e, n] + alpha * log_ratio
        d.node_n_EN[e, n] += 1
    d.q_obs_EN[e, n] = hi
    for m in range(d.factor_ENM.shape[2]):
        if d.pair_n_ENM[e, n, m] > 0:
            d.factor_ENM[e, n, m] = math.exp(d.pair_log_ENM[e, n, m])
        elif d.node_n_EN[e, n] > 0:
            d.factor_ENM[e, n, m] = math.exp(d.node_log_EN[e, n])
        else:
            d.factor_ENM[e, n, m] = 1.0


@numba.njit(cache=True)
def _refresh(s: Static, ep: Episode, d: Dyn, e: int, n: int, order_M: np.ndarray,
             evict_M: np.ndarray, p_loaded_M: np.ndarray, p_t_M: np.ndarray,
             p_q_M: np.ndarray) -> None:
    """``EnvState._refresh_node``: counts, completions, then the node's projection."""
    now = d.now_E[e]
    # _refresh_counts
    _prune(d.q_pod_EN, d.q_hi_EN, d.b_finish_ENQ, d.b_cpu_ENQ, d.b_mem_ENQ,
           d.req_cpu_EN, d.req_mem_EN, e, n, now)
    lo, hi = d.q_pod_EN[e, n], d.q_hi_EN[e, n]
    d.queue_len_EN[e, n] = hi - lo
    if hi == lo:
        d.req_cpu_EN[e, n] = 0.0
        d.req_mem_EN[e, n] = 0.0
        d.next_change_EN[e, n] = _INF
    elif d.b_start_ENQ[e, n, lo] > now:
        d.next_change_EN[e, n] = d.b_start_ENQ[e, n, lo]
    else:
        d.next_change_EN[e, n] = d.b_finish_ENQ[e, n, lo]
    _observe(s, d, e, n)
    # what the last scrape saw: the cache before the first start after it (loaded_at)
    age = _metrics_age(s.scrape_interval_s, ep.scrape_phase_EN[e, n], now)
    seen = max(now - age, d.restarted_EN[e, n])
    first = -1
    i = hi - 1
    while i >= 0 and d.b_start_ENQ[e, n, i] > seen:
        first = i
        i -= 1
    if first >= 0:
        p_loaded_M[:] = d.b_pre_loaded_ENQM[e, n, first]
        p_t_M[:] = d.b_pre_t_ENQM[e, n, first]
        p_q_M[:] = d.b_pre_q_ENQM[e, n, first]
    else:
        p_loaded_M[:] = d.loaded_ENM[e, n]
        p_t_M[:] = d.stamp_t_ENM[e, n]
        p_q_M[:] = d.stamp_q_ENM[e, n]
    d.observed_ENM[e, n] = p_loaded_M
    # node_service.project: set_loaded, pin the running pod, place the queued ones
    seq = 0
    for k in range(p_loaded_M.shape[0]):
        if p_loaded_M[k] and p_q_M[k] + 1 > seq:
            seq = p_q_M[k] + 1
    last_start = max(0.0, now)
    has_pods = False
    last_finish = -_INF
    stale = _INF
    j = lo
    if j < hi and d.b_start_ENQ[e, n, j] <= now:
        m = d.b_model_ENQ[e, n, j]
        start = d.b_start_ENQ[e, n, j]
        f = d.factor_ENM[e, n, m]
        run = 1.0 * f * _service(s.overhead_s_NM, s.s_per_step_NM, s.load_s_NM, n, m,
                                 d.b_steps_ENQ[e, n, j], d.b_cold_ENQ[e, n, j])
        last_finish = max(start + run, now)
        has_pods = True
        last_start = max(last_start, start)
        if not p_loaded_M[m]:
            seq += 1
            p_loaded_M[m] = True
            p_t_M[m] = start
            p_q_M[m] = seq
        if last_finish > now:
            stale = last_finish
        j += 1
    while j < hi:
        m = d.b_model_ENQ[e, n, j]
        f = d.factor_ENM[e, n, m]
        threshold = last_start
        if has_pods and last_finish > threshold:
            threshold = last_finish
        cold = not p_loaded_M[m]
        if cold:
            _make_room(s.vram_gib_N, s.memory_gib_NM, n, s.memory_gib_NM[n, m], p_loaded_M,
                       p_t_M, p_q_M, order_M, evict_M)
            for k in range(evict_M.shape[0]):
                if evict_M[k]:
                    p_loaded_M[k] = False
        start = max(now, threshold)
        finish = start + f * _service(s.overhead_s_NM, s.s_per_step_NM, s.load_s_NM, n, m,
                                      d.b_steps_ENQ[e, n, j], cold)
        last_start = start
        last_finish = finish
        has_pods = True
        seq += 1
        p_loaded_M[m] = True
        p_t_M[m] = start
        p_q_M[m] = seq
        if start <= now and finish > now and finish < stale:
            stale = finish
        j += 1
    threshold = last_start
    if has_pods and last_finish > threshold:
        threshold = last_finish
    # every model's earliest_start on the final projection: _make_room per cold model, with
    # the LRU order and the used memory computed once
    count = _lru_order(p_loaded_M, p_t_M, p_q_M, order_M)
    used = 0.0
    for i in range(count):
        used += s.memory_gib_NM[n, order_M[i]]
    for m in range(p_loaded_M.shape[0]):
        d.evicts_ENMK[e, n, m, :] = False
        if not s.can_run_NM[n, m]:
            d.threshold_ENM[e, n, m] = _INF
            d.cold_ENM[e, n, m] = True
            continue
        d.threshold_ENM[e, n, m] = threshold
        cold = not p_loaded_M[m]
        d.cold_ENM[e, n, m] = cold
        if cold:
            need = s.memory_gib_NM[n, m]
            free = s.vram_gib_N[n] - used
            if free < need:
                fits = False
                for i in range(count):
                    k = order_M[i]
                    d.evicts_ENMK[e, n, m, k] = True
                    free += s.memory_gib_NM[n, k]
                    if free >= need:
                        fits = True
                        break
                if not fits:  # unreachable when the model fits the node
                    d.evicts_ENMK[e, n, m, :] = False
    d.busy_until_EN[e, n] = max(last_finish if has_pods else -_INF, 0.0)
    d.proj_loaded_ENM[e, n] = p_loaded_M
    d.proj_t_ENM[e, n] = p_t_M
    d.proj_q_ENM[e, n] = p_q_M
    d.proj_seq_EN[e, n] = seq
    d.proj_tail_EN[e, n] = threshold
    if s.scrape_interval_s > 0.0:
        stale = min(stale, now + s.scrape_interval_s - age)
    d.stale_at_EN[e, n] = stale


# --- one environment's clock (EnvState.advance) --------------------------------------------


@numba.njit(cache=True)
def _schedulable(can_run: bool, cordoned: bool, req_cpu: float, req_mem: float,
                 pod_cpu: float, pod_mem: float, cpu: float, memory: float) -> bool:
    """``EnvState.schedulable_NM`` for one (node, model) (time-sliced mode)."""
    tol = 1e-9
    if not can_run or cordoned:
        return False
    return req_cpu + pod_cpu <= cpu + tol and req_mem + pod_mem <= memory + tol


@numba.njit(cache=True)
def _may_leave(s: Static, d: Dyn, e: int, node: int) -> bool:
    """``EnvState._may_leave``."""
    if d.cordoned_EN[e, node]:
        return False
    num_nodes = d.cordoned_EN.shape[1]
    down = 1
    for n in range(num_nodes):
        if d.cordoned_EN[e, n]:
            down += 1
    if down > s.max_down_fraction * num_nodes:
        return False
    for m in range(s.can_run_NM.shape[1]):
        served = False
        for n in range(num_nodes):
            if n != node and not d.cordoned_EN[e, n] and s.can_run_NM[n, m]:
                served = True
                break
        if not served:
            return False
    return True


@numba.njit(cache=True)
def _set_clock(s: Static, ep: Episode, d: Dyn, e: int, now: float, order_M: np.ndarray,
               evict_M: np.ndarray, p_loaded_M: np.ndarray, p_t_M: np.ndarray,
               p_q_M: np.ndarray) -> None:
    """``EnvState._set_clock`` with ``_apply_churn``."""
    d.now_E[e] = now
    k = d.next_churn_E[e]
    while k < ep.num_churn_E[e] and ep.churn_t_EK[e, k] <= now:
        node = ep.churn_node_EK[e, k]
        kind = ep.churn_kind_EK[e, k]
        k += 1
        d.next_churn_E[e] = k
        if kind == LEAVE and _may_leave(s, d, e, node):
            d.cordoned_EN[e, node] = True
        elif kind == JOIN and d.cordoned_EN[e, node]:
            d.cordoned_EN[e, node] = False
            t_join = ep.churn_t_EK[e, k - 1]
            _prune(d.q_pod_EN, d.q_hi_EN, d.b_finish_ENQ, d.b_cpu_ENQ, d.b_mem_ENQ,
           d.req_cpu_EN, d.req_mem_EN, e, node, t_join)
            if d.q_pod_EN[e, node] == d.q_hi_EN[e, node]:
                _restart(s, ep, d, e, node, t_join)
                _refresh(s, ep, d, e, node, order_M, evict_M, p_loaded_M, p_t_M, p_q_M)
    # a refresh changes only its own node's row, so nodes can be refreshed as they are found
    for n in range(d.cordoned_EN.shape[1]):
        if d.next_change_EN[e, n] <= now or d.stale_at_EN[e, n] <= now:
            _refresh(s, ep, d, e, n, order_M, evict_M, p_loaded_M, p_t_M, p_q_M)


@numba.njit(cache=True)
def _slide_window(s: Static, ep: Episode, d: Dyn, e: int) -> None:
    """Drop the requests older than the popularity window (``EnvState.popularity_M``).

    Called at every decision (end of :func:`_advance`); ``now`` never goes back within an
    episode, so the window's start only moves forward.
    """
    hi = d.next_arrival_E[e]
    lo = d.win_lo_E[e]
    cut = d.now_E[e] - s.popularity_window_s
    while lo < hi and ep.arrival_ET[e, lo] <= cut:
        d.win_count_EM[e, ep.model_ET[e, lo]] -= 1
        lo += 1
    d.win_lo_E[e] = lo


@numba.njit(cache=True)
def _advance(s: Static, ep: Episode, d: Dyn, e: int, order_M: np.ndarray, evict_M: np.ndarray,
             p_loaded_M: np.ndarray, p_t_M: np.ndarray, p_q_M: np.ndarray) -> bool:
    """``EnvState.advance``; False when pods would wait forever (the reference raises)."""
    num_models = d.head_EM.shape[1]
    num_nodes = d.cordoned_EN.shape[1]
    t = d.now_E[e]
    while True:
        a = d.next_arrival_E[e]
        while a < ep.num_tasks_E[e] and ep.arrival_ET[e, a] <= t:
            d.tail_EM[e, ep.model_ET[e, a]] += 1
            d.win_count_EM[e, ep.model_ET[e, a]] += 1
            a += 1
        d.next_arrival_E[e] = a
        _set_clock(s, ep, d, e, t, order_M, evict_M, p_loaded_M, p_t_M, p_q_M)
        best = -1
        waiting = 0
        for m in range(num_models):
            pending = d.tail_EM[e, m] - d.head_EM[e, m]
            waiting += pending
            if pending == 0:
                continue
            servable = False
            for n in range(num_nodes):
                if _schedulable(s.can_run_NM[n, m], d.cordoned_EN[e, n], d.req_cpu_EN[e, n],
                                 d.req_mem_EN[e, n], s.pod_cpu_M[m], s.pod_mem_M[m], s.cpu_N[n],
                                 s.memory_N[n]):
                    servable = True
                    break
            if servable:
                head = ep.tasks_EMT[e, m, d.head_EM[e, m]]
                if best < 0 or head < best:
                    best = head
        if best >= 0:
            d.task_E[e] = best
            d.head_EM[e, ep.model_ET[e, best]] += 1
            _slide_window(s, ep, d, e)
            return True
        t_next = _INF
        if a < ep.num_tasks_E[e]:
            t_next = min(t_next, ep.arrival_ET[e, a])
        if d.next_churn_E[e] < ep.num_churn_E[e]:
            t_next = min(t_next, ep.churn_t_EK[e, d.next_churn_E[e]])
        if waiting:
            for n in range(num_nodes):
                t_next = min(t_next, d.next_change_EN[e, n])
        if math.isinf(t_next):
            d.task_E[e] = -1
            return waiting == 0
        t = max(t, t_next)


# --- entry points ---------------------------------------------------------------------------


@numba.njit(cache=True)
def init_envs(s: Static, ep: Episode, d: Dyn, envs: np.ndarray) -> int:
    """``EnvState.__init__`` then ``advance`` for each env in ``envs`` (arrays already reset).

    Returns the index into ``envs`` of an env whose pods would wait forever, or -1.
    """
    num_models = d.head_EM.shape[1]
    order_M = np.zeros(num_models, dtype=np.int64)
    evict_M = np.zeros(num_models, dtype=np.bool_)
    p_loaded_M = np.zeros(num_models, dtype=np.bool_)
    p_t_M = np.zeros(num_models)
    p_q_M = np.zeros(num_models, dtype=np.int64)
    for i in range(envs.shape[0]):
        e = envs[i]
        for n in range(d.cordoned_EN.shape[1]):
            _restart(s, ep, d, e, n, 0.0)
            _refresh(s, ep, d, e, n, order_M, evict_M, p_loaded_M, p_t_M, p_q_M)
        if not _advance(s, ep, d, e, order_M, evict_M, p_loaded_M, p_t_M, p_q_M):
            return i
    return -1


@numba.njit(cache=True)
def _step_env(s: Static, ep: Episode, d: Dyn, e: int, n: int, delay_E: np.ndarray) -> int:
    """Place env ``e``'s pending pod on node ``n`` and advance it; returns a status.

    ``GROW`` when the node's buffer is full (nothing of env ``e`` changed), -1 when its
    pods would wait forever.
    """
    num_models = d.head_EM.shape[1]
    order_M = np.zeros(num_models, dtype=np.int64)
    evict_M = np.zeros(num_models, dtype=np.bool_)
    p_loaded_M = np.zeros(num_models, dtype=np.bool_)
    p_t_M = np.zeros(num_models)
    p_q_M = np.zeros(num_models, dtype=np.int64)
    task = d.task_E[e]
    if d.q_hi_EN[e, n] == d.b_start_ENQ.shape[2] and not _compact(s, d, e, n):
        return GROW
    finish = _place_true(s, ep, d, e, n, order_M, evict_M)
    _refresh(s, ep, d, e, n, order_M, evict_M, p_loaded_M, p_t_M, p_q_M)
    delay_E[e] = finish - ep.arrival_ET[e, task]
    if not _advance(s, ep, d, e, order_M, evict_M, p_loaded_M, p_t_M, p_q_M):
        return -1
    return OK


@numba.njit(cache=True)
def step_envs(s: Static, ep: Episode, d: Dyn, actions_E: np.ndarray, todo_E: np.ndarray,
              delay_E: np.ndarray, status_E: np.ndarray) -> None:
    """Place env ``e``'s pending pod on ``actions_E[e]`` and advance it, where ``todo_E[e]``.

    ``status_E[e]``: ``OK`` (``todo_E[e]`` cleared), ``GROW`` (env ``e``'s node buffer is
    full and nothing of it changed: grow ``Q`` and call again) or -1 (its pods would wait
    forever). :func:`step_envs_parallel` does the same on numba's threads.
    """
    for e in range(d.task_E.shape[0]):
        status_E[e] = _step_todo(s, ep, d, e, actions_E, todo_E, delay_E)


@numba.njit(cache=True, parallel=True)
def step_envs_parallel(s: Static, ep: Episode, d: Dyn, actions_E: np.ndarray,
                       todo_E: np.ndarray, delay_E: np.ndarray, status_E: np.ndarray) -> None:
    """:func:`step_envs` in parallel over envs (they share no state)."""
    for e in numba.prange(d.task_E.shape[0]):
        status_E[e] = _step_todo(s, ep, d, e, actions_E, todo_E, delay_E)


@numba.njit(cache=True)
def _step_todo(s: Static, ep: Episode, d: Dyn, e: int, actions_E: np.ndarray,
               todo_E: np.ndarray, delay_E: np.ndarray) -> int:
    if not todo_E[e] or d.task_E[e] < 0:
        return OK
    status = _step_env(s, ep, d, e, actions_E[e], delay_E)
    if status == OK:
        todo_E[e] = False
    return status


@numba.njit(cache=True)
def _popularity(d: Dyn, e: int, pop_M: np.ndarray) -> None:
    """Share of each model among the requests of the window (uniform when it is empty)."""
    num_models = pop_M.shape[0]
    total = 0.0
    for k in range(num_models):
        total += float(d.win_count_EM[e, k])
    for k in range(num_models):
        pop_M[k] = d.win_count_EM[e, k] / total if total > 0 else 1.0 / num_models


@numba.njit(cache=True)
def _est_delay(s: Static, d: Dyn, e: int, n: int, m: int, steps: float, now: float,
               arrival: float) -> float:
    """``DecisionView.expected_delay_EN`` of one node (``ClusterSimulator._view``)."""
    if not s.can_run_NM[n, m]:
        return _INF
    service = _service(s.overhead_s_NM, s.s_per_step_NM, s.load_s_NM, n, m, steps,
                       d.cold_ENM[e, n, m]) * d.factor_ENM[e, n, m]
    return max(now, d.threshold_ENM[e, n, m]) + service - arrival


@numba.njit(cache=True)
def _evict_cost(s: Static, d: Dyn, e: int, n: int, m: int, pop_M: np.ndarray) -> float:
    """``DecisionView.evict_cost_EN`` of one node."""
    cost = 0.0
    for k in range(pop_M.shape[0]):
        if d.evicts_ENMK[e, n, m, k]:
            est = (s.load_s_NM[n, k] if s.can_run_NM[n, k] else 0.0) * d.factor_ENM[e, n, k]
            cost += pop_M[k] * est
    return cost


@numba.njit(cache=True)
def _mask(s: Static, d: Dyn, e: int, n: int, m: int) -> bool:
    """``DecisionView.node_mask_EN`` of one node."""
    return _schedulable(s.can_run_NM[n, m], d.cordoned_EN[e, n], d.req_cpu_EN[e, n],
                        d.req_mem_EN[e, n], s.pod_cpu_M[m], s.pod_mem_M[m], s.cpu_N[n],
                        s.memory_N[n])


@numba.njit(cache=True)
def fill_view(s: Static, ep: Episode, d: Dyn, mask_EN: np.ndarray,
              delay_EN: np.ndarray, cold_EN: np.ndarray, load_EN: np.ndarray,
              evict_cost_EN: np.ndarray, capacity_EN: np.ndarray, queue_EN: np.ndarray,
              requested_EN: np.ndarray, pop_EM: np.ndarray) -> None:
    """The arrays of ``ClusterSimulator._view`` for every active env (same operations)."""
    num_nodes = d.cordoned_EN.shape[1]
    for e in range(d.task_E.shape[0]):
        task = d.task_E[e]
        if task < 0:
            mask_EN[e] = False
            continue
        now = d.now_E[e]
        _popularity(d, e, pop_EM[e])
        m = ep.model_ET[e, task]
        steps = float(ep.steps_ET[e, task])
        arrival = ep.arrival_ET[e, task]
        for n in range(num_nodes):
            can = s.can_run_NM[n, m]
            f = d.factor_ENM[e, n, m]
            delay_EN[e, n] = _est_delay(s, d, e, n, m, steps, now, arrival)
            cold_EN[e, n] = d.cold_ENM[e, n, m]
            load_EN[e, n] = s.load_s_NM[n, m] * f if can else _INF
            evict_cost_EN[e, n] = _evict_cost(s, d, e, n, m, pop_EM[e])
            capacity_EN[e, n] = s.speed_NM[n, m]
            queue_EN[e, n] = d.queue_len_EN[e, n]
            cpu = d.req_cpu_EN[e, n] + s.pod_cpu_M[m]
            mem = d.req_mem_EN[e, n] + s.pod_mem_M[m]
            requested_EN[e, n] = min(0.5 * (cpu / s.cpu_N[n] + mem / s.memory_N[n]), 1.0)
            mask_EN[e, n] = _mask(s, d, e, n, m)


# --- whole episodes under a cost heuristic (greedy, residency-greedy) -----------------------


@numba.njit(cache=True)
def _play_env(s: Static, ep: Episode, d: Dyn, e: int, amortise: float, evict: float,
              noise_SEN: np.ndarray, done_E: np.ndarray, delay_SE: np.ndarray) -> int:
    """Play env ``e`` for the steps ``done_E[e]..S-1`` of this batch; returns a status.

    At each step the node is the one ``baselines.ResidencyGreedyPolicy.act`` (``amortise``,
    ``evict``; greedy at 0, 0) picks from ``fill_view``'s arrays: the smallest
    ``expected_delay - amortise * popularity * cold * load_s + evict * evict_cost`` over the
    mask, ties to the largest ``noise_SEN[step, e]`` (``_argmin_random_ties``), then the step
    of ``step_envs``. ``done_E[e]`` counts the steps done (``S`` once the episode ended);
    ``GROW`` leaves it at the step that found its node's buffer full.
    """
    num_nodes = d.cordoned_EN.shape[1]
    num_models = d.head_EM.shape[1]
    order_M = np.zeros(num_models, dtype=np.int64)
    evict_M = np.zeros(num_models, dtype=np.bool_)
    p_loaded_M = np.zeros(num_models, dtype=np.bool_)
    p_t_M = np.zeros(num_models)
    p_q_M = np.zeros(num_models, dtype=np.int64)
    pop_M = np.zeros(num_models)
    cost_N = np.zeros(num_nodes)
    mask_N = np.zeros(num_nodes, dtype=np.bool_)
    residency = amortise != 0.0 or evict != 0.0
    for k in range(done_E[e], noise_SEN.shape[0]):
        task = d.task_E[e]
        if task < 0:
            done_E[e] = noise_SEN.shape[0]
            return OK
        now = d.now_E[e]
        m = ep.model_ET[e, task]
        steps = float(ep.steps_ET[e, task])
        arrival = ep.arrival_ET[e, task]
        if residency:
            _popularity(d, e, pop_M)
        best = _INF
        for n in range(num_nodes):
            mask_N[n] = _mask(s, d, e, n, m)
            cost = _est_delay(s, d, e, n, m, steps, now, arrival)
            if residency:  # baselines.residency_cost, operation for operation
                can = s.can_run_NM[n, m]
                load = s.load_s_NM[n, m] * d.factor_ENM[e, n, m] if can else _INF
                if not math.isfinite(load):
                    load = 0.0
                cost -= amortise * pop_M[m] * (load if d.cold_ENM[e, n, m] else 0.0)
                cost += evict * _evict_cost(s, d, e, n, m, pop_M)
            cost_N[n] = cost
            if mask_N[n] and cost < best:
                best = cost
        pick = -1
        top = -_INF
        for n in range(num_nodes):
            if mask_N[n] and cost_N[n] <= best and noise_SEN[k, e, n] > top:
                top = noise_SEN[k, e, n]
                pick = n
        if pick < 0:  # a NaN cost: the first node of the mask, as argmax would
            for n in range(num_nodes):
                if mask_N[n]:
                    pick = n
                    break
        if d.q_hi_EN[e, pick] == d.b_start_ENQ.shape[2] and not _compact(s, d, e, pick):
            done_E[e] = k
            return GROW
        finish = _place_true(s, ep, d, e, pick, order_M, evict_M)
        _refresh(s, ep, d, e, pick, order_M, evict_M, p_loaded_M, p_t_M, p_q_M)
        delay_SE[k, e] = finish - arrival
        done_E[e] = k + 1
        if not _advance(s, ep, d, e, order_M, evict_M, p_loaded_M, p_t_M, p_q_M):
            return -1
    return OK


@numba.njit(cache=True)
def play_envs(s: Static, ep: Episode, d: Dyn, amortise: float, evict: float,
              noise_SEN: np.ndarray, done_E: np.ndarray, delay_SE: np.ndarray,
              status_E: np.ndarray) -> None:
    """:func:`_play_env` for every env.

    ``status_E[e]`` is ``OK``, ``GROW`` (grow ``Q`` and call again: ``done_E`` resumes every
    env) or -1 (pods wait forever). :func:`play_envs_parallel` does the same on numba's
    threads.
    """
    for e in range(d.task_E.shape[0]):
        status_E[e] = _play_env(s, ep, d, e, amortise, evict, noise_SEN, done_E, delay_SE)


@numba.njit(cache=True, parallel=True)
def play_envs_parallel(s: Static, ep: Episode, d: Dyn, amortise: float, evict: float,
                       noise_SEN: np.ndarray, done_E: np.ndarray, delay_SE: np.ndarray,
                       status_E: np.ndarray) -> None:
    """:func:`play_envs` in parallel over envs (they share no state: each thread its rows)."""
    for e in numba.prange(d.task_E.shape[0]):
        status_E[e] = _play_env(s, ep, d, e, amortise, evict, noise_SEN, done_E, delay_SE)


# --- the rollout planner's lookahead (ladts_policy.rollout) ---------------------------------


@numba.njit(cache=True)
def _proj_place(s: Static, n: int, m: int, steps: int, f: float, t: float,
                loaded_NM: np.ndarray, t_NM: np.ndarray, q_NM: np.ndarray, seq_N: np.ndarray,
                tail_N: np.ndarray, order_M: np.ndarray, evict_M: np.ndarray) -> float:
    """``NodeServer.place`` on a one-slot projection at ``t``; returns the finish time.

    The pod starts at ``max(t, tail)`` (after the last start and the last finish); a cold
    start evicts LRU-first until the model fits (no model is busy then).
    """
    start = max(t, tail_N[n])
    cold = not loaded_NM[n, m]
    if cold:
        _make_room(s.vram_gib_N, s.memory_gib_NM, n, s.memory_gib_NM[n, m], loaded_NM[n],
                   t_NM[n], q_NM[n], order_M, evict_M)
        for k in range(evict_M.shape[0]):
            if evict_M[k]:
                loaded_NM[n, k] = False
    finish = start + 1.0 * f * _service(s.overhead_s_NM, s.s_per_step_NM, s.load_s_NM, n, m,
                                        steps, cold)
    seq_N[n] += 1
    loaded_NM[n, m] = True
    t_NM[n, m] = start
    q_NM[n, m] = seq_N[n]
    tail_N[n] = finish
    return finish


@numba.njit(cache=True)
def rollout_scores(s: Static, ep: Episode, d: Dyn, e: int, cand_C: np.ndarray,
                   fut_t_K: np.ndarray, fut_m_K: np.ndarray, fut_steps_K: np.ndarray,
                   score_C: np.ndarray) -> None:
    """``RolloutPolicy._roll`` of env ``e`` for each candidate node, on one sampled future.

    From every node's projection (``proj_*``), the pending pod goes to the candidate, then
    each sampled request ``(fut_t_K, fut_m_K, fut_steps_K)`` to the ready node (not
    cordoned, can run it) with the earliest estimated finish (first on ties);
    ``score_C[c]`` is the summed delay of the pod and the requests.
    """
    num_nodes = d.cordoned_EN.shape[1]
    num_models = d.head_EM.shape[1]
    order_M = np.zeros(num_models, dtype=np.int64)
    evict_M = np.zeros(num_models, dtype=np.bool_)
    loaded_NM = np.empty((num_nodes, num_models), dtype=np.bool_)
    t_NM = np.empty((num_nodes, num_models))
    q_NM = np.empty((num_nodes, num_models), dtype=np.int64)
    seq_N = np.empty(num_nodes, dtype=np.int64)
    tail_N = np.empty(num_nodes)
    task = d.task_E[e]
    m0 = ep.model_ET[e, task]
    steps0 = ep.steps_ET[e, task]
    now = d.now_E[e]
    for c in range(cand_C.shape[0]):
        loaded_NM[:] = d.proj_loaded_ENM[e]
        t_NM[:] = d.proj_t_ENM[e]
        q_NM[:] = d.proj_q_ENM[e]
        seq_N[:] = d.proj_seq_EN[e]
        tail_N[:] = d.proj_tail_EN[e]
        first = cand_C[c]
        finish = _proj_place(s, first, m0, steps0, d.factor_ENM[e, first, m0], now, loaded_NM,
                             t_NM, q_NM, seq_N, tail_N, order_M, evict_M)
        total = finish - ep.arrival_ET[e, task]
        for k in range(fut_t_K.shape[0]):
            t = fut_t_K[k]
            m = fut_m_K[k]
            steps = fut_steps_K[k]
            best = _INF
            best_node = -1
            for n in range(num_nodes):
                if d.cordoned_EN[e, n] or not s.can_run_NM[n, m]:
                    continue
                start = max(t, tail_N[n])
                cold = not loaded_NM[n, m]
                finish = start + 1.0 * d.factor_ENM[e, n, m] * _service(
                    s.overhead_s_NM, s.s_per_step_NM, s.load_s_NM, n, m, steps, cold)
                if finish < best:
                    best = finish
                    best_node = n
            if best_node >= 0:
                _proj_place(s, best_node, m, steps, d.factor_ENM[e, best_node, m], t,
                            loaded_NM, t_NM, q_NM, seq_N, tail_N, order_M, evict_M)
                total += best - t
        score_C[c] = total
