# mypy: disable-error-code="no-untyped-call,no-any-return"
"""Compiled feature encoding of every environment of the vectorised ``k8s-edge`` simulator.

One kernel computes, per environment, the fields of
``VecClusterSimulator.snapshot_batch`` (the same formulas as
``ClusterSimulator.snapshot``) and encodes them as :func:`ladts_policy.features.encode` does:
each raw value divided by its scale, non-finite values set to 0, ``log1p`` where the contract
says, then cast to float32. Which raw value feeds which column, the scales and the
transforms come from :data:`ladts_policy.contract.SPEC` (:func:`layout`), so the contract
stays the one definition. ``tests/policy/test_cluster_vec.py`` checks the output against
``encode`` on the reference simulator's snapshots.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from ladts_policy.contract import MODEL_VOCAB, SPEC
from ladts_policy.sim.dynamics.vec_dynamics import _service

NODE_RAW = ("present", "ready", "fits", "resident", "speed", "service_s", "load_s", "vram_gib",
            "vram_free_gib", "queue_len", "running", "backlog_s", "concurrency",
            "requested_fraction", "est_delay_s", "metrics_age_s", "memory_gib", "free_slots",
            "evicted_models", "evict_popularity")
"""Raw per-node values in kernel order; ``loaded=<model>`` columns follow (vocabulary order)."""

TASK_RAW = ("steps", "input_mbit", "wait_s", "best_service_s", "popularity")
"""Raw task values in kernel order; ``model=<model>`` one-hot columns follow."""

GLOBAL_RAW = ("nodes_present", "ready_fraction", "fits_fraction", "mean_queue_len",
              "busy_fraction", "pending", "holders")
"""Raw global values in kernel order."""


def layout() -> dict[str, np.ndarray]:
    """Column sources, scales and ``log1p`` flags of the node, task and global groups."""
    out: dict[str, np.ndarray] = {}
    for key, defs, raw, prefix in (("node", SPEC.node, NODE_RAW, "loaded="),
                                   ("task", SPEC.task, TASK_RAW, "model="),
                                   ("global", SPEC.glob, GLOBAL_RAW, "")):
        src = []
        for d in defs:
            if prefix and d.name.startswith(prefix):
                src.append(len(raw) + MODEL_VOCAB.index(d.name[len(prefix):]))
            else:
                src.append(raw.index(d.name))
        out[f"{key}_src"] = np.array(src, dtype=np.int64)
        out[f"{key}_scale"] = np.array([d.scale for d in defs], dtype=np.float64)
        out[f"{key}_log1p"] = np.array([d.transform == "log1p" for d in defs])
    return out


@numba.njit(cache=True)
def _norm(raw: float, scale: float, log1p: bool) -> float:
    """``features._normalise`` of one value."""
    x = raw / scale
    if not math.isfinite(x):
        x = 0.0
    if log1p:
        x = math.log1p(max(x, 0.0))
    return x


@numba.njit(cache=True)
def encode_envs(
        s: Any, ep: Any, d: Any, input_mbit_ET: np.ndarray, vocab_col_M: np.ndarray,
        lay_node_src: np.ndarray, lay_node_scale: np.ndarray, lay_node_log1p: np.ndarray,
        lay_task_src: np.ndarray, lay_task_scale: np.ndarray, lay_task_log1p: np.ndarray,
        lay_glob_src: np.ndarray, lay_glob_scale: np.ndarray, lay_glob_log1p: np.ndarray,
        rows_ESF: np.ndarray, task_ET: np.ndarray, global_EG: np.ndarray,
        mask_ES: np.ndarray) -> None:
    """Encode every active environment's pending decision (rows zeroed first; inactive stay 0).

    :func:`encode_envs_parallel` does the same on numba's threads.
    """
    rows_ESF[:] = 0.0
    task_ET[:] = 0.0
    global_EG[:] = 0.0
    mask_ES[:] = False
    for e in range(d.task_E.shape[0]):
        _encode_env(e, s, ep, d, input_mbit_ET, vocab_col_M, lay_node_src, lay_node_scale,
                    lay_node_log1p, lay_task_src, lay_task_scale, lay_task_log1p, lay_glob_src,
                    lay_glob_scale, lay_glob_log1p, rows_ESF, task_ET, global_EG, mask_ES)


@numba.njit(cache=True, parallel=True)
def encode_envs_parallel(
        s: Any, ep: Any, d: Any, input_mbit_ET: np.ndarray, vocab_col_M: np.ndarray,
        lay_node_src: np.ndarray, lay_node_scale: np.ndarray, lay_node_log1p: np.ndarray,
        lay_task_src: np.ndarray, lay_task_scale: np.ndarray, lay_task_log1p: np.ndarray,
        lay_glob_src: np.ndarray, lay_glob_scale: np.ndarray, lay_glob_log1p: np.ndarray,
        rows_ESF: np.ndarray, task_ET: np.ndarray, global_EG: np.ndarray,
        mask_ES: np.ndarray) -> None:
    """:func:`encode_envs` in parallel over envs (each writes its own rows)."""
    rows_ESF[:] = 0.0
    task_ET[:] = 0.0
    global_EG[:] = 0.0
    mask_ES[:] = False
    for e in numba.prange(d.task_E.shape[0]):
        _encode_env(e, s, ep, d, input_mbit_ET, vocab_col_M, lay_node_src, lay_node_scale,
                    lay_node_log1p, lay_task_src, lay_task_scale, lay_task_log1p, lay_glob_src,
                    lay_glob_scale, lay_glob_log1p, rows_ESF, task_ET, global_EG, mask_ES)


@numba.njit(cache=True)
def _encode_env(
        e: int, s: Any, ep: Any, d: Any, input_mbit_ET: np.ndarray, vocab_col_M: np.ndarray,
        lay_node_src: np.ndarray, lay_node_scale: np.ndarray, lay_node_log1p: np.ndarray,
        lay_task_src: np.ndarray, lay_task_scale: np.ndarray, lay_task_log1p: np.ndarray,
        lay_glob_src: np.ndarray, lay_glob_scale: np.ndarray, lay_glob_log1p: np.ndarray,
        rows_ESF: np.ndarray, task_ET: np.ndarray, global_EG: np.ndarray,
        mask_ES: np.ndarray) -> None:
    """Encode env ``e``'s pending decision into its rows (nothing when it has none)."""
    num_nodes = d.cordoned_EN.shape[1]
    num_models = d.head_EM.shape[1]
    vocab = int(lay_task_src.shape[0]) - 5
    interval = s.scrape_interval_s
    tol = 1e-9
    task = d.task_E[e]
    if task < 0:
        return
    raw_N = np.zeros(20 + vocab)
    task_raw = np.zeros(5 + vocab)
    glob_raw = np.zeros(7)
    pop_M = np.zeros(num_models)
    m = ep.model_ET[e, task]
    steps = ep.steps_ET[e, task]
    now = d.now_E[e]
    arrival = ep.arrival_ET[e, task]
    total = 0.0
    for k in range(num_models):
        total += float(d.win_count_EM[e, k])
    for k in range(num_models):
        pop_M[k] = d.win_count_EM[e, k] / total if total > 0 else 1.0 / num_models
    n_present = 0
    n_ready = 0
    n_mask = 0
    queue_sum = 0.0
    busy = 0
    holders = 0
    best = math.inf
    for n in range(num_nodes):
        can = s.can_run_NM[n, m]
        cordoned = d.cordoned_EN[e, n]
        f = d.factor_ENM[e, n, m]
        cold = d.cold_ENM[e, n, m]
        queue = float(d.queue_len_EN[e, n])
        lo, hi = d.q_pod_EN[e, n], d.q_hi_EN[e, n]
        running = 0.0
        if lo < hi and d.b_start_ENQ[e, n, lo] <= now and d.b_finish_ENQ[e, n, lo] > now:
            running = 1.0
        schedulable = (can and not cordoned
                       and d.req_cpu_EN[e, n] + s.pod_cpu_M[m] <= s.cpu_N[n] + tol
                       and d.req_mem_EN[e, n] + s.pod_mem_M[m] <= s.memory_N[n] + tol)
        present = (not cordoned) or queue > 0
        ready = schedulable or (not cordoned and not can)
        service = f * _service(s.overhead_s_NM, s.s_per_step_NM, s.load_s_NM, n, m, steps,
                               False)
        load = f * s.load_s_NM[n, m]
        used = 0.0
        for k in range(num_models):
            if d.observed_ENM[e, n, k]:
                used += s.memory_gib_NM[n, k]
        evicted = 0.0
        evict_pop = 0.0
        for k in range(num_models):
            if d.evicts_ENMK[e, n, m, k]:
                evicted += 1.0
                evict_pop += pop_M[k]
        raw_N[0] = 1.0 if present else 0.0
        raw_N[1] = 1.0 if ready else 0.0
        raw_N[2] = 1.0 if can else 0.0
        raw_N[3] = 1.0 if d.observed_ENM[e, n, m] else 0.0
        raw_N[4] = s.speed_NM[n, m] / f if can else 0.0
        raw_N[5] = service if can else math.inf
        raw_N[6] = load
        raw_N[7] = s.vram_gib_N[n]
        raw_N[8] = max(s.vram_gib_N[n] - used, 0.0)
        raw_N[9] = queue
        raw_N[10] = running
        raw_N[11] = max(d.busy_until_EN[e, n] - now, 0.0)
        raw_N[12] = 1.0  # one pod at a time (the vectorised scenarios)
        raw_N[13] = min(0.5 * (d.req_cpu_EN[e, n] / s.cpu_N[n]
                               + d.req_mem_EN[e, n] / s.memory_N[n]), 1.0)
        start = max(now, d.threshold_ENM[e, n, m])
        raw_N[14] = (start + service + (load if cold else 0.0) - arrival) if can else math.inf
        raw_N[15] = (now - ep.scrape_phase_EN[e, n]) % interval if interval > 0.0 else 0.0
        raw_N[16] = s.memory_gib_NM[n, m]
        raw_N[17] = max(1.0 - running, 0.0)
        raw_N[18] = evicted
        raw_N[19] = evict_pop
        for v in range(vocab):
            raw_N[20 + v] = 0.0
        for k in range(num_models):
            if d.observed_ENM[e, n, k]:
                raw_N[20 + vocab_col_M[k]] = 1.0
        if present:
            for c in range(lay_node_src.shape[0]):
                rows_ESF[e, n, c] = _norm(raw_N[lay_node_src[c]], lay_node_scale[c],
                                          lay_node_log1p[c])
        mask = present and ready and can
        mask_ES[e, n] = mask
        if present:
            n_present += 1
            queue_sum += queue
            if running > 0:
                busy += 1
            if ready:
                n_ready += 1
                if d.observed_ENM[e, n, m]:
                    holders += 1
        if mask:
            n_mask += 1
            if raw_N[5] < best:
                best = raw_N[5]
    task_raw[0] = float(steps)
    task_raw[1] = input_mbit_ET[e, task]
    task_raw[2] = now - arrival
    task_raw[3] = best
    task_raw[4] = pop_M[m]
    for v in range(vocab):
        task_raw[5 + v] = 0.0
    task_raw[5 + vocab_col_M[m]] = 1.0
    for c in range(lay_task_src.shape[0]):
        task_ET[e, c] = _norm(task_raw[lay_task_src[c]], lay_task_scale[c], lay_task_log1p[c])
    denominator = max(n_present, 1)
    pending = 1
    for k in range(num_models):
        pending += d.tail_EM[e, k] - d.head_EM[e, k]
    glob_raw[0] = float(n_present)
    glob_raw[1] = n_ready / denominator
    glob_raw[2] = n_mask / max(n_ready, 1)
    glob_raw[3] = queue_sum / denominator
    glob_raw[4] = busy / denominator
    glob_raw[5] = float(pending)
    glob_raw[6] = float(holders)
    for c in range(lay_glob_src.shape[0]):
        global_EG[e, c] = _norm(glob_raw[lay_glob_src[c]], lay_glob_scale[c],
                                lay_glob_log1p[c])
