"""Named PromQL queries per metric source, and how their series map to node names.

dcgm-exporter labels its series with the host label ``Hostname`` up to release 4.8.2 and
``hostname`` after (dcgm-exporter PR #655); queries here accept both by copying whichever
is present into ``ladts_node`` with ``label_replace`` and aggregating per node.
node-exporter series carry only ``instance`` (``<ip>:9100``), so their node mapping is by
address and happens after the query.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

NODE_LABEL = "ladts_node"
"""Label the dcgm queries put the node name in, whatever the exporter's host label casing."""


class NodeMatch(Enum):
    """How a query's series are matched to Kubernetes node names."""

    HOST_LABEL = "host-label"
    """The series carry the node name in ``NODE_LABEL`` (dcgm-exporter's host label)."""
    INSTANCE_ADDRESS = "instance-address"
    """The host part of ``instance`` is matched against the node's InternalIP."""


@dataclass(frozen=True)
class MetricQuery:
    """One per-node metric and the PromQL that yields it."""

    name: str
    """Our name for the metric (key in the per-node snapshot)."""
    promql: str
    """Instant query returning one series per node."""
    unit: str
    """Unit of the returned values."""
    match: NodeMatch
    """How the returned series map to node names."""
    aggregation: str
    """How several GPUs of one node are combined (documented because it changes meaning)."""


def _dcgm_by_node(metric: str, aggregation: str) -> str:
    """Aggregate a dcgm metric per node, accepting both casings of the host label.

    Each GPU (``UUID``) counts once even when several series report it (two scrape jobs on
    one exporter, or an exporter pod replaced within Prometheus' 5-minute lookback).
    """
    upper = f'label_replace({metric}{{Hostname!=""}}, "{NODE_LABEL}", "$1", "Hostname", "(.+)")'
    lower = f'label_replace({metric}{{hostname!=""}}, "{NODE_LABEL}", "$1", "hostname", "(.+)")'
    per_gpu = f"max by ({NODE_LABEL}, UUID) ({upper} or {lower})"
    return f"{aggregation} by ({NODE_LABEL}) ({per_gpu})"


DCGM_QUERIES: tuple[MetricQuery, ...] = (
    MetricQuery("gpu_util_pct", _dcgm_by_node("DCGM_FI_DEV_GPU_UTIL", "avg"), "%",
                NodeMatch.HOST_LABEL, "mean over the node's GPUs, each GPU once"),
    MetricQuery("gpu_mem_used_mib", _dcgm_by_node("DCGM_FI_DEV_FB_USED", "sum"), "MiB",
                NodeMatch.HOST_LABEL, "sum over the node's GPUs, each GPU once"),
    MetricQuery("gpu_mem_free_mib", _dcgm_by_node("DCGM_FI_DEV_FB_FREE", "sum"), "MiB",
                NodeMatch.HOST_LABEL, "sum over the node's GPUs, each GPU once"),
)
"""dcgm-exporter queries (discrete NVIDIA GPUs)."""

NODE_EXPORTER_QUERIES: tuple[MetricQuery, ...] = (
    MetricQuery("mem_available_bytes", "node_memory_MemAvailable_bytes", "bytes",
                NodeMatch.INSTANCE_ADDRESS, "one series per node"),
    MetricQuery("mem_total_bytes", "node_memory_MemTotal_bytes", "bytes",
                NodeMatch.INSTANCE_ADDRESS, "one series per node"),
)
"""node-exporter queries; on Jetson, free GPU memory is the node's available RAM."""
