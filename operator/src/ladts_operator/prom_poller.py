"""Background Prometheus poller: per-node GPU memory with each sample's own timestamp.

Runs :data:`~ladts_operator.metrics_source.queries.DCGM_QUERIES` and
:data:`~ladts_operator.metrics_source.queries.NODE_EXPORTER_QUERIES` every
``prometheus_interval_s`` in a thread (``asyncio.to_thread``), never on the request path.
Each query is wrapped in ``timestamp(...)`` as well, so the age of a node's newest sample is
known even when the scrape lags (a value with an old timestamp is stale, not fresh).

Node mapping (``docs/serving.md``): dcgm series by ``Hostname``/``hostname`` (the queries'
``ladts_node``) or a ``node`` label; node-exporter series by a ``node`` label, by
``instance`` equal to the node name (kube-prometheus relabelling), or by the host part of
``instance`` equal to the node's InternalIP.

Free GPU memory per node: dcgm ``gpu_mem_free_mib`` (sum over GPUs) where present; on
unified-memory nodes (no dcgm series) node-exporter's ``mem_available_bytes``.

Failures: a poll that fails keeps the last good values (each keeps its own timestamp, so
they age out after ``metrics_ttl_s`` and the extender falls back to API state, counted).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ladts_operator.extender import NodeMetrics
from ladts_operator.metrics_source.parse import Sample, instance_host
from ladts_operator.metrics_source.queries import (
    DCGM_QUERIES,
    NODE_EXPORTER_QUERIES,
    NODE_LABEL,
    MetricQuery,
)
from ladts_operator.settings import ServeSettings
from ladts_operator.telemetry import Telemetry

log = logging.getLogger(__name__)

GPU_FREE = next(q for q in DCGM_QUERIES if q.name == "gpu_mem_free_mib")
HOST_FREE = next(q for q in NODE_EXPORTER_QUERIES if q.name == "mem_available_bytes")


def node_of(labels: Mapping[str, str], node_names: set[str],
            node_by_ip: Mapping[str, str]) -> str | None:
    """The node a series belongs to (see the module docstring for the order)."""
    for key in (NODE_LABEL, "node"):
        value = labels.get(key)
        if value:
            return value
    instance = labels.get("instance", "")
    if instance in node_names:
        return instance
    host = instance_host(instance)
    if host in node_names:
        return host
    return node_by_ip.get(host)


def per_node(result: list[dict[str, Any]], value_result: list[dict[str, Any]] | None,
             node_names: set[str], node_by_ip: Mapping[str, str]) -> dict[str, Sample]:
    """Combine a ``timestamp(q)`` result (sample times) with the ``q`` result (values)."""
    values: dict[str, float] = {}
    for series in value_result or []:
        node = node_of(series.get("metric", {}), node_names, node_by_ip)
        try:
            value = float(series["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        if node is not None and math.isfinite(value):
            values[node] = value
    out: dict[str, Sample] = {}
    for series in result:
        node = node_of(series.get("metric", {}), node_names, node_by_ip)
        try:
            stamp = float(series["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        if node is not None and node in values:
            out[node] = Sample(value=values[node], timestamp_s=stamp)
    return out


class PrometheusPoller:
    """Keeps the last good per-node metrics (implements ``extender.MetricsView``)."""

    def __init__(self, settings: ServeSettings, telemetry: Telemetry,
                 nodes: Callable[[], tuple[set[str], dict[str, str]]]) -> None:
        self.settings = settings
        self.telemetry = telemetry
        self.nodes = nodes
        self._lock = threading.Lock()
        self._metrics: dict[str, NodeMetrics] = {}
        self._client: Any = None
        self.last_error: str | None = None
        self.generation = 0
        """Bumped by every poll that stored values (the extender re-reads its columns then)."""

    def _connect(self) -> Any:
        import requests
        from prometheus_api_client import PrometheusConnect

        headers = {}
        if self.settings.prometheus_token_file:
            with open(self.settings.prometheus_token_file) as f:
                headers["Authorization"] = f"Bearer {f.read().strip()}"
        session = requests.Session()
        if self.settings.prometheus_ca_file:
            session.verify = self.settings.prometheus_ca_file
        return PrometheusConnect(url=self.settings.prometheus_url, headers=headers,
                                 session=session, disable_ssl=False,
                                 timeout=self.settings.prometheus_timeout_s)

    def node_metrics(self, node: str) -> NodeMetrics | None:
        """Last good metrics of a node."""
        with self._lock:
            return self._metrics.get(node)

    def _query(self, q: MetricQuery, names: set[str], by_ip: dict[str, str]) -> dict[str, Sample]:
        values = self._client.custom_query(q.promql, timeout=self.settings.prometheus_timeout_s)
        stamps = self._client.custom_query(f"timestamp({q.promql})",
                                           timeout=self.settings.prometheus_timeout_s)
        return per_node(stamps, values, names, by_ip)

    def poll_once(self) -> None:
        """One poll (blocking; raises on failure, keeping the previous values)."""
        if self._client is None:
            self._client = self._connect()
        names, by_ip = self.nodes()
        gpu = self._query(GPU_FREE, names, by_ip)
        host = self._query(HOST_FREE, names, by_ip)
        fresh: dict[str, NodeMetrics] = {}
        for node, sample in host.items():
            fresh[node] = NodeMetrics(sample.value / 1024.0**3, sample.timestamp_s)
        for node, sample in gpu.items():
            fresh[node] = NodeMetrics(sample.value / 1024.0, sample.timestamp_s)
        with self._lock:
            self._metrics.update(fresh)
            self.generation += 1

    def refresh_ages(self, now: float) -> None:
        """Publish each node's metric age."""
        with self._lock:
            for node, m in self._metrics.items():
                self.telemetry.metrics_age.labels(node=node).set(max(now - m.timestamp_s, 0.0))

    async def run(self) -> None:
        """Poll forever in a thread; failures are logged and counted, never raised."""
        import time

        while True:
            try:
                await asyncio.to_thread(self.poll_once)
                self.last_error = None
            except Exception as exc:  # any client/network error: keep the last good values
                self.telemetry.metrics_poll_errors.inc()
                if str(exc) != self.last_error:
                    log.warning("Prometheus poll failed (keeping last values): %s", exc)
                self.last_error = str(exc)
            self.refresh_ages(time.time())
            await asyncio.sleep(self.settings.prometheus_interval_s)
