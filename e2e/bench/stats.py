"""Statistics and checks of emulated runs (pure): delays, seed intervals, trace replay, validity.

Trace replay: the recorded placements (node, bind time, model, steps, in placement order) go
through **fresh** ``NodeServer``\\ s; the emulated start and finish must come out exactly. Any
residual is an artefact of the emulation (bookkeeping, serialisation, a rebuild), never of the
service model, which both sides share.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from e2e.emulation.records import SUCCEEDED, PodRecord
from ladts_policy.evaluate import t_quantile_975
from ladts_policy.sim.dynamics.node_service import NodeServer, ServiceTask


def delay_stats(values: Sequence[float]) -> dict[str, float]:
    """Count, mean, p50, p95, p99, max (NaN when empty)."""
    arr = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if arr.size == 0:
        return {"n": 0, "mean": math.nan, "p50": math.nan, "p95": math.nan, "p99": math.nan,
                "max": math.nan}
    return {
        "n": int(arr.size),
        "mean": float(arr.mean()),
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "p99": float(np.percentile(arr, 99)),
        "max": float(arr.max()),
    }


def seed_interval(values: Sequence[float]) -> dict[str, float]:
    """Mean over seeds and its 95% Student-t half-width (NaN with fewer than 2 seeds), as
    ``ladts_policy.evaluate`` computes it."""
    arr = np.asarray(values, dtype=float)
    mean = float(arr.mean()) if arr.size else math.nan
    if arr.size < 2:
        return {"mean": mean, "half_width": math.nan, "seeds": int(arr.size)}
    half = t_quantile_975(arr.size - 1) * float(arr.std(ddof=1)) / math.sqrt(arr.size)
    return {"mean": mean, "half_width": half, "seeds": int(arr.size)}


@dataclass(frozen=True)
class Replay:
    """Outcome of replaying the recorded placements through fresh servers."""

    pods: int
    """Placements replayed."""
    mismatches: int
    """Pods whose replayed start or finish differs from the emulated one at all."""
    max_abs_residual_s: float
    """Largest |emulated − replayed| over starts and finishes, cluster seconds."""


def trace_replay(
    records: Sequence[PodRecord],
    server_factory: Callable[[str], NodeServer],
    requests_of: Mapping[str, tuple[float, float]],
) -> Replay:
    """Replay every placed record (any outcome but rejected) in placement order.

    Args:
        records: The emulated run's records.
        server_factory: Fresh server of a node by name.
        requests_of: Model -> (cpu, memory GiB) requests (as the controller queued them).
    """
    servers: dict[str, NodeServer] = {}
    mismatches, worst, n = 0, 0.0, 0
    for rec in sorted(records, key=lambda r: r.seq):
        if rec.outcome not in (SUCCEEDED, "") or rec.replaced:
            continue
        server = servers.setdefault(rec.node, server_factory(rec.node))
        cpu, mem = requests_of.get(rec.model, (0.0, 0.0))
        placed = server.place(ServiceTask(rec.model, rec.steps, cpu, mem), rec.bind_s)
        residual = max(abs(placed.start_s - rec.start_s), abs(placed.finish_s - rec.finish_s))
        mismatches += residual != 0.0 or placed.cold != rec.cold
        worst = max(worst, residual)
        n += 1
    return Replay(n, mismatches, worst)


def run_problems(summary: Mapping[str, object]) -> list[str]:
    """Why a run is invalid (empty when valid): lost, unbound, errored or cut runs."""
    problems = []
    for key, what in (
        ("lost", "pods lost (created, never bound nor pending)"),
        ("unbound", "pods never bound"),
        ("rejected", "pods rejected by their node"),
        ("removed", "pods removed before finishing"),
        ("unfinished", "pods not finished (censored: their delays are missing)"),
    ):
        count = int(summary.get(key, 0) or 0)  # type: ignore[call-overload]
        if count:
            problems.append(f"{count} {what}")
    errors = summary.get("errors") or []
    if errors:
        problems.append(f"controller errors: {list(errors)[:5]}")  # type: ignore[call-overload]
    if summary.get("cut"):
        problems.append(f"run cut at the wall bound: {summary.get('cut')}")
    return problems
