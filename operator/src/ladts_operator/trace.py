"""The decision trace: JSONL records of decisions, binds and completions, size-rotated.

One JSON object per line with ``kind``: ``decision`` (pod UID, node names, encoded features,
mask, preferences and scores, chosen node, scorer, version, noise seed, fallback),
``bind`` (pod UID and the node it went to) and ``completion`` (pod UID, node, model,
observed and predicted service seconds). Records join by ``pod_uid``; this is what
``ladts train --from-traces`` reads. The file rotates at ``max_bytes`` into ``PATH.1`` ...
``PATH.<backups>`` (the oldest dropped), so its disk use is bounded by
``(backups + 1) x max_bytes``.
"""

from __future__ import annotations

import json
import logging
import threading
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class TraceLog:
    """Append-only JSONL with rotation (thread-safe; writes never raise)."""

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._handler = RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        self._lock = threading.Lock()
        self.errors = 0

    def write(self, record: dict[str, Any]) -> None:
        """Append one record; an I/O error is logged and counted, never raised."""
        with self._lock:
            try:
                line = json.dumps(record, separators=(",", ":"), allow_nan=False, default=str)
                rec = logging.LogRecord("ladts.trace", logging.INFO, "", 0, line, None, None)
                if self._handler.shouldRollover(rec):
                    self._handler.doRollover()
                stream = self._handler.stream or self._handler._open()
                self._handler.stream = stream
                stream.write(line + "\n")
                stream.flush()
            except (OSError, ValueError) as exc:
                self.errors += 1
                log.error("trace write failed: %s", exc)

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._handler.close()
