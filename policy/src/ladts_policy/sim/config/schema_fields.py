"""Path-aware readers for scenario mappings: every error names the offending field.

A :class:`Fields` wraps one mapping of a YAML document together with its path (for example
``cluster.nodes[2]``). Reading a key removes it from the set of unread keys; :meth:`Fields.done`
rejects whatever is left, so misspelt keys fail loudly instead of being ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ladts_policy.sim.config.errors import ScenarioError

_MISSING: Any = object()


def join(path: str, key: str | int) -> str:
    """Return the path of a child: ``a.b`` for keys, ``a[3]`` for list indices."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class Fields:
    """One mapping of a scenario document, read key by key with typed, path-named errors."""

    def __init__(self, raw: object, path: str) -> None:
        if not isinstance(raw, Mapping):
            raise ScenarioError(f"{path or '<document>'}: expected a mapping, got {_kind(raw)}")
        self.raw: Mapping[Any, Any] = raw
        self.path = path
        self._unread = {str(k) for k in raw}

    def _get(self, key: str, default: Any) -> Any:
        self._unread.discard(key)
        if key in self.raw and self.raw[key] is not None:
            return self.raw[key]
        if default is _MISSING:
            raise ScenarioError(f"{join(self.path, key)}: required field is missing")
        return default

    def has(self, key: str) -> bool:
        """Whether ``key`` is present with a non-null value."""
        return key in self.raw and self.raw[key] is not None

    def raw_value(self, key: str, default: Any = _MISSING) -> Any:
        """Return the value of ``key`` unchecked (``default`` if absent)."""
        return self._get(key, default)

    def string(self, key: str, default: Any = _MISSING) -> str:
        """Read a string."""
        value = self._get(key, default)
        if not isinstance(value, str):
            raise ScenarioError(f"{join(self.path, key)}: expected a string, got {_kind(value)}")
        return value

    def boolean(self, key: str, default: Any = _MISSING) -> bool:
        """Read a boolean."""
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise ScenarioError(f"{join(self.path, key)}: expected true/false, got {_kind(value)}")
        return value

    def number(
        self, key: str, default: Any = _MISSING, *, minimum: float = 0.0, strict: bool = False
    ) -> float:
        """Read a real number ``>= minimum`` (``> minimum`` if ``strict``)."""
        return check_number(self._get(key, default), join(self.path, key), minimum, strict)

    def integer(self, key: str, default: Any = _MISSING, *, minimum: int = 0) -> int:
        """Read an integer ``>= minimum``."""
        return check_integer(self._get(key, default), join(self.path, key), minimum)

    def choice(self, key: str, options: tuple[str, ...], default: Any = _MISSING) -> str:
        """Read a string that must be one of ``options``."""
        value = self.string(key, default)
        if value not in options:
            raise ScenarioError(
                f"{join(self.path, key)}: {value!r} is not one of {', '.join(options)}"
            )
        return value

    def number_range(
        self, key: str, default: Any = _MISSING, *, minimum: float = 0.0
    ) -> tuple[float, float]:
        """Read ``[low, high]`` (or a single number meaning ``[x, x]``) with ``low <= high``."""
        path = join(self.path, key)
        value = self._get(key, default)
        pair = _pair(value, path)
        low = check_number(pair[0], f"{path}[0]", minimum, False)
        high = check_number(pair[1], f"{path}[1]", minimum, False)
        if low > high:
            raise ScenarioError(f"{path}: low {low} is above high {high}")
        return low, high

    def integer_range(
        self, key: str, default: Any = _MISSING, *, minimum: int = 1
    ) -> tuple[int, int]:
        """Read ``[low, high]`` integers inclusive (or a single integer)."""
        path = join(self.path, key)
        pair = _pair(self._get(key, default), path)
        low = check_integer(pair[0], f"{path}[0]", minimum)
        high = check_integer(pair[1], f"{path}[1]", minimum)
        if low > high:
            raise ScenarioError(f"{path}: low {low} is above high {high}")
        return low, high

    def items(self, key: str, default: Any = _MISSING) -> list[tuple[str, Any]]:
        """Read a list; return ``(path, item)`` pairs."""
        path = join(self.path, key)
        value = self._get(key, default)
        if not isinstance(value, list):
            raise ScenarioError(f"{path}: expected a list, got {_kind(value)}")
        return [(join(path, i), item) for i, item in enumerate(value)]

    def strings(self, key: str, default: Any = _MISSING) -> tuple[str, ...]:
        """Read a list of strings."""
        out = []
        for path, item in self.items(key, default):
            if not isinstance(item, str):
                raise ScenarioError(f"{path}: expected a string, got {_kind(item)}")
            out.append(item)
        return tuple(out)

    def sub(self, key: str, default: Any = _MISSING) -> Fields:
        """Read a nested mapping (``default`` should be ``{}`` for optional sections)."""
        return Fields(self._get(key, default), join(self.path, key))

    def done(self) -> None:
        """Reject keys that were never read."""
        if self._unread:
            unknown = ", ".join(sorted(self._unread))
            where = self.path or "<document>"
            raise ScenarioError(f"{where}: unknown key(s): {unknown}")


def check_number(value: Any, path: str, minimum: float, strict: bool) -> float:
    """Validate a real number against a lower bound."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(f"{path}: expected a number, got {_kind(value)}")
    x = float(value)
    if x != x or x in (float("inf"), float("-inf")):
        raise ScenarioError(f"{path}: expected a finite number, got {value!r}")
    if x < minimum or (strict and x == minimum):
        bound = ">" if strict else ">="
        raise ScenarioError(f"{path}: must be {bound} {minimum:g}, got {value!r}")
    return x


def check_integer(value: Any, path: str, minimum: int) -> int:
    """Validate an integer against a lower bound."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(f"{path}: expected an integer, got {_kind(value)}")
    if value < minimum:
        raise ScenarioError(f"{path}: must be >= {minimum}, got {value}")
    return int(value)


def _pair(value: Any, path: str) -> tuple[Any, Any]:
    if isinstance(value, list):
        if len(value) != 2:
            raise ScenarioError(f"{path}: expected [low, high], got {len(value)} items")
        return value[0], value[1]
    return value, value


def _kind(value: object) -> str:
    if value is None:
        return "nothing (null)"
    return f"{type(value).__name__} {value!r}"[:80]
