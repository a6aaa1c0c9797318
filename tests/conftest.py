"""Fixtures shared by tests/policy and tests/operator: a cluster-actor export standing in for
the bundled policy, so the code paths that use ``ladts_policy/bundled/lad-ts.onnx`` are tested
whether or not a checkout carries the trained file (tests/policy/test_bundled_policy.py has the
one test that needs the real file)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def actor_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained cluster actor exported with ``ladts export``'s code (the real graph)."""
    pytest.importorskip("torch")
    from ladts_policy.train.cluster_export import export_onnx, untrained_checkpoint

    out = tmp_path_factory.mktemp("bundled") / "lad-ts.onnx"
    export_onnx(untrained_checkpoint(0, policy_version="test-export-seed0"), out,
                created="1970-01-01T00:00:00Z")
    return out


@pytest.fixture
def bundled_export(actor_export: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make ``ladts_policy.bundled`` resolve to :func:`actor_export` (in this process)."""
    import ladts_policy.bundled as bundled

    monkeypatch.setattr(bundled, "bundled_policy_file", lambda: actor_export)
    return actor_export


@pytest.fixture
def bundled_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make ``ladts_policy.bundled`` resolve to a file that does not exist."""
    import ladts_policy.bundled as bundled

    absent = tmp_path / "no-bundle" / "lad-ts.onnx"
    monkeypatch.setattr(bundled, "bundled_policy_file", lambda: absent)
    return absent


TINY_SCENARIO = textwrap.dedent("""
    kind: k8s-edge
    name: tiny
    cluster:
      horizon_s: 120
      arrivals: {rate_per_s: 0.5}
      models:
        - {name: sd15, weight: 1, steps: [20, 30]}
      nodes:
        - {profile: rtx-4090, count: 2, name_prefix: ws}
        - {profile: orin-nano-8, count: 1}
""")
"""A three-node k8s-edge scenario of two minutes (fast CLI and evaluation tests)."""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """:data:`TINY_SCENARIO` written as ``tiny.yaml``."""
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_SCENARIO)
    return path
