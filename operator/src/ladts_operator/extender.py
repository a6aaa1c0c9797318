"""The extender's request/response logic for filter, prioritize and bind (pure, no I/O).

Wire format: kube-scheduler's ``extender/v1`` types, which have no JSON tags, so keys are Go
field names (PascalCase) and Go decodes them case-insensitively. Requests are read
case-insensitively; answers are always PascalCase (``docs/serving.md``).

- ``ExtenderArgs``: ``{"Pod": <Pod>, "Nodes": <NodeList>|null, "NodeNames": [..]|null}``;
  names only (``nodeCacheCapable: true``) and full ``Nodes`` are both accepted, and the answer
  uses the form of the request.
- Filter answers every passing node (an empty answer would reject all), ``FailedNodes`` for
  nodes preemption could free (stale metrics with ``require_fresh_metrics``), and
  ``FailedAndUnresolvableNodes`` for those it cannot (not ready, cordoned, no GPU profile,
  model does not fit, bad pod annotations: evicting pods would not help, so preemption must
  not try).
- Prioritize answers ``[{"Host", "Score"}]`` for every node of the request, 0..10
  (:func:`ladts_operator.scoring.map_scores`).
- Non-AIGC pods (no ``ladts.io/model``) pass filter untouched and score 0 everywhere.
- A node the watch has not seen: with ``Nodes`` it is read from the request; by name only
  it passes filter and scores 0 (counted as ``unknown_node``), never rejected.
- Malformed bodies get a 4xx with a message; nothing here raises on any input.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from ladts_operator import jsonio
from ladts_operator.columns import MetricsColumns, filter_reason
from ladts_operator.objects import (
    MODEL_ANNOTATION,
    BadAnnotation,
    NodeObservation,
    PodObservation,
    PodWork,
    parse_node,
    parse_work,
    pod_requests,
    timestamp_s,
)
from ladts_operator.scoring import HeuristicScorer, Scored, Scorer, score_array
from ladts_operator.state import ClusterState, resolve_profile
from ladts_operator.telemetry import Telemetry
from ladts_operator.trace import TraceLog
from ladts_policy.features import ClusterSnapshot, TaskSpec, encode
from ladts_policy.node_replay import ObservedNode, replay_node
from ladts_policy.node_snapshot import (
    FLAG_FIELDS,
    NO_SERVER_ROW,
    ROW_FIELDS,
    NodeFacts,
    row_values,
    snapshot_from_rows,
)

log = logging.getLogger(__name__)


class RequestError(ValueError):
    """A request the extender cannot read: answered with ``status`` and the message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status and a JSON-serialisable body."""

    status: int
    """HTTP status."""

    body: Any
    """JSON body."""


@dataclass(frozen=True)
class NodeMetrics:
    """Prometheus facts about one node."""

    vram_free_gib: float | None
    """Free GPU memory, GiB (None when the node's exporter does not say)."""

    timestamp_s: float
    """Timestamp of the newest sample, Unix seconds."""


class MetricsView(Protocol):
    """The latest Prometheus values per node (kept by the poller)."""

    def node_metrics(self, node: str) -> NodeMetrics | None:
        """Last good metrics of a node, None when never seen."""
        ...


class EventSink(Protocol):
    """Posts Kubernetes Events without blocking the caller."""

    def emit(self, pod: Mapping[str, Any], reason: str, message: str, warning: bool) -> None:
        """Queue an Event on ``pod`` (``{"namespace", "name", "uid"}``)."""
        ...


@dataclass(frozen=True)
class ExtenderArgs:
    """A parsed filter/prioritize request."""

    pod: Mapping[str, Any]
    """The Pod object."""

    names: list[str]
    """Candidate node names in request order (deduplicated)."""

    nodes: dict[str, Mapping[str, Any]] | None
    """Full Node objects by name when the request carried ``Nodes``, else None."""


@dataclass(frozen=True)
class BindArgs:
    """A parsed bind request."""

    pod_name: str
    """``PodName``."""

    pod_namespace: str
    """``PodNamespace``."""

    pod_uid: str
    """``PodUID``."""

    node: str
    """``Node``."""


@dataclass
class Decision:
    """One prioritize decision, kept for bind, /debug/state and the trace.

    The last 1 000 are kept, so what they hold is built to cost the garbage collector
    nothing per node: numpy arrays (never tracked) and the node names as one tuple shared
    by the decisions over the same node list (untracked by the collector's first pass), not
    lists, whose every element each pass over their generation would visit again
    (docs/serving.md, "Garbage collection").
    """

    pod_uid: str
    pod: str
    time: float
    nodes: tuple[str, ...]
    scores: np.ndarray
    """int64 [N]: the extender scores, in the order of ``nodes``."""
    scored: Scored
    pod_obj: Mapping[str, Any] = field(default_factory=dict)
    features: dict[str, Any] = field(default_factory=dict)


def _ci(obj: Any) -> dict[str, Any]:
    """A mapping's keys lower-cased (Go's case-insensitive decoding)."""
    if not isinstance(obj, Mapping):
        return {}
    return {str(k).lower(): v for k, v in obj.items()}


def _ci_get(obj: Any, *path: str) -> Any:
    for key in path:
        obj = _ci(obj).get(key.lower())
    return obj


def pod_ref(pod: Mapping[str, Any]) -> dict[str, str]:
    """``{"namespace", "name", "uid"}`` of a Pod object (empty strings when absent)."""
    meta = _ci_get(pod, "metadata")
    return {
        "namespace": str(_ci_get(meta, "namespace") or "default"),
        "name": str(_ci_get(meta, "name") or ""),
        "uid": str(_ci_get(meta, "uid") or ""),
    }


def pod_annotations(pod: Mapping[str, Any]) -> dict[str, str]:
    """The Pod's annotations (string values only)."""
    ann = _ci_get(pod, "metadata", "annotations")
    if not isinstance(ann, Mapping):
        return {}
    return {str(k): v for k, v in ann.items() if isinstance(v, str)}


def parse_json(raw: bytes, max_bytes: int) -> Any:
    """Decode a request body.

    Raises:
        RequestError: too large (413), not UTF-8 JSON (400).
    """
    if len(raw) > max_bytes:
        raise RequestError(413, "too_large", f"body of {len(raw)} bytes exceeds {max_bytes}")
    try:
        return jsonio.loads(raw)
    except jsonio.DecodeError as exc:
        raise RequestError(400, "bad_json", f"body is not JSON: {exc}") from None


def parse_extender_args(data: Any) -> ExtenderArgs:
    """Read ``ExtenderArgs``.

    Raises:
        RequestError: 400 naming the offending field.
    """
    if not isinstance(data, Mapping):
        raise RequestError(400, "bad_type", "ExtenderArgs must be a JSON object")
    args = _ci(data)
    pod = args.get("pod")
    if not isinstance(pod, Mapping):
        raise RequestError(400, "bad_type", "Pod must be a Pod object")
    if not isinstance(_ci_get(pod, "metadata"), Mapping):
        raise RequestError(400, "bad_type", "Pod.metadata must be an object")
    raw_names, raw_nodes = args.get("nodenames"), args.get("nodes")
    nodes: dict[str, Mapping[str, Any]] | None = None
    names: list[str] = []
    if raw_nodes is not None:
        items = _ci_get(raw_nodes, "items") if isinstance(raw_nodes, Mapping) else None
        if not isinstance(items, list):
            raise RequestError(400, "bad_type", "Nodes must be a NodeList with an items list")
        nodes = {}
        for i, item in enumerate(items):
            name = _ci_get(item, "metadata", "name")
            if not isinstance(name, str) or not name:
                raise RequestError(400, "bad_type", f"Nodes.items[{i}] has no metadata.name")
            nodes[name] = item
        names = list(nodes)
    elif raw_names is not None:
        # set(map(type, ...)) walks the list in C: a 500-name check costs microseconds.
        if not isinstance(raw_names, list) or not set(map(type, raw_names)) <= {str}:
            raise RequestError(400, "bad_type", "NodeNames must be a list of strings")
        names = list(dict.fromkeys(raw_names))
    else:
        raise RequestError(400, "no_nodes", "ExtenderArgs has neither Nodes nor NodeNames")
    return ExtenderArgs(pod=pod, names=names, nodes=nodes)


def parse_bind_args(data: Any) -> BindArgs:
    """Read ``ExtenderBindingArgs``.

    Raises:
        RequestError: 400 naming the offending field.
    """
    if not isinstance(data, Mapping):
        raise RequestError(400, "bad_type", "ExtenderBindingArgs must be a JSON object")
    args = _ci(data)
    values = {}
    for key in ("PodName", "PodNamespace", "PodUID", "Node"):
        value = args.get(key.lower())
        if not isinstance(value, str) or (not value and key != "PodNamespace"):
            raise RequestError(400, "bad_type", f"{key} must be a non-empty string")
        values[key] = value
    return BindArgs(values["PodName"], values["PodNamespace"] or "default", values["PodUID"],
                    values["Node"])


def filter_result(
    args: ExtenderArgs,
    passing: list[str],
    failed: Mapping[str, str],
    unresolvable: Mapping[str, str],
) -> dict[str, Any]:
    """``ExtenderFilterResult`` in the request's form (names or full nodes)."""
    if args.nodes is not None:
        nodes: Any = {"metadata": {}, "items": [args.nodes[n] for n in passing]}
        names: Any = None
    else:
        nodes, names = None, passing
    return {
        "Nodes": nodes,
        "NodeNames": names,
        "FailedNodes": dict(failed),
        "FailedAndUnresolvableNodes": dict(unresolvable),
        "Error": "",
    }


class Extender:
    """Answers filter, prioritize and bind over a :class:`ClusterState`."""

    def __init__(
        self,
        state: ClusterState,
        *,
        scorer: Scorer,
        fallback: HeuristicScorer,
        telemetry: Telemetry | None = None,
        trace: TraceLog | None = None,
        metrics: MetricsView | None = None,
        events: EventSink | None = None,
        metrics_ttl_s: float = 120.0,
        require_fresh_metrics: bool = False,
        max_body_bytes: int = 1024 * 1024,
        debug_decisions: int = 50,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.scorer = scorer
        self.fallback = fallback
        self.telemetry = telemetry or Telemetry()
        self.trace = trace
        self.metrics = metrics
        self.events = events
        self.metrics_ttl_s = metrics_ttl_s
        self.require_fresh_metrics = require_fresh_metrics
        self.max_body_bytes = max_body_bytes
        self.clock = clock
        self.decision_count = 0
        self.recent: OrderedDict[str, Decision] = OrderedDict()  # by pod UID
        self.debug_decisions = debug_decisions
        self._warned: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.known_models = {m for p in state.profiles.values() for m in p.timings}
        self._metric_cols = MetricsColumns(state.columns)
        self._last_names_list: list[str] = []
        self._last_names: tuple[str, ...] = ()

    # --- HTTP-facing entry points (never raise) ----------------------------------------

    def handle(self, verb: str, raw: bytes) -> Reply:
        """Answer one POST of ``verb`` (``filter`` or ``prioritize``)."""
        try:
            args = parse_extender_args(parse_json(raw, self.max_body_bytes))
            if verb == "filter":
                return Reply(200, self.filter(args))
            return Reply(200, self.prioritize(args))
        except RequestError as exc:
            self.telemetry.rejected.labels(verb=verb, reason=exc.reason).inc()
            body: Any = {"Error": str(exc)}
            return Reply(exc.status, body)
        except Exception as exc:  # a bug must not become a 5xx storm; say so and count it
            log.exception("%s failed", verb)
            self.telemetry.fallbacks.labels(reason="internal_error").inc()
            if verb == "filter":
                return Reply(200, {"Nodes": None, "NodeNames": None, "FailedNodes": {},
                                   "FailedAndUnresolvableNodes": {},
                                   "Error": f"ladts internal error: {exc}"})
            return Reply(200, [])

    # --- filter ----------------------------------------------------------------------

    def filter(self, args: ExtenderArgs) -> dict[str, Any]:
        """``ExtenderFilterResult`` for a parsed request."""
        annotations = pod_annotations(args.pod)
        if MODEL_ANNOTATION not in annotations:
            return filter_result(args, list(args.names), {}, {})
        try:
            work = self._work(annotations)
        except BadAnnotation as exc:
            self._bad_annotation(args.pod, str(exc))
            reason = f"ladts: {exc}"
            return filter_result(args, [], {}, {n: reason for n in args.names})
        now = self.clock()
        names = args.names
        cols = self.state.columns
        idx_N = cols.lookup(names)
        known_N = idx_N >= 0
        cols.refresh_nodes(idx_N[known_N])
        # Nodes the watch delivered are judged from the cached verdicts; the rest (never
        # seen, or only from a bound pod) one by one from the request.
        fast_N = known_N.copy()
        fast_N[known_N] = cols.seen_C[idx_N[known_N]]
        reason_N = np.full(len(names), None, dtype=object)
        reason_N[fast_N] = cols.filter_reasons(work.model, idx_N[fast_N])
        unresolvable: dict[str, str] = {}
        slow_pass_N = np.zeros(len(names), dtype=bool)
        unknown_N = np.zeros(len(names), dtype=bool)
        for k in np.flatnonzero(~fast_N).tolist():
            obs, profile, note = self._node(names[k], args)
            if obs is None:  # passes, and is scored 0 (never rejected)
                self.telemetry.fallbacks.labels(reason="unknown_node").inc()
                unknown_N[k] = slow_pass_N[k] = True
                continue
            verdict = filter_reason(obs, profile, note, work.model)
            if verdict is None:
                slow_pass_N[k] = True
            else:
                unresolvable[names[k]] = verdict
        pass_N = (fast_N & (reason_N == None)) | slow_pass_N  # noqa: E711 (elementwise)
        for k in np.flatnonzero(fast_N & ~pass_N).tolist():
            unresolvable[names[k]] = reason_N[k]
        failed: dict[str, str] = {}
        if self.require_fresh_metrics and self.metrics is not None:
            age_N = self._metrics_ages(names, idx_N, now)
            for k in np.flatnonzero(pass_N & ~unknown_N & (age_N > self.metrics_ttl_s)).tolist():
                age = float(age_N[k])
                shown = "never seen" if math.isinf(age) else f"{age:.0f} s old"
                failed[names[k]] = f"metrics stale ({shown}, TTL {self.metrics_ttl_s:g} s)"
                pass_N[k] = False
        passing = [names[k] for k in np.flatnonzero(pass_N).tolist()]
        return filter_result(args, passing, failed, unresolvable)

    def _metrics_ages(self, names: list[str], idx_N: np.ndarray, now: float) -> np.ndarray:
        """Age of each node's newest sample, s (inf: never seen; 0 without metrics)."""
        ages = np.zeros(idx_N.shape[0])
        if self.metrics is None:
            return ages
        known = idx_N >= 0
        stamp_K, _ = self._metric_cols.arrays(self.metrics, idx_N[known])
        ages[known] = np.where(np.isnan(stamp_K), np.inf, np.maximum(now - stamp_K, 0.0))
        for k in np.flatnonzero(~known).tolist():
            ages[k] = self._metrics_age(names[k], now)
        return ages

    # --- prioritize ------------------------------------------------------------------

    def prioritize(self, args: ExtenderArgs) -> list[dict[str, Any]]:
        """``HostPriorityList`` for a parsed request."""
        annotations = pod_annotations(args.pod)
        if MODEL_ANNOTATION not in annotations or not args.names:
            return [{"Host": n, "Score": 0} for n in args.names]
        try:
            work = self._work(annotations)
        except BadAnnotation as exc:
            self._bad_annotation(args.pod, str(exc))
            return [{"Host": n, "Score": 0} for n in args.names]
        now = self.clock()
        snapshot, task = self.snapshot(args, work, now=now)
        features = encode(snapshot, task, node_slots=snapshot.num_nodes)
        mask_N = features.node_mask_S
        self.decision_count += 1
        scored = self._score(snapshot, task, features, args.names)
        scores_N = score_array(scored.preference_N, mask_N)
        scores = scores_N.tolist()
        ref = pod_ref(args.pod)
        # What is kept holds arrays and a shared tuple, no per-node list (see Decision).
        decision = Decision(ref["uid"], f"{ref['namespace']}/{ref['name']}", now,
                            self._names_tuple(args.names), scores_N,
                            replace(scored, preference_N=np.asarray(scored.preference_N,
                                                                    dtype=float)),
                            pod_obj=args.pod)
        if scored.chosen is not None:
            self.telemetry.decisions.labels(node=args.names[scored.chosen],
                                            scorer=scored.scorer).inc()
        # Arrays stay numpy until a trace record or /debug/state needs them as JSON.
        decision.features = {
            "node_rows": features.node_rows_SF,
            "task": features.task_T,
            "global": features.global_G,
            "mask": mask_N,
            "est_delay_s": snapshot.est_delay_s_N,
        }
        self._remember(decision)
        if self.trace is not None:
            # Built and encoded on the trace's writer thread, not on the request path.
            self.trace.write(lambda: self._decision_record(decision, task))
            self.telemetry.trace_records.labels(kind="decision").inc()
        return [{"Host": n, "Score": s} for n, s in zip(args.names, scores, strict=True)]

    def _score(
        self, snapshot: ClusterSnapshot, task: TaskSpec, features: Any, names: list[str]
    ) -> Scored:
        if self.scorer is self.fallback:
            return self.fallback.score(snapshot, task, features, self.decision_count)
        try:
            score_fn: Any = self.scorer.score
            return score_fn(snapshot, task, features, self.decision_count, node_names=names)  # type: ignore[no-any-return]
        except Exception as exc:  # the policy failing must not fail scheduling
            log.error("policy scorer failed, using %s: %s", self.fallback.name, exc)
            self.telemetry.fallbacks.labels(reason="policy_error").inc()
            scored = self.fallback.score(snapshot, task, features, self.decision_count)
            return Scored(scored.preference_N, scored.chosen, scored.scorer, scored.version,
                          fallback=f"policy error: {exc}")

    def snapshot(
        self, args: ExtenderArgs, work: PodWork, *, now: float
    ) -> tuple[ClusterSnapshot, TaskSpec]:
        """The features' view of this decision over the request's nodes."""
        names = args.names
        cols = self.state.columns
        idx_N = cols.lookup(names)
        known_N = idx_N >= 0
        idx_K = idx_N[known_N]
        cols.refresh_nodes(idx_K)
        known_N[known_N] = cols.present_C[idx_K]  # a deleted node reads as unknown
        idx_K = idx_N[known_N]
        rows_NR = np.empty((len(names), len(ROW_FIELDS)))
        flags_NF = np.empty((len(names), len(FLAG_FIELDS)))
        rows_NR[known_N] = cols.rows(work.model, idx_K, now)
        flags_NF[known_N] = cols.flags(idx_K)
        if self.metrics is not None:
            self._apply_metrics(flags_NF, known_N, idx_K, cols.has_profile_C[idx_K], now)
        for k in np.flatnonzero(~known_N).tolist():
            facts = self._facts(names[k], args, now)
            rows_NR[k] = (NO_SERVER_ROW if facts.server is None
                          else row_values(facts.server, work.model, now, facts.loaded))
            flags_NF[k] = (1.0, float(facts.ready), 0.0, 0.0, math.nan)
        created = _ci_get(args.pod, "metadata", "creationTimestamp")
        created_s = timestamp_s(created)
        wait = max(now - created_s, 0.0) if created_s is not None else 0.0
        task = TaskSpec(work.model, work.steps, input_mbit=work.input_mbit, wait_s=wait)
        requests = self.state.requests
        uid = _ci_get(args.pod, "metadata", "uid")
        # The pod being scheduled counts in both, even before the watch delivered it.
        if uid is not None:
            requests.note(str(uid), work.model, created_s if created_s is not None else now)
        waiting = self.state.unscheduled
        pending = len(waiting) + (0 if uid is not None and str(uid) in waiting else 1)
        popularity = requests.shares(now, self.known_models)
        return snapshot_from_rows(rows_NR, flags_NF, task, now=now, pending=pending,
                                  popularity=popularity), task

    def _apply_metrics(self, flags_NF: np.ndarray, known_N: np.ndarray, idx_K: np.ndarray,
                       scored_K: np.ndarray, now: float) -> None:
        """Fill metrics age and free GPU memory of known nodes; count missing and stale."""
        stamp_K, free_K = self._metric_cols.arrays(self.metrics, idx_K)
        missing_K = np.isnan(stamp_K)
        age_K = np.where(missing_K, np.inf, np.maximum(now - stamp_K, 0.0))
        stale_K = ~missing_K & (age_K > self.metrics_ttl_s)
        fresh_K = ~missing_K & ~stale_K
        for reason, hit_K in (("missing_metrics", missing_K), ("stale_metrics", stale_K)):
            count = int((hit_K & scored_K).sum())
            if count:
                self.telemetry.fallbacks.labels(reason=reason).inc(count)
        flags_NF[known_N, 3] = np.where(fresh_K, age_K, 0.0)
        flags_NF[known_N, 4] = np.where(fresh_K, free_K, np.nan)

    def _facts(self, name: str, args: ExtenderArgs, now: float) -> NodeFacts:
        """A node the state store does not hold: read from the request, if it carries it."""
        obs, profile, _ = self._node(name, args)
        if obs is None or profile is None:
            return NodeFacts(server=None, ready=False)
        # Seen only in the request: an idle node of its profile.
        server = replay_node(
            ObservedNode(obs.concurrency, profile.vram_gib, profile.timings,
                         resident=obs.declared_resident), now=now).server
        return NodeFacts(server=server, ready=obs.ready and not obs.cordoned,
                         loaded=obs.declared_resident)

    # --- bind ------------------------------------------------------------------------

    def decision_annotation(self, args: BindArgs, *, now: float) -> str:
        """The ``ladts.io/decision`` value for a bind (JSON)."""
        decision = self.recent.get(args.pod_uid)
        record: dict[str, Any] = {"node": args.node, "time": round(now, 3)}
        if decision is not None:
            s = decision.scored
            record.update(
                scorer=s.scorer,
                version=s.version,
                fallback=s.fallback,
                seed=s.seed,
                scores=dict(zip(decision.nodes, decision.scores.tolist(), strict=True)),
            )
        else:
            record.update(scorer=None, fallback="no prioritize decision seen for this pod")
        return json.dumps(record, separators=(",", ":"), sort_keys=True)

    def bound(self, args: BindArgs, pod: Mapping[str, Any] | None, *, now: float) -> None:
        """Record a successful bind in the state at once (the watch confirms it later)."""
        self.telemetry.binds.labels(result="ok").inc()
        annotations = pod_annotations(pod) if pod is not None else {}
        if pod is not None:
            try:
                work: PodWork | None = self._work(annotations)
            except BadAnnotation:
                work = None
            if work is not None:
                cpu, mem = pod_requests(pod)
                self.state.upsert_pod(PodObservation(
                    uid=args.pod_uid, namespace=args.pod_namespace, name=args.pod_name,
                    work=work, error=None, node=args.node, bind_s=now, finished=False,
                    finish_s=None, cpu=cpu, memory_gib=mem, bind_exact=True,
                    created_s=timestamp_s(_ci_get(pod, "metadata", "creationTimestamp"))))
        if self.trace is not None:
            self.trace.write({"kind": "bind", "time": now, "pod_uid": args.pod_uid,
                              "pod": f"{args.pod_namespace}/{args.pod_name}",
                              "node": args.node})
            self.telemetry.trace_records.labels(kind="bind").inc()

    def pod_for_bind(self, uid: str) -> Mapping[str, Any] | None:
        """The Pod object of the last decision for ``uid`` (from the prioritize request)."""
        decision = self.recent.get(uid)
        return decision.pod_obj if decision is not None else None

    # --- helpers ---------------------------------------------------------------------

    def _names_tuple(self, names: list[str]) -> tuple[str, ...]:
        """``names`` as a tuple, the same object as the last one when the list is equal.

        kube-scheduler sends the same node list to decision after decision; sharing one
        tuple keeps 500 references per decision out of the collector's young generation.
        """
        if names != self._last_names_list:
            self._last_names_list = names
            self._last_names = tuple(names)
        return self._last_names

    def _work(self, annotations: Mapping[str, str]) -> PodWork:
        work = parse_work(annotations)
        if work.model not in self.known_models:
            known = ", ".join(sorted(self.known_models))
            raise BadAnnotation(
                f"annotation {MODEL_ANNOTATION}={work.model!r} names no model of the GPU "
                f"profiles ({known})"
            )
        return work

    def _node(
        self, name: str, args: ExtenderArgs
    ) -> tuple[NodeObservation | None, Any, str]:
        entry = self.state.nodes.get(name)
        if entry is not None and entry.profile_note != "node not seen by the watch yet":
            return entry.obs, entry.profile, entry.profile_note
        if args.nodes is not None and name in args.nodes:
            try:
                obs = parse_node(args.nodes[name])
            except ValueError:
                return None, None, "unreadable node"
            profile, note = resolve_profile(obs.labels, self.state.profiles)
            return obs, profile, note
        return None, None, "node not seen by the watch yet"

    def _metrics_age(self, name: str, now: float) -> float:
        if self.metrics is None:
            return 0.0
        m = self.metrics.node_metrics(name)
        return math.inf if m is None else max(now - m.timestamp_s, 0.0)

    def _bad_annotation(self, pod: Mapping[str, Any], message: str) -> None:
        self.telemetry.fallbacks.labels(reason="bad_annotation").inc()
        ref = pod_ref(pod)
        key = (ref["uid"], message)
        if key in self._warned:
            return
        self._warned[key] = None
        while len(self._warned) > 1000:
            self._warned.popitem(last=False)
        if self.events is not None:
            self.events.emit(ref, "LadtsBadAnnotation", message, True)

    def _remember(self, decision: Decision) -> None:
        self.recent[decision.pod_uid] = decision
        self.recent.move_to_end(decision.pod_uid)
        while len(self.recent) > max(self.debug_decisions, 1000):
            self.recent.popitem(last=False)

    def _decision_record(self, decision: Decision, task: TaskSpec) -> dict[str, Any]:
        s = decision.scored
        chosen = decision.nodes[s.chosen] if s.chosen is not None else None
        return {
            "kind": "decision",
            "time": decision.time,
            "pod_uid": decision.pod_uid,
            "pod": decision.pod,
            "model": task.model,
            "steps": task.steps,
            "nodes": decision.nodes,
            "features": features_json(decision.features),
            "preference": _finite_array(np.asarray(s.preference_N, dtype=float)),
            "scores": decision.scores,
            "chosen": chosen,
            "scorer": s.scorer,
            "version": s.version,
            "seed": s.seed,
            "fallback": s.fallback,
        }

    def debug_state(self, limit: int | None = None) -> dict[str, Any]:
        """The JSON of ``GET /debug/state``."""
        limit = self.debug_decisions if limit is None else limit
        decisions = list(self.recent.values())[-limit:]
        nodes = {}
        for name, entry in self.state.nodes.items():
            nodes[name] = {
                "ready": entry.obs.ready,
                "cordoned": entry.obs.cordoned,
                "profile": entry.profile.name if entry.profile else None,
                "profile_note": entry.profile_note,
                "queue": [p.uid for p in self.state.queue(name)],
                "resident": list(self.state.resident(name)),
                "resident_from_metrics": (list(entry.metric_resident)
                                          if entry.metric_resident is not None else None),
            }
        return {
            "summary": self.state.summary(),
            "scorer": {"name": self.scorer.name, "version": self.scorer.version},
            "service_time_correction": self.state.corrector.as_dict(),
            "nodes": nodes,
            "decisions": [
                {"pod_uid": d.pod_uid, "pod": d.pod, "time": d.time, "nodes": d.nodes,
                 "scores": d.scores, "chosen": (d.nodes[d.scored.chosen]
                                                if d.scored.chosen is not None else None),
                 "scorer": d.scored.scorer, "version": d.scored.version,
                 "seed": d.scored.seed, "fallback": d.scored.fallback,
                 "features": features_json(d.features)}
                for d in decisions
            ],
        }


def features_json(features: Mapping[str, Any]) -> dict[str, Any]:
    """A decision's features for JSON: arrays rounded to 5 decimals, non-finite as NaN.

    Arrays stay numpy (``jsonio.dumps`` writes them, NaN as null) so a 500-node record
    costs no Python loop.
    """
    out: dict[str, Any] = {}
    for key, value in features.items():
        if key == "est_delay_s":
            out[key] = _finite_array(np.asarray(value, dtype=float))
        elif isinstance(value, np.ndarray) and value.dtype == bool:
            out[key] = value  # the mask: written as true/false
        elif hasattr(value, "round"):
            out[key] = value.round(5)
        else:
            out[key] = value
    return out


def _finite_array(x: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(x), x, np.nan)
