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


class _FromScratch:
    """The shares counted over every held pod on each call (what the kept counts replace)."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.held: dict[str, tuple[float, str]] = {}  # uid -> (creation time, model)

    def note(self, uid: str, model: str, created_s: float) -> None:
        self.held.setdefault(uid, (created_s, model))

    def shares(self, now: float, models: list[str]) -> dict[str, float]:
        self.held = {u: tm for u, tm in self.held.items() if tm[0] > now - self.window_s}
        counted = [m for t, m in self.held.values() if t <= now]
        names = sorted(set(models))
        if not counted:
            return {m: 1.0 / len(names) for m in names}
        return {m: counted.count(m) / len(counted) for m in names}


@pytest.mark.parametrize("seed", range(6))
def test_kept_counts_equal_a_count_from_scratch(seed: int) -> None:
    import random

    rng = random.Random(seed)
    kept, scratch = RecentRequests(window_s=50.0), _FromScratch(window_s=50.0)
    models = ["a", "b", "c"]
    now = 0.0
    for step in range(600):
        now += rng.expovariate(2.0)
        for _ in range(rng.randint(0, 3)):
            # repeats of recent uids (watch events), creations in the past and a little in
            # the future (clock skew), models outside the asked list
            uid = f"p{rng.randint(max(0, step - 40), step)}"
            created = now + rng.uniform(-80.0, 3.0)
            model = rng.choice([*models, "other"])
            kept.note(uid, model, created)
            scratch.note(uid, model, created)
        asked = rng.sample(models, rng.randint(1, 3))
        assert kept.shares(now, asked) == scratch.shares(now, asked), step
