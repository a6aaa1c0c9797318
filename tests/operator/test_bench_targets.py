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


def test_summary_lines_give_the_spread_over_runs_and_count_the_targets_met():
    from ladts_operator.commands.bench import summary_lines

    def row(run: int, p99: float, rps: float) -> dict:
        return {"nodes": 500, "scorer": "onnx", "run": run, "prioritize_p50_ms": 2.0,
                "prioritize_p99_ms": p99, "filter_p99_ms": 1.0, "req_per_s": rps,
                "server_cpu_ms_per_req": 1.5}

    lines = summary_lines([row(0, 4.0, 400.0), row(1, 6.0, 420.0), row(2, 4.5, 410.0)])
    assert "4.00/4.50/6.00" in lines[1] and "400.00/410.00/420.00" in lines[1]
    assert lines[1].split()[:3] == ["500", "onnx", "3"]
    assert lines[-1] == "target prioritize p99 at 500 nodes <= 5ms (onnx): met in 2 of 3 runs"
