"""The emulation's per-pod annotations (pure): what the controller writes, kwok and a restart read.

Everything lives under the prefix ``emulation.ladts.io/``, which nothing that schedules reads:
the extender and the operator read only ``ladts.io/*`` (``ladts.io/model``, ``ladts.io/steps``,
...), so the modelled start and finish of a request stay hidden from the scheduler, as the true
service time of a real request is. Written in **one patch per pod** at bind:

=============================  ===============================================================
``seq``                        placement order (FIFO position) on the node, integer
``node``                       the node the pod was placed on
``bind-s``                     cluster time of the bind (when the controller saw ``nodeName``)
``start-s`` / ``finish-s``     modelled start and finish, cluster seconds (``repr`` floats)
``start-time`` / ``finish-time`` the same as RFC 3339 wall times; kwok's ``aigc-pod-complete``
                               stage reads ``finish-time`` (``delay.durationFrom``)
``cold``                       ``true`` when the pod pays the model load
``loaded``                     JSON list ``[[model, last_use_s, seq], ...]``: the node server's
                               loaded models and LRU stamps right after this placement
``ready``                      JSON object ``{model: load_end_s}``: when each model's load
                               ends, right after this placement (both rebuild on restart)
``rejected``                   instead of the times: why the node cannot serve the pod; kwok's
                               ``aigc-pod-reject`` stage fails the pod
``created-s``                  written by whoever creates the pod (the benchmark's submitter):
                               cluster time of creation
=============================  ===============================================================

Re-placement (a pod ahead in the FIFO was deleted) rewrites ``start-*``, ``finish-*``,
``cold``, ``loaded`` and ``ready``; kwok then re-reads ``finish-time``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

PREFIX = "emulation.ladts.io/"
SEQ = PREFIX + "seq"
NODE = PREFIX + "node"
BIND_S = PREFIX + "bind-s"
START_S = PREFIX + "start-s"
FINISH_S = PREFIX + "finish-s"
START_TIME = PREFIX + "start-time"
FINISH_TIME = PREFIX + "finish-time"
COLD = PREFIX + "cold"
LOADED = PREFIX + "loaded"
READY = PREFIX + "ready"
REJECTED = PREFIX + "rejected"
CREATED_S = PREFIX + "created-s"


def rfc3339(epoch_s: float) -> str:
    """Wall time as RFC 3339 with microseconds, UTC (kwok parses it with ``RFC3339Nano``)."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class PlacementNote:
    """What the controller decided for one pod, as written into its annotations."""

    seq: int
    """FIFO position on the node (global placement counter)."""

    node: str
    """Node the pod was placed on."""

    bind_s: float
    """Cluster time of the bind."""

    start_s: float
    """Modelled start, cluster seconds."""

    finish_s: float
    """Modelled finish, cluster seconds."""

    cold: bool
    """Whether the pod pays the model load."""

    loaded: tuple[tuple[str, tuple[float, int]], ...]
    """The node server's loaded models and LRU stamps ``(time, seq)`` (LRU bookkeeping order)
    right after this placement."""

    ready: tuple[tuple[str, float], ...] = ()
    """When each model's load ends, right after this placement."""

    def annotations(self, start_epoch_s: float, finish_epoch_s: float) -> dict[str, str]:
        """The annotation patch; the wall times come from the cluster clock."""
        return {
            SEQ: str(self.seq),
            NODE: self.node,
            BIND_S: repr(self.bind_s),
            START_S: repr(self.start_s),
            FINISH_S: repr(self.finish_s),
            START_TIME: rfc3339(start_epoch_s),
            FINISH_TIME: rfc3339(finish_epoch_s),
            COLD: "true" if self.cold else "false",
            LOADED: json.dumps([[m, t, q] for m, (t, q) in self.loaded]),
            READY: json.dumps(dict(self.ready)),
        }


def parse_note(annotations: dict[str, Any] | None) -> PlacementNote | None:
    """Read a placement back (None when absent or malformed: the pod is then placed anew)."""
    if not annotations or SEQ not in annotations:
        return None
    try:
        loaded = tuple((str(m), (float(t), int(q)))
                       for m, t, q in json.loads(annotations[LOADED]))
        ready = tuple((str(m), float(t)) for m, t in json.loads(annotations[READY]).items())
        return PlacementNote(
            seq=int(annotations[SEQ]),
            node=str(annotations[NODE]),
            bind_s=float(annotations[BIND_S]),
            start_s=float(annotations[START_S]),
            finish_s=float(annotations[FINISH_S]),
            cold=annotations[COLD] == "true",
            loaded=loaded,
            ready=ready,
        )
    except (KeyError, ValueError, TypeError, AttributeError):
        return None
