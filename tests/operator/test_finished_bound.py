"""The store's memory of finished pods is bounded by age and size, and nothing is counted twice.

``ClusterState.finished`` guards against counting a finished pod again when its event comes
back (an update, a relist after a watch expired). It used to be pruned only on pod deletion,
so a cluster that keeps terminal pods grew it without bound. Forgetting an entry must not
let a repeated event learn, trace or queue the pod again.
"""

from __future__ import annotations

from dataclasses import replace

from ladts_operator.objects import PodObservation, PodWork, parse_node
from ladts_operator.state import ClusterState, Completion

from .conftest import NOW, PROFILES, Clock, node


def running(uid: str, t: float) -> PodObservation:
    return PodObservation(uid=uid, namespace="aigc", name=uid, work=PodWork("sd15", 20),
                          error=None, node="n1", bind_s=t, finished=False, finish_s=None,
                          cpu=0.5, memory_gib=2.0, bind_exact=True, created_s=t)


def history(state: ClusterState, clock: Clock, count: int, gap_s: float
            ) -> list[PodObservation]:
    """``count`` pods bound one after another, each finishing ``gap_s`` later."""
    done = []
    for i in range(count):
        pod = running(f"p{i}", clock.t)
        state.upsert_pod(pod)
        clock.t += gap_s
        finished = replace(pod, finished=True, finish_s=clock.t)
        state.upsert_pod(finished)
        done.append(finished)
    return done


def repeat_everything(state: ClusterState, pods: list[PodObservation], *,
                      stale_first: bool = False) -> None:
    """Every finished pod delivered again as it is now (a relist, an update).

    ``stale_first``: an out-of-date unfinished event first (events reordered), which can
    only happen within moments of the finish, so only within the retention window.
    """
    for pod in pods:
        if stale_first:
            state.upsert_pod(replace(pod, finished=False, finish_s=None))
        state.upsert_pod(pod)


def test_finished_uids_are_forgotten_after_the_retention_window() -> None:
    clock = Clock()
    state = ClusterState(PROFILES, clock=clock, completed_retention_s=600.0)
    state.upsert_node(parse_node(node("n1", "fast")))
    learned: list[Completion] = []
    state.on_completion.append(learned.append)
    pods = history(state, clock, 200, 10.0)  # 2000 s of completions
    assert len(learned) == 200
    assert 55 <= len(state.finished) <= 61  # the last 600 s only
    assert min(state.finished.values()) >= clock.t - 600.0
    before = (len(state.nodes["n1"].completions), state.corrector.as_dict())
    repeat_everything(state, pods)
    # Nothing counted twice, nothing queued again, no old completion back in the window.
    assert len(learned) == 200
    assert state.queue("n1") == []
    assert (len(state.nodes["n1"].completions), state.corrector.as_dict()) == before


def test_finished_uids_are_bounded_in_number() -> None:
    clock = Clock()
    state = ClusterState(PROFILES, clock=clock, max_finished=50)
    state.upsert_node(parse_node(node("n1", "fast")))
    learned: list[Completion] = []
    state.on_completion.append(learned.append)
    pods = history(state, clock, 300, 0.5)  # all within the retention window
    assert len(state.finished) == 50
    assert list(state.finished) == [p.uid for p in pods[-50:]]  # the newest kept
    completions = list(state.nodes["n1"].completions)
    assert len(completions) == 300
    repeat_everything(state, pods)
    assert len(learned) == 300
    assert state.queue("n1") == []
    assert len(state.finished) == 50
    assert state.nodes["n1"].completions == completions


def test_within_the_window_a_repeated_finish_is_ignored() -> None:
    clock = Clock(NOW)
    state = ClusterState(PROFILES, clock=clock)
    state.upsert_node(parse_node(node("n1", "fast")))
    learned: list[Completion] = []
    state.on_completion.append(learned.append)
    pods = history(state, clock, 5, 3.0)
    completions = len(state.nodes["n1"].completions)
    repeat_everything(state, pods, stale_first=True)
    assert len(learned) == 5
    assert len(state.nodes["n1"].completions) == completions
