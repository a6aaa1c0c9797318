"""``ladts bench extender`` prints the issue's targets against the measured rows."""

from __future__ import annotations

from ladts_operator.commands.bench import target_lines


def test_target_lines_say_met_or_not_for_the_sizes_run():
    rows = [
        {"nodes": 20, "scorer": "onnx", "prioritize_p99_ms": 1.0, "req_per_s": 900.0},
        {"nodes": 100, "scorer": "heuristic:greedy", "prioritize_p99_ms": 3.0,
         "req_per_s": 499.0},
        {"nodes": 500, "scorer": "onnx", "prioritize_p99_ms": 4.99, "req_per_s": 300.0},
    ]
    assert target_lines(rows) == [
        "target prioritize p99 at 500 nodes <= 5ms (onnx): 4.99ms met",
        "target requests/s at 100 nodes >= 500 (heuristic:greedy): 499.00 NOT met",
    ]
    assert target_lines(rows[:1]) == []  # no target at 20 nodes
