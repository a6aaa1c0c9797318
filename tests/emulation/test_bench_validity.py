"""The end-to-end and capacity benchmarks' judgement of a run (pure; no control plane).

The serve report is read from the /metrics text of ``ladts serve``'s own telemetry
(``ladts_operator/telemetry.py``), so a renamed metric breaks this test, not the benchmark's
figures silently.
"""

from __future__ import annotations

from typing import Any

from e2e.bench.capacity import capacity, overloaded_only
from e2e.bench.end_to_end import SCHEDULERS, scheduler_problems
from e2e.bench.ladts_stack import LadtsStack, serve_report
from e2e.bench.stats import run_problems

from ladts_operator.telemetry import Telemetry


def _serve_metrics(binds_ok: int, bind_errors: int = 0) -> str:
    t = Telemetry()
    t.set_policy("onnx", "lad-ts-v1", "bundled")
    t.fallbacks.labels(reason="stale_metrics").inc(3)
    t.fallbacks.labels(reason="missing_metrics").inc(2)
    t.binds.labels(result="ok").inc(binds_ok)
    if bind_errors:
        t.binds.labels(result="error").inc(bind_errors)
    t.decisions.labels(node="n1", scorer="onnx").inc(binds_ok)
    return t.render().decode()


def _run(bound: int, stack: dict[str, Any] | None) -> dict[str, Any]:
    return {"bound": bound, "stack": stack}


def test_serve_report_reads_fallbacks_binds_and_policy() -> None:
    report = serve_report(_serve_metrics(binds_ok=7, bind_errors=1),
                          LadtsStack(bundled_policy=False))
    assert report["fallbacks"] == {"stale_metrics": 3.0, "missing_metrics": 2.0}
    assert report["binds"] == {"ok": 7.0, "error": 1.0}
    assert report["decisions_by_scorer"] == {"onnx": 7.0}
    assert report["policy"] == {"scorer": "onnx", "version": "lad-ts-v1", "source": "bundled"}


def test_pods_bound_around_the_extender_invalidate_a_ladts_run() -> None:
    """An ignorable extender that is down lets kube-scheduler bind pods itself: the run then
    does not measure ladts, and the benchmark must say so."""
    ladts = SCHEDULERS["ladts"]
    ok = serve_report(_serve_metrics(binds_ok=10), LadtsStack())
    assert scheduler_problems(ladts, _run(10, ok)) == []
    short = serve_report(_serve_metrics(binds_ok=8), LadtsStack())
    assert any("bound 8 of 10" in p for p in scheduler_problems(ladts, _run(10, short)))
    errors = serve_report(_serve_metrics(binds_ok=10, bind_errors=2), LadtsStack())
    assert any("2 bind errors" in p for p in scheduler_problems(ladts, _run(10, errors)))
    assert scheduler_problems(ladts, _run(10, {})) != []  # no report at all: not measured
    assert scheduler_problems(SCHEDULERS["default"], _run(10, None)) == []


def test_a_lost_pod_is_invalid_not_overload() -> None:
    lost = run_problems({"lost": 1, "unfinished": 0})
    assert lost and not overloaded_only(lost)
    slow = run_problems({"unfinished": 4, "cut": "not every created pod ended"})
    assert slow and overloaded_only(slow)


def test_capacity_is_the_last_rate_before_the_first_failure() -> None:
    points = [{"rate_per_s": r, "sustained": s}
              for r, s in ((0.5, True), (1.0, True), (1.5, False), (2.0, True))]
    assert capacity(points, 30.0) == 1.0
    assert capacity(points[2:3], 30.0) == 0.0
