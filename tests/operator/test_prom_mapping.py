"""Series-to-node mapping of the Prometheus poller (pure part)."""

from __future__ import annotations

from ladts_operator.metrics_source.queries import NODE_LABEL
from ladts_operator.prom_poller import node_of, per_node

NAMES = {"edge-a", "edge-b"}
BY_IP = {"10.0.0.2": "edge-b"}


def test_node_of_each_rule():
    assert node_of({NODE_LABEL: "edge-a"}, NAMES, BY_IP) == "edge-a"
    assert node_of({"node": "edge-a", "instance": "10.0.0.2:9100"}, NAMES, BY_IP) == "edge-a"
    assert node_of({"instance": "edge-b"}, NAMES, BY_IP) == "edge-b"
    assert node_of({"instance": "edge-b:9100"}, NAMES, BY_IP) == "edge-b"
    assert node_of({"instance": "10.0.0.2:9100"}, NAMES, BY_IP) == "edge-b"
    assert node_of({"instance": "10.9.9.9:9100"}, NAMES, BY_IP) is None
    assert node_of({}, NAMES, BY_IP) is None


def test_per_node_pairs_values_with_their_sample_timestamps():
    values = [{"metric": {NODE_LABEL: "edge-a"}, "value": [200.0, "4096"]},
              {"metric": {"instance": "10.0.0.2:9100"}, "value": [200.0, "NaN"]}]
    stamps = [{"metric": {NODE_LABEL: "edge-a"}, "value": [200.0, "150.5"]},
              {"metric": {"instance": "10.0.0.2:9100"}, "value": [200.0, "151"]}]
    out = per_node(stamps, values, NAMES, BY_IP)
    assert list(out) == ["edge-a"]  # NaN dropped: "metrics missing" for edge-b
    assert out["edge-a"].value == 4096.0 and out["edge-a"].timestamp_s == 150.5


def test_residency_series_map_to_loaded_models_per_node():
    from ladts_operator.prom_poller import per_node_models

    def series(value, stamp, **labels):
        # As Prometheus answers: timestamp(q) drops the metric name.
        return ({"metric": {"__name__": "ladts_model_loaded", **labels}, "value": [300.0, value]},
                {"metric": labels, "value": [300.0, stamp]})

    pairs = [
        series("1", "290", node="edge-a", model="sdxl"),
        series("2", "295", node="edge-a", model="sd15"),  # any value > 0 is loaded
        series("0", "280", instance="10.0.0.2:8002", model="sdxl"),  # edge-b, nothing loaded
        series("1", "280", instance="10.9.9.9:8002", model="sd15"),  # no such node
        series("1", "280", node="edge-a"),  # no model label
    ]
    out = per_node_models([v for v, _ in pairs], [s for _, s in pairs], "model", NAMES, BY_IP)
    assert out == {"edge-a": (("sd15", "sdxl"), 295.0), "edge-b": ((), 280.0)}


def test_fresh_residency_replaces_the_learned_set_and_stale_withdraws_it():
    from ladts_operator.objects import parse_node
    from ladts_operator.prom_poller import PrometheusPoller
    from ladts_operator.settings import ServeSettings
    from ladts_operator.state import ClusterState
    from ladts_operator.telemetry import Telemetry

    from .conftest import NOW, PROFILES, node

    state = ClusterState(PROFILES, clock=lambda: NOW)
    state.upsert_node(parse_node(node("edge-a", resident="sd15")))
    sdxl_loaded_before = state.replay("edge-a", now=NOW).server.is_loaded("sdxl")
    poller = PrometheusPoller(ServeSettings(metrics_ttl_s=60.0), Telemetry(),
                              lambda: (NAMES, BY_IP), residency_sink=state.set_metric_residency)
    poller._resident["edge-a"] = (("sdxl",), NOW - 10)
    poller.apply_residency(NOW)
    assert state.resident("edge-a") == ("sdxl",)  # the server says sd15 was evicted
    server = state.replay("edge-a", now=NOW).server
    assert not sdxl_loaded_before and server.is_loaded("sdxl") and not server.is_loaded("sd15")
    poller.apply_residency(NOW + 100)  # report older than the TTL: back to the annotation
    assert state.resident("edge-a") == ("sd15",)
    assert state.replay("edge-a", now=NOW + 100).server.is_loaded("sd15")
