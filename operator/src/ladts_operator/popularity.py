"""Each model's share of the AIGC pods created recently: the features' ``popularity``.

The simulator counts the requests that arrived in the last ``POPULARITY_WINDOW_S`` seconds
(``ladts_policy.sim.cluster_state.EnvState.popularity_M``); the operator counts the AIGC
pods it saw (watch events and the pods it is asked to schedule) by ``creationTimestamp``
over the same window, with the same rule before any request: a uniform share.
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
        self._seen: dict[str, float] = {}  # uid -> creation time, for the entries held

    def note(self, uid: str, model: str, created_s: float) -> None:
        """Count one pod (again for the same ``uid``: ignored)."""
        if uid in self._seen:
            return
        self._seen[uid] = created_s
        i = bisect.bisect_right(self._times, created_s)
        self._times.insert(i, created_s)
        self._models.insert(i, model)

    def shares(self, now: float, models: Iterable[str]) -> dict[str, float]:
        """Each of ``models``' share of the pods created in ``(now - window_s, now]``.

        Uniform over ``models`` when none was (the simulator's rule); pods of other models
        count in the total.
        """
        self._forget(now)
        names = sorted(set(models))
        hi = bisect.bisect_right(self._times, now)
        counts = dict.fromkeys(names, 0)
        for model in self._models[:hi]:
            if model in counts:
                counts[model] += 1
        if hi == 0:
            return {m: 1.0 / len(names) for m in names} if names else {}
        return {m: c / hi for m, c in counts.items()}

    def _forget(self, now: float) -> None:
        lo = bisect.bisect_right(self._times, now - self.window_s)
        if lo:
            del self._times[:lo], self._models[:lo]
            cutoff = now - self.window_s
            self._seen = {u: t for u, t in self._seen.items() if t > cutoff}
