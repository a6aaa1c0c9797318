"""Turn Prometheus instant-query responses into per-node values (pure, no I/O)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ladts_operator.metrics_source.queries import NODE_LABEL, MetricQuery, NodeMatch


class PrometheusResponseError(ValueError):
    """The response is not a successful instant-vector result."""


@dataclass(frozen=True)
class Sample:
    """One node's value of one metric."""

    value: float
    """The sample value, in the query's unit."""
    timestamp_s: float
    """Evaluation timestamp Prometheus reported (Unix seconds)."""


def instance_host(instance: str) -> str:
    """The host part of an ``instance`` label (``10.0.0.5:9100`` -> ``10.0.0.5``)."""
    if instance.startswith("["):  # IPv6: [::1]:9100
        return instance[1:].split("]", 1)[0]
    return instance.rsplit(":", 1)[0] if instance.count(":") == 1 else instance


def per_node_values(
    response: Mapping[str, Any],
    query: MetricQuery,
    *,
    node_by_address: Mapping[str, str] | None = None,
) -> dict[str, Sample]:
    """Map an instant-query JSON response (``/api/v1/query``) to ``{node name: sample}``.

    Series that map to no node (unknown address, missing label) and non-finite values are
    dropped: a node without a sample is "metrics missing", which the caller handles.
    """
    if response.get("status") != "success":
        raise PrometheusResponseError(f"query {query.name}: status {response.get('status')!r}"
                                      f", error {response.get('error')!r}")
    data = response.get("data") or {}
    if data.get("resultType") != "vector":
        raise PrometheusResponseError(
            f"query {query.name}: expected a vector, got {data.get('resultType')!r}")
    out: dict[str, Sample] = {}
    for series in data.get("result", []):
        labels: Mapping[str, str] = series.get("metric", {})
        node = _node_of(labels, query, node_by_address or {})
        timestamp, raw = series.get("value", (math.nan, "NaN"))
        value = float(raw)
        if node is not None and math.isfinite(value):
            out[node] = Sample(value=value, timestamp_s=float(timestamp))
    return out


def _node_of(
    labels: Mapping[str, str], query: MetricQuery, node_by_address: Mapping[str, str]
) -> str | None:
    """The node a series belongs to, by the query's matching rule."""
    if query.match is NodeMatch.HOST_LABEL:
        return labels.get(NODE_LABEL) or None
    return node_by_address.get(instance_host(labels.get("instance", "")))
