"""``ladts rollback``: restore the previous policy kept by ``ladts rollout``.

Swaps the ConfigMap's ``KEY`` and ``KEY.previous`` (so a second rollback rolls forward).
Exit status: 0 restored, 1 error (no ConfigMap, no previous version, RBAC).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the rollback options (the same target options as rollout)."""
    from ladts_operator.commands.rollout import add_target_arguments

    add_target_arguments(parser)


def rollback_main(args: argparse.Namespace, core_v1: Any) -> int:
    """The command's work with a given client."""
    from ladts_operator.rollout import PolicyRef, RolloutError, rollback

    ref = PolicyRef(args.namespace, args.configmap, args.key)
    try:
        restored, replaced = rollback(core_v1, ref)
    except RolloutError as exc:
        print(f"ladts rollback: error: {exc}", file=sys.stderr)
        return 1
    print(f"{ref}: restored {restored} (replaced {replaced}, kept under {ref.previous_key})")
    return 0


def run(args: argparse.Namespace) -> int:
    """Swap the versions."""
    from ladts_operator.commands.rollout import core_v1_from

    return rollback_main(args, core_v1_from(args))
