"""The serving process's garbage-collector policy: few objects for each collector pass.

CPython's cyclic collector runs on the thread that allocates, here the event loop's: a
pass stops every request behind it. A pass over generation ``g`` visits every reference
held by the objects of generations ``0..g``, so its length is what those generations hold
(docs/serving.md, "Garbage collection", has the measurements at 500 nodes):

- :func:`freeze` after the state is built: ``gc.collect()`` then ``gc.freeze()`` moves
  every object alive then (modules, the state store, the policy runtime's Python side) to
  the permanent generation, which no automatic pass scans, so a full pass scans only what
  came after. Frozen objects that die later are still freed by reference counting; only a
  reference cycle among them waits for the next freeze.
- :class:`GcKeeper` freezes again every ``interval_s``: a collection of what is not frozen
  (about 1 ms at 500 nodes), then the freeze, so what relists and watch events add to the
  state does not accumulate in generation 2, whose automatic passes would scan it again
  and again. Every :data:`FULL_EVERY` intervals it unfreezes first, so the collection is a
  full one (about 25 ms of CPU at 500 nodes, once an hour by default) and reference cycles
  among frozen objects that died are freed too. It times every pass into the
  ``ladts_gc_pause_seconds{generation}`` histogram of /metrics, so a collector pause in the
  latency tail is visible.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

from prometheus_client import Histogram

from ladts_operator.telemetry import Telemetry

log = logging.getLogger(__name__)


FULL_EVERY = 12
"""Every this many periodic freezes, the frozen objects are collected too (a full pass)."""


def freeze(*, full: bool = True) -> int:
    """Collect, then move every surviving object to the permanent generation.

    Args:
        full: unfreeze first, so objects frozen earlier are collected too (cycles among
            them included); False collects only what is not frozen (much shorter).

    Returns:
        The number of objects frozen (``gc.get_freeze_count()``).
    """
    if full:
        gc.unfreeze()
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class GcKeeper:
    """Freezes the long-lived heap periodically and times the collector's passes."""

    def __init__(self, telemetry: Telemetry, *, interval_s: float) -> None:
        """Time passes into ``telemetry.gc_pause``; ``interval_s`` <= 0: freeze only on demand."""
        self.telemetry = telemetry
        self.interval_s = interval_s
        self._started: float | None = None
        self._installed = False
        self._pause_by_generation: dict[str, Histogram] = {}
        self.freezes = 0
        """Freezes done so far (the first, and every FULL_EVERY-th, is a full one)."""

    def install(self) -> None:
        """Start timing the collector's passes (idempotent)."""
        if not self._installed:
            # Children made here, not in the callback: ``labels()`` takes the metric's
            # non-reentrant lock, which a collection can interrupt (``/metrics`` copies the
            # children under it); a child's ``observe`` allocates nothing the collector tracks.
            self._pause_by_generation = {
                str(g): self.telemetry.gc_pause.labels(generation=str(g)) for g in range(3)}
            gc.callbacks.append(self._on_gc)
            self._installed = True

    def uninstall(self) -> None:
        """Stop timing (the callback is removed)."""
        if self._installed:
            gc.callbacks.remove(self._on_gc)
            self._installed = False

    def freeze(self) -> int:
        """:func:`freeze`, full on the first call and every :data:`FULL_EVERY`-th; logged.

        Returns:
            The frozen object count.
        """
        full = self.freezes % FULL_EVERY == 0
        self.freezes += 1
        start = time.perf_counter()
        frozen = freeze(full=full)
        log.info("gc: %d objects frozen in %.1f ms (%s collection)", frozen,
                 1e3 * (time.perf_counter() - start), "full" if full else "unfrozen-only")
        return frozen

    async def run(self) -> None:
        """Freeze every ``interval_s`` until cancelled (nothing when ``interval_s`` <= 0)."""
        if self.interval_s <= 0:
            return
        while True:
            await asyncio.sleep(self.interval_s)
            self.freeze()

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            child = self._pause_by_generation.get(str(info.get("generation", "")))
            if child is not None:
                child.observe(time.perf_counter() - self._started)
            self._started = None
