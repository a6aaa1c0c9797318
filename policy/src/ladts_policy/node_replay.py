"""Rebuild a node's :class:`NodeServer` from what the Kubernetes API shows (no numpy).

The operator never sees a node server's internals. It sees, per node, the AIGC pods bound to
it in bind order, their model and steps, which of them finished and when, and (from
completions or a model-server metric) which models are loaded. :func:`replay_node` turns
that into the :class:`~ladts_policy.sim.dynamics.node_service.NodeServer` the simulator would hold,
so the simulator and the operator compute a task's ``est_delay_s`` and the node's backlog
with one code path (``NodeServer.what_if`` / ``busy_until``).

Replay rules:

- Timings are the node's GPU profile scaled per model by the observed/predicted factor of
  :class:`~ladts_policy.service_estimate.ServiceTimeCorrector` (one factor for load and
  service alike: the estimator sees whole requests).
- The server restarts at the node's last observed completion (the time its FIFO last
  advanced), holding the resident models, most recently used last, as many as fit.
- The unfinished pods are placed in bind order, each at its bind time (but not before that
  restart), exactly as the simulator placed them. With concurrency 1 the head pod's start
  is then exact: ``max(bind, last completion)``. With higher concurrency it is the FIFO's
  estimate.
- A pod that the API still shows unfinished although its predicted finish has passed has
  overrun its estimate; it is replayed as finishing ``overrun_grace_s`` after ``now`` (the
  estimator learns the overrun when it completes), so its successors are not shown as
  starting in the past.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ladts_policy.sim.config.cluster_config import ModelTiming
from ladts_policy.sim.dynamics.node_service import NodeServer, Placement, ServiceTask


@dataclass(frozen=True)
class ObservedPod:
    """One AIGC pod bound to the node, as the API shows it."""

    uid: str
    """Pod UID (joins decisions, completions and the trace)."""

    model: str
    """Model name from ``ladts.io/model``."""

    steps: int
    """Denoising steps from ``ladts.io/steps``."""

    bind_s: float
    """When the pod was bound (Unix seconds)."""

    cpu: float = 0.0
    """CPU request, cores."""

    memory_gib: float = 0.0
    """Host memory request, GiB."""


@dataclass(frozen=True)
class ObservedNode:
    """One node's static description and its unfinished pods."""

    concurrency: int
    """Pods the node's model server runs at once."""

    vram_gib: float
    """Usable GPU memory, GiB (from the GPU profile)."""

    timings: Mapping[str, ModelTiming]
    """Profile timings per model (uncorrected)."""

    pods: Sequence[ObservedPod] = ()
    """Unfinished pods bound to the node, in bind order."""

    resident: Sequence[str] = ()
    """Models believed loaded, least recently used first (learned from completions and the
    model server's metric)."""

    last_completion_s: float | None = None
    """When a pod on this node last finished (Unix seconds), None if none seen."""


@dataclass
class Replay:
    """A rebuilt node server and where each unfinished pod runs in it."""

    server: NodeServer
    """The node's server as of the replay."""

    placements: dict[str, Placement] = field(default_factory=dict)
    """Per pod UID, the replayed start/finish (with corrected timings)."""

    starts: dict[str, float] = field(default_factory=dict)
    """Per pod UID, the start the FIFO gives it before any overrun shift (for the head pod
    with concurrency 1: exactly ``max(bind, last completion)``)."""


def scaled_timings(
    timings: Mapping[str, ModelTiming], factor: Callable[[str], float]
) -> dict[str, ModelTiming]:
    """Profile timings with every duration of model ``m`` multiplied by ``factor(m)``."""
    out = {}
    for model, t in timings.items():
        f = factor(model)
        out[model] = ModelTiming(
            s_per_step=t.s_per_step * f,
            overhead_s=t.overhead_s * f,
            memory_gib=t.memory_gib,
            load_s=t.load_s * f,
        )
    return out


def fitting_resident(
    resident: Iterable[str], timings: Mapping[str, ModelTiming], vram_gib: float
) -> tuple[str, ...]:
    """The most recently used resident models that fit together, least recent first."""
    kept: list[str] = []
    used = 0.0
    # Walk newest to oldest, keep what fits, return oldest first (LRU order).
    seen: set[str] = set()
    for model in reversed(list(resident)):
        timing = timings.get(model)
        if model in seen or timing is None or timing.memory_gib > vram_gib:
            continue
        seen.add(model)
        if used + timing.memory_gib <= vram_gib:
            kept.append(model)
            used += timing.memory_gib
    return tuple(reversed(kept))


def replay_node(
    node: ObservedNode,
    *,
    now: float,
    factor: Callable[[str], float] = lambda _model: 1.0,
    overrun_grace_s: float = 1.0,
) -> Replay:
    """Rebuild the node's server at ``now`` (see the module docstring).

    Pods whose model the profile cannot run are skipped (they never start on this node in
    the simulator either); the caller reports them.
    """
    timings = scaled_timings(node.timings, factor)
    server = NodeServer(
        concurrency=node.concurrency,
        vram_gib=node.vram_gib,
        timings=timings,
        resident=fitting_resident(node.resident, timings, node.vram_gib),
    )
    origin = node.last_completion_s
    if origin is None:
        origin = min((p.bind_s for p in node.pods), default=now)
    server.restart(origin)
    replay = Replay(server=server)
    for pod in node.pods:
        if not server.can_run(pod.model):
            continue
        task = ServiceTask(pod.model, pod.steps, cpu=pod.cpu, memory_gib=pod.memory_gib)
        at = max(pod.bind_s, origin)
        planned = server.what_if(task, at)
        replay.starts[pod.uid] = planned.start_s
        if planned.finish_s <= now:
            # Still unfinished although predicted done: it overran; shift it to end soon.
            at += now + overrun_grace_s - planned.finish_s
        replay.placements[pod.uid] = server.place(task, at)
    return replay
