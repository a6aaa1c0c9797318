"""Checkpoint files: the resumable training state and the final policy.

Both are ``torch.save`` dictionaries of tensors and plain values, loaded with
``weights_only=True`` (no pickled code runs). A file that is not one of ours, is truncated
or has the wrong version raises :class:`CheckpointError` with the path in the message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

TRAIN_FORMAT = "ladts-train-checkpoint"
"""``format`` of ``DIR/checkpoint.pt`` (everything needed to resume)."""

POLICY_FORMAT = "ladts-policy"
"""``format`` of ``DIR/final.pt`` (what evaluation loads)."""

VERSION = 1
"""Bumped when the layout changes incompatibly."""


class CheckpointError(ValueError):
    """A checkpoint cannot be used (missing, corrupt, or of another kind or version)."""


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically (a crash mid-write leaves the previous file intact)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({**payload, "version": VERSION}, tmp)
    tmp.replace(path)


def load(path: Path, expected_format: str) -> dict[str, Any]:
    """Read a checkpoint of ``expected_format`` onto the CPU.

    Raises:
        CheckpointError: the file is missing, unreadable, or not of that format and version.
    """
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt files
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__}: "
                              f"{str(err).splitlines()[0] if str(err) else ''})") from err
    if not isinstance(payload, dict) or payload.get("format") != expected_format:
        kind = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path}: expected a {expected_format} file, found {kind!r}")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path}: version {payload.get('version')!r}, this ladts "
                              f"reads version {VERSION}")
    return payload
