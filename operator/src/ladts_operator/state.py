"""The in-memory cluster state store: nodes, the AIGC pods bound to them, learned speeds.

Fed by the kopf handlers (or the offline simulator); read by the extender. Everything in it
is rebuilt from a list of nodes and pods after a restart: the node facts and GPU profiles,
each node's FIFO of unfinished AIGC pods in bind order, its last completion and the models
its completions show loaded. What is learned over time, the service-time correction
(:class:`~ladts_policy.service_estimate.ServiceTimeCorrector`), is rebuilt from the
completions of the trace log on disk (:func:`ladts_operator.trace.restore_corrector`).

Each node's :class:`~ladts_policy.sim.dynamics.node_service.NodeServer` is rebuilt from that state
with :func:`ladts_policy.node_replay.replay_node` and cached until the node's pods change or
a pod overruns its predicted finish. Every change of a node marks its row of the snapshot
columns (:class:`~ladts_operator.columns.NodeColumns`) for recomputation, so a decision reads
whole-cluster arrays and recomputes only the nodes that changed.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from ladts_operator.columns import NodeColumns
from ladts_operator.objects import (
    PRODUCT_LABEL,
    PROFILE_LABEL,
    NodeObservation,
    PodObservation,
)
from ladts_operator.popularity import RecentRequests
from ladts_policy.node_replay import ObservedNode, ObservedPod, Replay, replay_node
from ladts_policy.service_estimate import ServiceTimeCorrector
from ladts_policy.sim.config.cluster_config import GpuProfile
from ladts_policy.sim.dynamics.cluster import POPULARITY_WINDOW_S

log = logging.getLogger(__name__)


def refine_finish(pod: PodObservation, seen_s: float) -> float:
    """The pod's finish time (Unix s) as precisely as the API and the watch tell it.

    ``finishedAt`` has one-second resolution: a whole-second value ``f`` means the pod ended
    in ``[f, f + 1)``, an error as large as a fast model's whole run. The watch delivered the
    event at ``seen_s`` (after the finish, by the watch lag): inside that second, ``seen_s`` is
    the better estimate; seen later (a relist, a lagging watch) the middle of the second;
    before it (this clock behind the apiserver's), ``f``. Without ``finishedAt``: ``seen_s``.
    """
    if pod.finish_s is None:
        return seen_s
    if not pod.finish_whole_second:
        return pod.finish_s
    if seen_s < pod.finish_s:
        return pod.finish_s
    if seen_s < pod.finish_s + 1.0:
        return seen_s
    return pod.finish_s + 0.5


def _completed_before(completions: list[tuple[float, str]], pod: PodObservation,
                      finish: float) -> bool:
    """Whether ``completions`` already holds this pod's completion (refined when first seen)."""
    model = pod.work.model if pod.work is not None else ""
    if pod.finish_s is None or not pod.finish_whole_second:
        return (finish, model) in completions
    return any(m == model and pod.finish_s <= f <= pod.finish_s + 1.0
               for f, m in completions)

@dataclass(frozen=True)
class Completion:
    """A pod that finished on a node the store was tracking it on (what the trace records)."""

    pod: PodObservation
    """The pod (its ``created_s`` and ``bind_s``)."""

    node: str
    """Where it ran."""

    model: str
    """Its model."""

    start_s: float
    """Its replayed start (exact for concurrency 1: max(bind, previous completion))."""

    finish_s: float
    """When its containers terminated."""

    observed_s: float
    """``finish_s - start_s``: the service time the node delivered."""

    predicted_s: float
    """The profile's service time for it (warm time, plus load when the replay had it cold)."""

    @property
    def service_delay_s(self) -> float | None:
        """Creation to finish (what LAD-TS minimises), None when the creation time is unknown."""
        created = self.pod.created_s
        return None if created is None else self.finish_s - created


@dataclass
class NodeEntry:
    """One node as the store holds it."""

    obs: NodeObservation
    """The parsed Node object."""

    profile: GpuProfile | None
    """Its GPU profile, None when no label maps to one (see ``profile_note``)."""

    profile_note: str
    """How the profile was found, or why not."""

    pods: dict[str, PodObservation] = field(default_factory=dict)
    """Unfinished AIGC pods bound here, by UID (ordered by bind time when read)."""

    completions: list[tuple[float, str]] = field(default_factory=list)
    """(finish time, model) of pods finished here within the retention window."""

    metric_resident: tuple[str, ...] | None = None
    """Models the node's model server reports loaded (Prometheus, fresh), None: unknown."""

    version: int = 0
    """Bumped on every change, invalidates the cached replay."""

    requested_cache: tuple[int, float] | None = None
    """(version, requested fraction) last computed."""


def resolve_profile(
    labels: Mapping[str, str], profiles: Mapping[str, GpuProfile]
) -> tuple[GpuProfile | None, str]:
    """The node's GPU profile: ``ladts.io/gpu-profile`` by name, else the product label."""
    name = labels.get(PROFILE_LABEL)
    if name:
        if name in profiles:
            return profiles[name], f"label {PROFILE_LABEL}={name}"
        return None, f"label {PROFILE_LABEL}={name} names no known GPU profile"
    product = labels.get(PRODUCT_LABEL)
    if product:
        for profile in profiles.values():
            if profile.product_label == product:
                return profile, f"label {PRODUCT_LABEL}={product}"
        return None, f"label {PRODUCT_LABEL}={product} matches no GPU profile's product_label"
    return None, f"no GPU profile: neither {PROFILE_LABEL} nor {PRODUCT_LABEL} is set"


class ClusterState:
    """Nodes and AIGC pods, with per-node replayed servers (see the module docstring)."""

    def __init__(
        self,
        profiles: Mapping[str, GpuProfile],
        *,
        corrector: ServiceTimeCorrector | None = None,
        overrun_grace_s: float = 1.0,
        completed_retention_s: float = 600.0,
        max_finished: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.profiles = dict(profiles)
        self.corrector = corrector or ServiceTimeCorrector()
        self.overrun_grace_s = overrun_grace_s
        self.completed_retention_s = completed_retention_s
        self.clock = clock
        self.nodes: dict[str, NodeEntry] = {}
        self.pod_node: dict[str, str] = {}  # uid -> node of every unfinished bound pod
        self.finished: OrderedDict[str, float] = OrderedDict()
        """UIDs of pods already counted as finished -> when (clock), oldest first: a watch
        event of a finished pod again (an update, a relist) must not count it twice. Kept
        for ``completed_retention_s`` and at most ``max_finished`` (:meth:`_prune_finished`)."""
        self.max_finished = max_finished
        self.synced = False
        self._replays: dict[str, tuple[int, float, Replay]] = {}  # node -> (version, valid, r)
        self.on_completion: list[Callable[[Completion], None]] = []
        self.on_node_deleted: list[Callable[[str], None]] = []
        self.on_node_upserted: list[Callable[[NodeEntry], None]] = []
        self.on_node_changed: list[Callable[[str], None]] = []
        """Called with the node's name on every change of a node (its pods, its object,
        its residency) and on its deletion: a consumer updates only the nodes named."""
        self.columns = NodeColumns(self)
        """The decision snapshot's columns as arrays, refreshed per changed node."""
        self.requests = RecentRequests(POPULARITY_WINDOW_S)
        """AIGC pod creations of the last ``POPULARITY_WINDOW_S`` s (the ``popularity``)."""
        self.unscheduled: set[str] = set()
        """UIDs of AIGC pods not bound to a node and not finished (the ``pending`` count)."""

    # --- nodes -----------------------------------------------------------------------

    def upsert_node(self, obs: NodeObservation) -> NodeEntry:
        """Add or update a node from its object."""
        profile, note = resolve_profile(obs.labels, self.profiles)
        entry = self.nodes.get(obs.name)
        if entry is None:
            entry = self.nodes[obs.name] = NodeEntry(obs=obs, profile=profile, profile_note=note)
        else:
            entry.obs, entry.profile, entry.profile_note = obs, profile, note
        self._bump(entry)
        for hook in self.on_node_upserted:
            hook(entry)
        return entry

    def delete_node(self, name: str) -> None:
        """Forget a node and what was learned about it."""
        entry = self.nodes.pop(name, None)
        if entry is not None:
            for uid in entry.pods:
                self.pod_node.pop(uid, None)
        self._replays.pop(name, None)
        self.corrector.forget_node(name)
        self.columns.mark(name)
        for changed in self.on_node_changed:
            changed(name)
        for hook in self.on_node_deleted:
            hook(name)

    # --- pods ------------------------------------------------------------------------

    def upsert_pod(self, pod: PodObservation) -> None:
        """Add, move or finish an AIGC pod from its object."""
        if pod.work is not None and pod.created_s is not None:
            self.requests.note(pod.uid, pod.work.model, pod.created_s)
        if pod.work is not None and pod.node is None and not pod.finished:
            self.unscheduled.add(pod.uid)
        else:
            self.unscheduled.discard(pod.uid)
        node = pod.node
        if pod.work is None or node is None:
            self._remove_unfinished(pod.uid)
            return
        if pod.finished:
            self._finish(pod)
            return
        if pod.uid in self.finished:
            return
        entry = self._entry(node)
        old = self.pod_node.get(pod.uid)
        if old is not None and old != node:
            self._remove_unfinished(pod.uid)
        previous = entry.pods.get(pod.uid)
        if previous is not None and previous.bind_s is not None and (
            previous.bind_exact or not pod.bind_exact
        ):
            # Keep the bind time seen first unless an exact one (our bind or decision
            # annotation) replaces one from the PodScheduled condition (1 s resolution).
            pod = _with_bind(pod, previous.bind_s, previous.bind_exact)
        elif pod.bind_s is None:
            pod = _with_bind(pod, self.clock(), False)
        if previous != pod:
            entry.pods[pod.uid] = pod
            self._bump(entry)
        self.pod_node[pod.uid] = node

    def delete_pod(self, uid: str) -> None:
        """A pod was deleted: it leaves its node's queue (an unfinished one is not a completion)."""
        self._remove_unfinished(uid)
        self.finished.pop(uid, None)
        self.unscheduled.discard(uid)

    def _entry(self, node: str) -> NodeEntry:
        entry = self.nodes.get(node)
        if entry is None:
            # A pod bound to a node the watch has not delivered yet: keep its pods anyway.
            obs = NodeObservation(node, False, False, {}, 0.0, 0.0, None, 1, ())
            entry = self.nodes[node] = NodeEntry(obs=obs, profile=None,
                                                 profile_note="node not seen by the watch yet")
        return entry

    def _remove_unfinished(self, uid: str) -> None:
        node = self.pod_node.pop(uid, None)
        if node is not None and node in self.nodes:
            entry = self.nodes[node]
            if entry.pods.pop(uid, None) is not None:
                self._bump(entry)

    def _finish(self, pod: PodObservation) -> None:
        node = pod.node
        if pod.uid in self.finished or node is None or pod.work is None:
            return
        now = self.clock()
        self.finished[pod.uid] = now
        self._prune_finished(now)
        finish = refine_finish(pod, now)
        entry = self._entry(node)
        was_queued = pod.uid in entry.pods
        if was_queued:
            self._learn(entry, pod, finish)
        self._remove_unfinished(pod.uid)
        if not was_queued and _completed_before(entry.completions, pod, finish):
            return  # seen before, its UID since forgotten (_prune_finished): nothing new
        entry.completions.append((finish, pod.work.model))
        entry.completions.sort()
        horizon = max(finish, self.clock()) - self.completed_retention_s
        entry.completions = [c for c in entry.completions if c[0] >= horizon]
        self._bump(entry)

    def _learn(self, entry: NodeEntry, pod: PodObservation, finish: float) -> None:
        """Feed the corrector: observed run time vs the profile's prediction for this pod."""
        if entry.profile is None or pod.work is None:
            return
        replay = self.replay(entry.obs.name, now=finish)
        placement = replay.placements.get(pod.uid)
        timing = entry.profile.timings.get(pod.work.model)
        if placement is None or timing is None:
            return
        predicted = timing.run_s(pod.work.steps, placement.cold)
        start = replay.starts[pod.uid]
        observed = finish - start
        self.corrector.observe(entry.obs.name, pod.work.model,
                               observed_s=observed, predicted_s=predicted)
        done = Completion(pod, entry.obs.name, pod.work.model, start, finish, observed, predicted)
        for hook in self.on_completion:
            hook(done)

    def _prune_finished(self, now: float) -> None:
        """Forget finished UIDs older than the retention window, and beyond the size bound.

        What a forgotten UID guarded against cannot recur: a finished pod's event seen again
        (an update, a relist) finds it no longer queued, so it is neither learned from nor
        traced a second time (``_finish`` learns only from queued pods), and its completion
        is not added again (the same (finish, model) is still in the node's list, or older
        than ``completed_retention_s`` and dropped). The size bound caps memory when pods
        finish faster than the window forgets them. Not covered: an out-of-date *unfinished*
        event of a pod forgotten here would queue it again; events are not reordered by
        minutes (``tests/operator/test_finished_bound.py``).
        """
        finished = self.finished
        horizon = now - self.completed_retention_s
        while finished and (len(finished) > self.max_finished
                            or next(iter(finished.values())) < horizon):
            finished.popitem(last=False)

    # --- reading ---------------------------------------------------------------------

    def queue(self, node: str) -> list[PodObservation]:
        """Unfinished AIGC pods bound to ``node`` in bind order."""
        entry = self.nodes.get(node)
        if entry is None:
            return []
        return sorted(entry.pods.values(), key=lambda p: (p.bind_s or 0.0, p.uid))

    def resident(self, node: str) -> tuple[str, ...]:
        """Models believed loaded, least recently used first.

        The model server's fresh Prometheus report when there is one, else the node's
        declared models, then those completed here.
        """
        entry = self.nodes.get(node)
        if entry is None:
            return ()
        learned = [model for _, model in entry.completions]
        order = tuple(dict.fromkeys(reversed([*entry.obs.declared_resident, *learned])))[::-1]
        metric = entry.metric_resident
        if metric is None:
            return order
        # The model server's own report wins; completions only order it (LRU first).
        seen = [m for m in order if m in metric]
        return (*[m for m in metric if m not in seen], *seen)

    def set_metric_residency(self, node: str, models: tuple[str, ...] | None) -> None:
        """The models a node's model server reports loaded (None: no fresh report)."""
        entry = self.nodes.get(node)
        if entry is not None and entry.metric_resident != models:
            entry.metric_resident = models
            self._bump(entry)

    def replay(self, node: str, *, now: float, cache: bool = True) -> Replay:
        """The node's rebuilt server at ``now`` (cached; see the module docstring).

        ``cache=False`` computes it afresh and leaves the cache alone (for a ``now`` in the
        past, whose replay must not stand in for the present one).

        Raises:
            KeyError: unknown node or a node without a GPU profile.
        """
        entry = self.nodes[node]
        if entry.profile is None:
            raise KeyError(f"node {node} has no GPU profile")
        cached = self._replays.get(node)
        if cache and cached is not None and cached[0] == entry.version and now < cached[1]:
            return cached[2]
        last = entry.completions[-1][0] if entry.completions else None
        observed = ObservedNode(
            concurrency=entry.obs.concurrency,
            vram_gib=entry.profile.vram_gib,
            timings=entry.profile.timings,
            pods=[
                ObservedPod(p.uid, p.work.model, p.work.steps, p.bind_s or now,
                            cpu=p.cpu, memory_gib=p.memory_gib)
                for p in self.queue(node) if p.work is not None
            ],
            resident=self.resident(node),
            last_completion_s=last,
        )
        result = replay_node(
            observed, now=now,
            factor=lambda model: self.corrector.factor(node, model),
            overrun_grace_s=self.overrun_grace_s,
        )
        if cache:
            valid = min((pl.finish_s for pl in result.placements.values()), default=math.inf)
            self._replays[node] = (entry.version, valid, result)
        return result

    def requested_fraction(self, node: str) -> float:
        """Share of allocatable cpu and memory requested by the node's unfinished AIGC pods."""
        entry = self.nodes.get(node)
        if entry is None:
            return 0.0
        if entry.requested_cache is not None and entry.requested_cache[0] == entry.version:
            return entry.requested_cache[1]
        cpu = sum(p.cpu for p in entry.pods.values())
        mem = sum(p.memory_gib for p in entry.pods.values())
        shares = [
            used / total
            for used, total in ((cpu, entry.obs.cpu), (mem, entry.obs.memory_gib)) if total > 0
        ]
        value = min(sum(shares) / len(shares), 1.0) if shares else 0.0
        entry.requested_cache = (entry.version, value)
        return value

    def invalidate_all(self) -> None:
        """Drop every cached replay (the correction factors changed wholesale)."""
        self._replays.clear()
        self.columns.mark_all()

    def replay_valid_until(self, node: str, now: float) -> float:
        """Until when what the node's cached replay says at ``now`` holds.

        The next predicted start or finish after ``now`` (a queued pod that starts changes
        the running count even when no pod finishes then), capped by the replay's validity.
        """
        cached = self._replays.get(node)
        if cached is None:
            return -math.inf
        starts = [pl.start_s for pl in cached[2].placements.values() if pl.start_s > now]
        return min(cached[1], *starts) if starts else cached[1]

    def _bump(self, entry: NodeEntry) -> None:
        """The node changed: its cached replay and its snapshot columns are out of date."""
        entry.version += 1
        self.columns.mark(entry.obs.name)
        for changed in self.on_node_changed:
            changed(entry.obs.name)

    def summary(self) -> dict[str, object]:
        """Counts for /metrics and /debug/state."""
        return {
            "nodes": len(self.nodes),
            "nodes_with_profile": sum(1 for e in self.nodes.values() if e.profile is not None),
            "unfinished_pods": len(self.pod_node),
            "synced": self.synced,
        }

    def node_names(self) -> Iterable[str]:
        """Names of every known node."""
        return self.nodes.keys()


def _with_bind(pod: PodObservation, bind_s: float, exact: bool) -> PodObservation:
    return replace(pod, bind_s=bind_s, bind_exact=exact)
