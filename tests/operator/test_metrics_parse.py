import pytest

from ladts_operator.metrics_source.parse import (
    PrometheusResponseError,
    instance_host,
    per_node_values,
)
from ladts_operator.metrics_source.queries import DCGM_QUERIES, NODE_EXPORTER_QUERIES, NODE_LABEL

FREE = next(q for q in DCGM_QUERIES if q.name == "gpu_mem_free_mib")
MEM = next(q for q in NODE_EXPORTER_QUERIES if q.name == "mem_available_bytes")


def vector(*series):
    return {"status": "success", "data": {"resultType": "vector", "result": list(series)}}


def test_dcgm_query_accepts_both_host_label_casings():
    assert 'Hostname!=""' in FREE.promql and 'hostname!=""' in FREE.promql
    assert FREE.promql.startswith(f"sum by ({NODE_LABEL})")


def test_host_label_series_map_to_nodes_and_drop_nan():
    resp = vector(
        {"metric": {NODE_LABEL: "edge-a"}, "value": [100.0, "2048"]},
        {"metric": {NODE_LABEL: "edge-b"}, "value": [100.0, "NaN"]},
        {"metric": {}, "value": [100.0, "1"]},
    )
    values = per_node_values(resp, FREE)
    assert list(values) == ["edge-a"]
    assert values["edge-a"].value == 2048.0 and values["edge-a"].timestamp_s == 100.0


def test_instance_series_map_by_address():
    resp = vector({"metric": {"instance": "10.0.0.5:9100"}, "value": [1.0, "7e9"]},
                  {"metric": {"instance": "10.0.0.9:9100"}, "value": [1.0, "1e9"]})
    values = per_node_values(resp, MEM, node_by_address={"10.0.0.5": "edge-a"})
    assert {k: v.value for k, v in values.items()} == {"edge-a": 7e9}


@pytest.mark.parametrize(("instance", "host"), [("10.0.0.5:9100", "10.0.0.5"),
                                                ("[fd00::1]:9100", "fd00::1"),
                                                ("edge-a", "edge-a")])
def test_instance_host(instance, host):
    assert instance_host(instance) == host


def test_errors_are_explicit():
    with pytest.raises(PrometheusResponseError, match="status 'error'"):
        per_node_values({"status": "error", "error": "bad query"}, FREE)
    with pytest.raises(PrometheusResponseError, match="expected a vector"):
        per_node_values({"status": "success", "data": {"resultType": "matrix"}}, FREE)
