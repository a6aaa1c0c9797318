"""Each model's share of the AIGC pods created recently: the features' ``popularity``.

The simulator counts the requests that arrived in the last ``POPULARITY_WINDOW_S`` seconds
(``ladts_policy.sim.dynamics.cluster_state.EnvState.popularity_M``); the operator counts the AIGC
pods it saw (watch events and the pods it is asked to schedule) by ``creationTimestamp``
over the same window, with the same rule before any request: a uniform share.

Every decision asks for the shares, and at 100 pods/s the window holds 60 000 pods: the
counts per model are kept as pods enter and leave the window, so a decision costs a dict
copy, not a walk over the window (``tests/operator/test_popularity.py`` checks the shares
against a count from scratch on random histories).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable


class RecentRequests:
    """Pod creations of the last ``window_s`` seconds, each pod counted once."""

    def __init__(self, window_s: float) -> None:
        """``window_s``: how far back a creation counts, s."""
        self.window_s = window_s
        self._times: list[float] = []  # creation times, sorted
        self._models: list[str] = []  # parallel to _times
        self._uids: list[str] = []  # parallel to _times
        self._seen: set[str] = set()  # uids of the entries held
        self._counts: dict[str, int] = {}  # model -> entries held (any creation time)

    def note(self, uid: str, model: str, created_s: float) -> None:
        """Count one pod (again for the same ``uid``: ignored)."""
        if uid in self._seen:
            return
        self._seen.add(uid)
        i = bisect.bisect_right(self._times, created_s)
        self._times.insert(i, created_s)
        self._models.insert(i, model)
        self._uids.insert(i, uid)
        self._counts[model] = self._counts.get(model, 0) + 1

    def shares(self, now: float, models: Iterable[str]) -> dict[str, float]:
        """Each of ``models``' share of the pods created in ``(now - window_s, now]``.

        Uniform over ``models`` when none was (the simulator's rule); pods of other models
        count in the total.
        """
        self._forget(now)
        names = sorted(set(models))
        hi = bisect.bisect_right(self._times, now)
        if hi == 0:
            return {m: 1.0 / len(names) for m in names} if names else {}
        counts = self._counts
        later = self._models[hi:]  # created after ``now`` (clock skew): not counted yet
        if later:
            counts = dict(counts)
            for model in later:
                counts[model] -= 1
        return {m: counts.get(m, 0) / hi for m in names}

    def _forget(self, now: float) -> None:
        lo = bisect.bisect_right(self._times, now - self.window_s)
        if lo:
            for model in self._models[:lo]:
                self._counts[model] -= 1
            self._seen.difference_update(self._uids[:lo])
            del self._times[:lo], self._models[:lo], self._uids[:lo]
