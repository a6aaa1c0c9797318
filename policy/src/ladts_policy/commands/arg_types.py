"""argparse value types shared by the ``ladts`` subcommands (no heavy imports)."""

from __future__ import annotations

import argparse


def csv_list(value: str) -> list[str]:
    """Parse a comma-separated list of non-empty names."""
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return names


def seed_list(value: str) -> list[int]:
    """Parse ``10000,10001`` or a range ``10000-10004``."""
    try:
        if "-" in value.strip("-") and "," not in value:
            lo, hi = (int(v) for v in value.split("-", 1))
            if hi < lo:
                raise ValueError
            return list(range(lo, hi + 1))
        return [int(v) for v in csv_list(value)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad seeds {value!r}: use a list (1,2,3) or a range (10000-10004)") from None
