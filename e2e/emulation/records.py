"""Lifecycle records of AIGC pods and their JSONL log (pure bookkeeping + one append-only file).

Units are explicit in the names: ``*_s`` is cluster seconds (modelled time, see
:mod:`e2e.emulation.clock`), ``*_wall_ms`` is wall milliseconds (never scaled).
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

#: ``outcome`` values: how a record ended.
SUCCEEDED = "succeeded"
REJECTED = "rejected"
REMOVED = "removed"
NODE_DELETED = "node-deleted"


@dataclass
class PodRecord:
    """One AIGC pod from creation to its end."""

    namespace: str
    name: str
    uid: str
    node: str
    model: str
    steps: int
    seq: int
    created_s: float
    """Cluster time of creation (the ``created-s`` annotation, else first sight)."""
    bind_s: float
    """Cluster time the controller saw the bind."""
    start_s: float
    """Modelled start (the request leaves the model server's queue)."""
    finish_s: float
    """Modelled finish."""
    cold: bool
    scheduling_latency_wall_ms: float
    """Creation → bind in wall milliseconds (scheduler + watch lag; never scaled)."""
    observed_finish_s: float = math.nan
    """Cluster time the controller saw ``Succeeded`` (kwok acting on ``finish-time``)."""
    outcome: str = ""
    """:data:`SUCCEEDED`, :data:`REJECTED`, :data:`REMOVED`, :data:`NODE_DELETED` or ``""``."""
    error: str = ""
    replaced: int = 0
    """How often the placement moved because a pod ahead of it left the FIFO."""

    @property
    def service_delay_s(self) -> float:
        """Bind → modelled finish (queue wait + service), cluster seconds."""
        return self.finish_s - self.bind_s

    @property
    def observed_lag_s(self) -> float:
        """Observed Succeeded − modelled finish, cluster seconds (kwok + watch lag × scale)."""
        return self.observed_finish_s - self.finish_s

    def to_json(self) -> dict[str, Any]:
        """Plain dict with the derived delays (NaN written as null)."""
        out = {**asdict(self), "service_delay_s": self.service_delay_s}
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PodRecord:
        """Inverse of :meth:`to_json` (derived fields ignored)."""
        names = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {
            k: (math.nan if v is None else v) for k, v in data.items() if k in names
        }
        return cls(**kwargs)


class RecordLog:
    """Append-only JSONL of finished records; remembers which uids it already holds."""

    def __init__(self, path: Path | None) -> None:
        """Open (lazily) ``path``; None keeps records in memory only."""
        self.path = path
        self._lock = threading.Lock()
        self._uids: set[str] = set()
        if path is not None and path.exists():
            for rec in read_records(path):
                self._uids.add(rec.uid)

    def __contains__(self, uid: object) -> bool:
        """True when a record of ``uid`` was written (also by an earlier controller)."""
        return uid in self._uids

    def append(self, rec: PodRecord) -> None:
        """Write one record (once per uid)."""
        with self._lock:
            if rec.uid in self._uids:
                return
            self._uids.add(rec.uid)
            if self.path is None:
                return
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(rec.to_json()) + "\n")


def read_records(path: Path) -> list[PodRecord]:
    """All records of a JSONL log."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [PodRecord.from_json(json.loads(line)) for line in lines if line.strip()]
