"""The cluster clock: modelled GPU work runs ``time_scale`` times faster than wall time.

Cluster time is ``(wall epoch now - origin epoch) * time_scale``. The origin is a **wall** epoch
(not a monotonic reading) so that it can be persisted and shared: :func:`shared_clock` keeps it
in a ConfigMap (``ladts-emulation-clock``: ``origin-epoch-s``, ``time-scale``), the first caller
creates it and every later one (a restarted controller, the submitter process) reads the same
origin. kwok's stages read absolute wall times computed with :meth:`ClusterClock.epoch_of`.

Only modelled work is scaled. Scheduling latency, watch lag and scrapes run in wall time; the
emulation reports them in wall units and never multiplies them (``e2e/README.md``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

CLOCK_CONFIGMAP = "ladts-emulation-clock"
ORIGIN_KEY = "origin-epoch-s"
SCALE_KEY = "time-scale"


class ClusterClock:
    """Cluster seconds since a wall-epoch origin, ``time_scale`` cluster seconds per wall second."""

    def __init__(
        self,
        time_scale: float,
        origin: float | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """Start the clock now, or at ``origin`` (a ``time.time()`` epoch)."""
        if not time_scale > 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        self.time_scale = float(time_scale)
        self._wall = wall
        self.origin = wall() if origin is None else float(origin)

    def now(self) -> float:
        """Current cluster time in seconds."""
        return (self._wall() - self.origin) * self.time_scale

    def epoch_of(self, cluster_s: float) -> float:
        """Wall epoch at which cluster time is ``cluster_s``."""
        return self.origin + cluster_s / self.time_scale

    def cluster_of(self, epoch_s: float) -> float:
        """Cluster time at wall epoch ``epoch_s``."""
        return (epoch_s - self.origin) * self.time_scale

    def wall_until(self, cluster_s: float) -> float:
        """Wall seconds until cluster time ``cluster_s`` (negative when past)."""
        return (cluster_s - self.now()) / self.time_scale


def shared_clock(
    core_v1: Any,
    time_scale: float,
    namespace: str = "default",
    name: str = CLOCK_CONFIGMAP,
    start_in_s: float = 0.0,
) -> ClusterClock:
    """The clock persisted in ConfigMap ``namespace/name``; created if absent.

    A new clock's origin is ``start_in_s`` wall seconds from now (a benchmark leaves its
    submitter process time to start before cluster time 0).

    Raises:
        ValueError: The stored clock runs at another time scale (a stale run's ConfigMap:
            delete it, or use the stored scale).
    """
    from kubernetes.client.exceptions import ApiException

    clock = ClusterClock(time_scale, origin=time.time() + start_in_s)
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {ORIGIN_KEY: repr(clock.origin), SCALE_KEY: repr(clock.time_scale)},
    }
    try:
        core_v1.create_namespaced_config_map(namespace, body)
        return clock
    except ApiException as err:
        if err.status != 409:
            raise
    return read_clock(core_v1, namespace, name, expect_scale=time_scale)


def read_clock(
    core_v1: Any,
    namespace: str = "default",
    name: str = CLOCK_CONFIGMAP,
    expect_scale: float | None = None,
) -> ClusterClock:
    """The clock stored in ConfigMap ``namespace/name`` (raises ``ApiException`` 404 if absent)."""
    data = core_v1.read_namespaced_config_map(name, namespace).data or {}
    stored = ClusterClock(float(data[SCALE_KEY]), origin=float(data[ORIGIN_KEY]))
    if expect_scale is not None and stored.time_scale != float(expect_scale):
        raise ValueError(
            f"ConfigMap {namespace}/{name} holds time scale {stored.time_scale:g}, "
            f"not {expect_scale:g}"
        )
    return stored
