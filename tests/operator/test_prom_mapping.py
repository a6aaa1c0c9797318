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
