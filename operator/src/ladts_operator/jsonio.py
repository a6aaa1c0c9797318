"""JSON decoding and encoding of the extender's bodies: orjson when installed, else ``json``.

orjson (in the ``serve`` extra) parses and writes a 500-node request or answer several times
faster than the standard library, which matters on the scheduler's serial path. Both give
the same documents for what the extender reads and writes (objects, lists, strings, finite
numbers); differences on exotic input are all rejections either way (``NaN`` literals,
integers beyond 64 bits, nesting deeper than 1024: orjson refuses them, answered 400).
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - the serve extra installs it
    orjson = None  # type: ignore[assignment]

DecodeError: tuple[type[Exception], ...] = (UnicodeDecodeError, ValueError, RecursionError)
"""What :func:`loads` raises on a body that is not JSON (orjson's error is a ValueError)."""


def loads(raw: bytes) -> Any:
    """Decode a JSON document (raises one of :data:`DecodeError`)."""
    if orjson is not None:
        return orjson.loads(raw)
    return json.loads(raw)


def dumps(body: Any) -> bytes:
    """Encode a JSON document; non-finite floats become null, numpy values their Python form."""
    if orjson is not None:
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    return json.dumps(_finite(body), default=_plain).encode()


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
