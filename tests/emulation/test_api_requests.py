"""Per-pod apiserver request counts from two ``/metrics`` scrapes (canned text)."""
# ruff: noqa: E501  (exposition lines as the apiserver writes them)

from __future__ import annotations

from e2e.bench.api_requests import per_pod, request_counts

BEFORE = """\
# TYPE apiserver_request_total counter
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1"} 10
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="binding",verb="POST",version="v1"} 4
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="status",verb="PATCH",version="v1"} 2
apiserver_watch_events_total{group="",kind="Pod",version="v1"} 100
"""
AFTER = """\
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1"} 110
apiserver_request_total{code="409",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1"} 3
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="binding",verb="POST",version="v1"} 104
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="status",verb="PATCH",version="v1"} 202
apiserver_request_total{code="201",component="apiserver",dry_run="",group="events.k8s.io",resource="events",scope="resource",subresource="",verb="POST",version="v1"} 100
apiserver_watch_events_total{group="",kind="Pod",version="v1"} 2200
"""


def test_requests_and_watch_events_per_pod() -> None:
    got = per_pod(request_counts(BEFORE), request_counts(AFTER), pods=100)
    assert got == {"watch-events Pod": 21.0, "PATCH pods/status": 2.0, "POST pods": 1.03,
                   "POST pods/binding": 1.0, "POST events": 1.0}
    assert next(iter(got)) == "watch-events Pod"  # largest first
    assert per_pod({}, request_counts(AFTER), pods=0) == {}


def test_marginal_cpu_per_pod_subtracts_the_idle_rate() -> None:
    from e2e.bench.run import _marginal_ms_per_pod

    idle = (0.0, {"kube-apiserver": 1.0, "kine": 0.5})
    start = (2.0, {"kube-apiserver": 1.4, "kine": 0.5, "gone": 1.0})  # idle: 0.2 cpu-s/s
    end = (12.0, {"kube-apiserver": 4.4, "kine": 1.5})  # 3.0 s used, 2.0 s of them idle rate
    assert _marginal_ms_per_pod(idle, start, end, pods=100) == {
        "kube-apiserver": 10.0, "kine": 10.0}
