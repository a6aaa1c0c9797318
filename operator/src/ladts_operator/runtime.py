"""Assembly of one ``ladts serve`` process: profiles, state, scorers, extender, app.

Shared by the cluster mode (:mod:`ladts_operator.kopf_handlers` feeds the state) and the
offline mode (a simulated cluster), so both serve exactly the same extender.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ladts_operator.extender import BindArgs, EventSink, Extender, MetricsView
from ladts_operator.gc_policy import GcKeeper
from ladts_operator.onnx_policy import OnnxScorer, PolicyLoadError
from ladts_operator.scoring import HeuristicScorer
from ladts_operator.settings import ServeSettings
from ladts_operator.state import ClusterState, Completion, NodeEntry
from ladts_operator.telemetry import Telemetry
from ladts_operator.trace import (
    NodeRecorder,
    TraceLog,
    completion_record,
    read_records,
    restore_corrector,
)
from ladts_policy.bundled import BundledPolicyMissing, bundled_policy_path
from ladts_policy.service_estimate import ServiceTimeCorrector
from ladts_policy.sim.config.cluster_config import GpuProfile
from ladts_policy.sim.config.cluster_schema import (
    builtin_gpu_profiles,
    parse_profiles_document,
    read_yaml,
)

log = logging.getLogger(__name__)


def _check_bundled() -> None:
    """Raise PolicyLoadError naming the regenerating command if the bundled file is absent."""
    try:
        bundled_policy_path()
    except BundledPolicyMissing as exc:
        raise PolicyLoadError(str(exc)) from None


def load_profiles(path: str | None) -> dict[str, GpuProfile]:
    """GPU profiles from a file (the format of the shipped one), or the shipped profiles."""
    if path is None:
        return builtin_gpu_profiles()
    text = Path(path).read_text()
    return parse_profiles_document(read_yaml(text, path), path)


class PolicyManager:
    """Keeps the extender's scorer: the ONNX policy when one loads, else the heuristic."""

    def __init__(self, settings: ServeSettings, extender: Extender) -> None:
        self.settings = settings
        self.extender = extender
        self.onnx: OnnxScorer | None = None
        self.last_error: str | None = None
        self._counted_failures = 0
        self.poll()

    def poll(self) -> None:
        """Load or reload the policy file; never raises."""
        path = self.settings.policy_path
        if path is None:
            self._publish()
            return
        if self.onnx is None:
            try:
                if self.settings.uses_bundled_policy:
                    _check_bundled()
                self.onnx = OnnxScorer(path, threads=self.settings.policy_threads,
                                       noise_seed=self.settings.noise_seed)
                self.last_error = None
                log.info("policy %s loaded (%s), version %s", path, self.source,
                         self.onnx.version)
            except PolicyLoadError as exc:
                if str(exc) != self.last_error:
                    self.extender.telemetry.policy_load_failures.inc()
                    log.error("policy not loaded, serving %s: %s",
                              self.extender.fallback.name, exc)
                self.last_error = str(exc)
        else:
            self.onnx.maybe_reload()
            self.last_error = self.onnx.last_error
            new = self.onnx.load_failures - self._counted_failures
            if new > 0:
                self.extender.telemetry.policy_load_failures.inc(new)
                self._counted_failures = self.onnx.load_failures
        self._publish()

    @property
    def source(self) -> str:
        """Where the served policy comes from: ``bundled``, ``file`` or ``heuristic``."""
        if self.onnx is None:
            return "heuristic"
        return "bundled" if self.settings.uses_bundled_policy else "file"

    def _publish(self) -> None:
        scorer = self.onnx if self.onnx is not None else self.extender.fallback
        self.extender.scorer = scorer
        self.extender.telemetry.set_policy(scorer.name, scorer.version, self.source)

    def status(self) -> str:
        """One line for /readyz."""
        if self.onnx is not None:
            extra = f" (last reload failed: {self.last_error})" if self.last_error else ""
            origin = ("the bundled policy" if self.source == "bundled"
                      else f"policy file {self.onnx.path}")
            return f"serving ONNX policy {self.onnx.version} from {origin}{extra}"
        why = f"; policy not loaded: {self.last_error}" if self.last_error else "; no policy"
        return f"serving heuristic {self.extender.fallback.heuristic}{why}"

    async def run(self) -> None:
        """Poll forever (cancel to stop)."""
        while True:
            await asyncio.sleep(self.settings.policy_poll_s)
            self.poll()


@dataclass
class Runtime:
    """The parts of one serving process."""

    settings: ServeSettings
    state: ClusterState
    extender: Extender
    policy: PolicyManager
    trace: TraceLog | None
    gc: GcKeeper
    """The garbage-collector policy: :meth:`synced` freezes, :meth:`GcKeeper.run` refreezes."""

    def synced(self) -> None:
        """Call once the state is built: time the collector and freeze the heap built so far."""
        self.gc.install()
        self.gc.freeze()

    def ready(self) -> tuple[bool, str]:
        """(ready, message) for /readyz: ready once the state has synced."""
        if not self.state.synced:
            return False, "state not synced yet"
        return True, f"ready: {self.policy.status()}"


def build_runtime(
    settings: ServeSettings,
    *,
    profiles: Mapping[str, GpuProfile] | None = None,
    metrics: MetricsView | None = None,
    events: EventSink | None = None,
) -> Runtime:
    """Build state, scorers and extender from the settings."""
    profiles = load_profiles(settings.profiles) if profiles is None else profiles
    state = ClusterState(
        profiles, corrector=ServiceTimeCorrector(), overrun_grace_s=settings.overrun_grace_s,
        completed_retention_s=settings.completed_retention_s,
    )
    trace = None
    if settings.trace_path:
        trace = TraceLog(Path(settings.trace_path), max_bytes=settings.trace_max_bytes,
                         backups=settings.trace_backups)
    telemetry = Telemetry()
    fallback = HeuristicScorer(settings.heuristic, seed=settings.noise_seed)
    extender = Extender(
        state, scorer=fallback, fallback=fallback, telemetry=telemetry, trace=trace,
        metrics=metrics, events=events, metrics_ttl_s=settings.metrics_ttl_s,
        require_fresh_metrics=settings.require_fresh_metrics,
        max_body_bytes=settings.max_body_bytes, debug_decisions=settings.debug_decisions,
    )
    if trace is not None:
        restored = restore_corrector(
            state.corrector, read_records(trace.path, settings.trace_backups))
        if restored:
            log.info("service-time factors rebuilt from %d trace records of %s", restored,
                     trace.path)

        def completion(done: Completion) -> None:
            trace.write(completion_record(done, now=time.time()))
            telemetry.trace_records.labels(kind="completion").inc()

        def node_deleted(name: str) -> None:
            trace.write({"kind": "node_deleted", "time": time.time(), "node": name})
            telemetry.trace_records.labels(kind="node_deleted").inc()

        recorder = NodeRecorder(trace)

        def node_upserted(entry: NodeEntry) -> None:
            if recorder(entry):
                telemetry.trace_records.labels(kind="node").inc()

        state.on_completion.append(completion)
        state.on_node_deleted.append(node_deleted)
        state.on_node_upserted.append(node_upserted)
    policy = PolicyManager(settings, extender)
    return Runtime(settings, state, extender, policy, trace,
                   GcKeeper(telemetry, interval_s=settings.gc_freeze_s))


class OfflineBinder:
    """Binds into the offline state only (no API): the extender records the bind itself."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state

    async def bind(self, args: BindArgs, annotation: str) -> None:
        """Accept any node the state knows."""
        if args.node not in self.state.nodes:
            raise ValueError(f"unknown node {args.node}")
