"""The process's own Prometheus metrics (served at ``GET /metrics``), one registry per server."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Histogram buckets, seconds: fine below 5 ms, where the extender should answer."""

GC_BUCKETS_S = (0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
"""Garbage-collector pause buckets, seconds."""


class Telemetry:
    """Counters, gauges and histograms of one ``ladts serve`` process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.latency = Histogram(
            "ladts_extender_request_duration_seconds",
            "Time to answer one extender call, by verb and HTTP status class.",
            ["verb", "code"], buckets=LATENCY_BUCKETS_S, registry=r)
        self.decisions = Counter(
            "ladts_decisions_total", "Prioritize decisions by chosen node and scorer.",
            ["node", "scorer"], registry=r)
        self.binds = Counter(
            "ladts_binds_total", "Bind calls by result (ok, error).", ["result"], registry=r)
        self.decision_records = Counter(
            "ladts_decision_records_total",
            "Decision annotations and LadtsScheduled Events written after binds (in the "
            "background), by result (ok, error, dropped: too many pending).",
            ["result"], registry=r)
        self.fallbacks = Counter(
            "ladts_fallbacks_total",
            "Times a documented fallback was used, by reason (stale_metrics, missing_metrics, "
            "policy_error, no_policy, bad_annotation, unknown_node).",
            ["reason"], registry=r)
        self.rejected = Counter(
            "ladts_rejected_requests_total", "Requests answered 4xx, by verb and reason.",
            ["verb", "reason"], registry=r)
        self.metrics_age = Gauge(
            "ladts_node_metrics_age_seconds",
            "Age of the newest Prometheus sample per node (absent: never seen).",
            ["node"], registry=r)
        self.metrics_poll_errors = Counter(
            "ladts_prometheus_poll_errors_total", "Failed Prometheus polls.", registry=r)
        self.policy_info = Gauge(
            "ladts_policy_info",
            "The scorer in use (value 1) with its version and source (bundled: the policy "
            "shipped in the package; file: a policy file; heuristic: no policy loaded).",
            ["scorer", "version", "source"], registry=r)
        self.policy_load_failures = Counter(
            "ladts_policy_load_failures_total",
            "Policy files that failed to load or validate (the running policy was kept).",
            registry=r)
        self.state_nodes = Gauge("ladts_state_nodes", "Nodes in the state store.", registry=r)
        self.state_pods = Gauge(
            "ladts_state_unfinished_pods", "Unfinished AIGC pods bound to nodes.", registry=r)
        self.trace_records = Counter(
            "ladts_trace_records_total", "Trace records written, by kind.", ["kind"], registry=r)
        self.gc_pause = Histogram(
            "ladts_gc_pause_seconds",
            "Pauses of Python's cyclic garbage collector by generation collected (they hold "
            "the event loop; ladts_operator/gc_policy.py).",
            ["generation"], buckets=GC_BUCKETS_S, registry=r)

    def set_policy(self, scorer: str, version: str, source: str = "heuristic") -> None:
        """Show exactly one scorer/version/source triple."""
        self.policy_info.clear()
        self.policy_info.labels(scorer=scorer, version=version, source=source).set(1)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
