"""The bundled default policy: ``lad-ts.onnx``, shipped as package data beside this module.

It is the ONNX export (``ladts export``, the contract of ``ladts_policy/policy_contract.py``)
of the cluster LAD-TS actor that ``ladts evaluate`` names ``lad-ts`` and that ``ladts serve``
loads when no other policy is given. This module imports only the standard library, so the
operator (which never imports torch) can use it; loading the file is the job of
``ladts_policy/onnx_eval.py`` (onnxruntime).

A source checkout or an install built before the file was trained has no file:
:func:`bundled_policy_path` then raises :class:`BundledPolicyMissing`, whose message names
the command that regenerates it.
"""

from __future__ import annotations

from pathlib import Path

BUNDLED_NAME = "lad-ts"
"""Evaluation-policy name of the bundled policy (``ladts evaluate --policies lad-ts``)."""

BUNDLED_FILE = "lad-ts.onnx"
"""File name of the bundled policy inside this package."""

BUNDLED_SETTING = "bundled"
"""Value of ``ladts serve --policy`` (its default) that selects the bundled policy."""

REGENERATE_COMMAND = "make bundled-policy"
"""The documented command that trains and exports the bundled policy (docs/training.md)."""


class BundledPolicyMissing(FileNotFoundError):
    """The package carries no bundled policy file (a checkout or build without it)."""


def bundled_policy_file() -> Path:
    """Where the bundled policy lives, whether or not the file is there."""
    return Path(__file__).resolve().parent / BUNDLED_FILE


def bundled_policy_path() -> Path:
    """The bundled policy file.

    Raises:
        BundledPolicyMissing: the file is absent; the message says how to regenerate it and
            how to run without it.
    """
    path = bundled_policy_file()
    if not path.is_file():
        raise BundledPolicyMissing(
            f"the bundled policy {path} is missing: this ladts checkout or build carries no "
            f"trained policy. Regenerate it with `{REGENERATE_COMMAND}` (docs/training.md), "
            "or pass another ONNX policy file; `ladts serve --policy none` serves the "
            "residency-greedy heuristic instead"
        )
    return path


def is_bundled_name(name: str) -> bool:
    """Whether a policy name or ``--policy`` value means the bundled policy."""
    return name.strip().lower() in (BUNDLED_NAME, BUNDLED_SETTING)
