"""Recent-request shares (the features' ``popularity``) against a count by hand."""

from __future__ import annotations

import pytest

from ladts_operator.popularity import RecentRequests


def test_shares_count_each_pod_once_within_the_window() -> None:
    r = RecentRequests(window_s=600.0)
    assert r.shares(0.0, ["a", "b"]) == {"a": 0.5, "b": 0.5}  # none yet: uniform
    r.note("p1", "a", 10.0)
    r.note("p1", "a", 10.0)  # the same pod again (watch event, then the prioritize call)
    r.note("p2", "b", 20.0)
    r.note("p3", "a", 30.0)
    r.note("p4", "x", 40.0)  # a model outside the list counts in the total
    assert r.shares(100.0, ["a", "b"]) == pytest.approx({"a": 0.5, "b": 0.25})
    # At 615 s the pods created at or before 15 s have left the window.
    assert r.shares(615.0, ["a", "b"]) == pytest.approx({"a": 1 / 3, "b": 1 / 3})
    assert r.shares(1000.0, ["a", "b"]) == {"a": 0.5, "b": 0.5}


def test_a_pod_created_later_than_now_is_not_counted_yet() -> None:
    r = RecentRequests(window_s=600.0)
    r.note("p1", "a", 50.0)
    r.note("p2", "b", 10.0)
    assert r.shares(20.0, ["a", "b"]) == {"a": 0.0, "b": 1.0}
