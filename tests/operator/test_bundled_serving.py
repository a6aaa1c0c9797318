"""``ladts serve`` serves the bundled policy by default, says so, and falls back clearly.

The bundled file is ``ladts_policy/bundled/lad-ts.onnx``; these tests point it at an export
of an untrained cluster actor (the ``bundled_export`` fixture of tests/conftest.py) or at an
absent file, so they pass with or without the trained file in the checkout.
"""

from __future__ import annotations

import argparse
import json

import pytest

from ladts_operator.objects import parse_node
from ladts_operator.runtime import build_runtime
from ladts_operator.settings import ServeSettings, add_arguments, load_settings
from ladts_policy import bundled
from ladts_policy.bundled import REGENERATE_COMMAND

from .conftest import PROFILES, node, pod


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_default_settings_pick_the_bundled_file(bundled_export):
    settings = load_settings(parse([]), env={})
    assert settings.policy == "bundled" and settings.uses_bundled_policy
    assert settings.policy_path == bundled_export == bundled.bundled_policy_file()
    assert ServeSettings().policy_path == bundled_export


@pytest.mark.parametrize(("argv", "env"), [
    (["--policy", "none"], {}),
    ([], {"LADTS_POLICY": "none"}),
])
def test_policy_none_keeps_the_heuristic(bundled_export, argv, env):
    settings = load_settings(parse(argv), env=env)
    assert settings.policy_path is None and not settings.uses_bundled_policy
    rt = build_runtime(settings, profiles=PROFILES)
    assert rt.extender.scorer.name == "heuristic:residency-greedy"
    assert rt.policy.source == "heuristic"


def test_another_file_is_not_the_bundled_one(bundled_export, tmp_path):
    other = tmp_path / "mine.onnx"
    other.write_bytes(bundled_export.read_bytes())
    settings = load_settings(parse(["--policy", str(other)]), env={})
    assert settings.policy_path == other and not settings.uses_bundled_policy
    rt = build_runtime(settings, profiles=PROFILES)
    assert rt.policy.source == "file"
    assert f"from policy file {other}" in rt.policy.status()


def _metrics(rt) -> str:
    return rt.extender.telemetry.render().decode()


def test_serve_scores_with_the_bundled_policy_and_says_so(bundled_export):
    rt = build_runtime(ServeSettings(), profiles=PROFILES)
    for name in ("a", "b", "c"):
        rt.state.upsert_node(parse_node(node(name)))
    rt.state.synced = True
    ready, message = rt.ready()
    assert ready and "serving ONNX policy test-export-seed0 from the bundled policy" in message
    assert ('ladts_policy_info{scorer="onnx",source="bundled",version="test-export-seed0"} 1.0'
            in _metrics(rt))
    body = json.dumps({"Pod": pod(uid="u-b"), "NodeNames": ["a", "b", "c"]}).encode()
    scores = rt.extender.handle("prioritize", body).body
    assert sorted(h["Host"] for h in scores) == ["a", "b", "c"]
    decision = next(iter(rt.extender.recent.values()))
    assert decision.scored.scorer == "onnx" and decision.scored.version == "test-export-seed0"
    assert sum(decision.scored.preference_N) == pytest.approx(1.0, abs=1e-5)


def test_missing_bundled_file_serves_the_heuristic_and_names_the_fix(bundled_missing):
    rt = build_runtime(ServeSettings(), profiles=PROFILES)
    rt.state.synced = True
    ready, message = rt.ready()
    assert ready and "serving heuristic residency-greedy" in message
    assert "bundled policy" in message and REGENERATE_COMMAND in message
    assert "--policy none" in message
    assert rt.extender.telemetry.policy_load_failures._value.get() == 1
    rt.policy.poll()  # the same missing file is not counted again
    assert rt.extender.telemetry.policy_load_failures._value.get() == 1
    assert 'source="heuristic"' in _metrics(rt)


def test_bench_of_the_bundled_scorer_without_the_file_is_a_clear_error(bundled_missing, capsys):
    from ladts_policy.cli import main

    assert main(["bench", "extender", "--scorers", "bundled", "--nodes", "20"]) == 2
    assert REGENERATE_COMMAND in capsys.readouterr().err
