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
