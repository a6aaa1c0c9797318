"""An independent reference model of one node's queue, written from docs/scenarios.md.

It walks time forward pod by pod, with no caches, sorted lists or thresholds: at each
candidate time it counts the running pods, checks the model cache, and evicts idle models
least-recently-used first, exactly as the documented discipline says. ``NodeServer`` must
agree with it on every placement (tests/policy/test_node_oracle.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ladts_policy.sim.config.cluster_config import ModelTiming


@dataclass(frozen=True)
class Request:
    """One pod placed on the node."""

    placed_s: float
    model: str
    steps: int
    factor: float = 1.0


@dataclass(frozen=True)
class Run:
    """When the reference model runs a pod."""

    start_s: float
    finish_s: float
    model: str
    cold: bool


def reference_schedule(
    requests: Sequence[Request],
    *,
    concurrency: int,
    vram_gib: float,
    timings: Mapping[str, ModelTiming],
    resident: Sequence[str] = (),
    share_slowdown: float = 1.0,
) -> list[Run]:
    """Start and finish of every request, in placement order (placed times non-decreasing)."""
    loaded: dict[str, float] = {}  # model -> time of its last use; dict order breaks ties
    ready: dict[str, float] = {}
    used = 0.0
    for model in resident:
        mem = timings[model].memory_gib
        if used + mem <= vram_gib:
            used += mem
            loaded[model] = 0.0
            ready[model] = 0.0
    runs: list[Run] = []
    previous_start = -math.inf
    for req in requests:
        need = timings[req.model].memory_gib
        t = max(req.placed_s, previous_start)
        while True:
            running = [r for r in runs if r.start_s <= t < r.finish_s]
            if len(running) < concurrency:
                if req.model in loaded:
                    start, cold = max(t, ready[req.model]), False
                    break
                busy = {r.model for r in running}
                free = vram_gib - sum(timings[m].memory_gib for m in loaded)
                victims = []
                for model in sorted(loaded, key=lambda m: loaded[m]):
                    if free >= need:
                        break
                    if model not in busy:
                        victims.append(model)
                        free += timings[model].memory_gib
                if free >= need:
                    for model in victims:
                        del loaded[model]
                    start, cold = t, True
                    break
            t = min(r.finish_s for r in runs if r.finish_s > t)
        sharing = sum(1 for r in runs if r.start_s <= start < r.finish_s)
        slowdown = 1.0 + share_slowdown * sharing
        timing = timings[req.model]
        load = timing.load_s if cold else 0.0
        run = slowdown * req.factor * (load + timing.overhead_s + req.steps * timing.s_per_step)
        if cold:
            ready[req.model] = start + slowdown * req.factor * timing.load_s
        loaded.pop(req.model, None)
        loaded[req.model] = start
        runs.append(Run(start, start + run, req.model, cold))
        previous_start = start
    return runs
