"""The ONNX scorer: contract checks on load, hot reload, broken files, symlink swaps, replay."""

from __future__ import annotations

import json
import os
from pathlib import Path

import onnx
import pytest

from ladts_operator.extender import Extender
from ladts_operator.objects import parse_node
from ladts_operator.onnx_policy import OnnxScorer, PolicyLoadError
from ladts_operator.runtime import PolicyManager
from ladts_operator.scoring import HeuristicScorer
from ladts_operator.settings import ServeSettings
from ladts_operator.untrained_policy import build_untrained_policy, write_untrained_policy
from ladts_policy.contract import ContractError
from ladts_policy.policy_contract import KEY_SPEC_HASH, validate_metadata

from .conftest import node, pod


def request(names):
    return json.dumps({"Pod": pod(), "NodeNames": names}).encode()


def test_untrained_policy_satisfies_the_contract(tmp_path):
    scorer = OnnxScorer(write_untrained_policy(tmp_path / "p.onnx"))
    assert scorer.info.diffusion_steps == 5 and scorer.info.latent_dim == 4


def test_off_contract_files_are_refused(tmp_path):
    bad_hash = build_untrained_policy(extra_metadata={KEY_SPEC_HASH: "0" * 64})
    onnx.save(bad_hash, str(tmp_path / "hash.onnx"))
    with pytest.raises(PolicyLoadError, match="does not match"):
        OnnxScorer(tmp_path / "hash.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(PolicyLoadError, match="not a loadable ONNX model"):
        OnnxScorer(tmp_path / "junk.onnx")
    with pytest.raises(ContractError, match="lacks"):
        validate_metadata({})


def test_scores_replay_from_the_recorded_seed(tmp_path, state, clock):
    for n in ("a", "b", "c"):
        state.upsert_node(parse_node(node(n)))
    scorer = OnnxScorer(write_untrained_policy(tmp_path / "p.onnx"), noise_seed=11)
    h = HeuristicScorer("greedy")
    ex = Extender(state, scorer=scorer, fallback=h, clock=clock)
    reply = ex.handle("prioritize", request(["a", "b", "c"]))
    assert reply.status == 200
    decision = next(iter(ex.recent.values()))
    assert decision.scored.seed == 12 and decision.scored.scorer == "onnx"
    assert sum(decision.scored.preference_N) == pytest.approx(1.0, abs=1e-5)
    # Same seed, fresh scorer with no warm-start memory -> the same probabilities.
    again = OnnxScorer(tmp_path / "p.onnx", noise_seed=11)
    ex2 = Extender(state, scorer=again, fallback=h, clock=clock)
    ex2.handle("prioritize", request(["a", "b", "c"]))
    assert next(iter(ex2.recent.values())).scored.preference_N == pytest.approx(
        decision.scored.preference_N)


def test_reload_on_change_broken_file_keeps_running_policy(tmp_path, state, clock):
    path = write_untrained_policy(tmp_path / "p.onnx", policy_version="v1")
    settings = ServeSettings(policy=str(path))
    h = HeuristicScorer("greedy")
    ex = Extender(state, scorer=h, fallback=h, clock=clock)
    manager = PolicyManager(settings, ex)
    assert ex.scorer.version == "v1"
    path.write_bytes(b"garbage")
    manager.poll()
    assert ex.scorer.version == "v1" and manager.last_error
    failures = ex.telemetry.policy_load_failures._value.get()
    assert failures == 1
    manager.poll()  # the same broken file is not counted twice
    assert ex.telemetry.policy_load_failures._value.get() == 1
    write_untrained_policy(path, policy_version="v2")
    manager.poll()
    assert ex.scorer.version == "v2" and manager.last_error is None


def test_configmap_symlink_swap_is_a_change(tmp_path):
    # kubelet's ConfigMap layout: file -> ..data/file, ..data -> ..<timestamp> directory.
    for version, stamp in (("v1", "..2026_01"), ("v2", "..2026_02")):
        (tmp_path / stamp).mkdir()
        write_untrained_policy(tmp_path / stamp / "policy.onnx", policy_version=version)
    os.symlink("..2026_01", tmp_path / "..data")
    os.symlink("..data/policy.onnx", tmp_path / "policy.onnx")
    scorer = OnnxScorer(tmp_path / "policy.onnx")
    assert scorer.version == "v1" and not scorer.maybe_reload()
    os.symlink("..2026_02", tmp_path / "..data_tmp")
    os.replace(tmp_path / "..data_tmp", tmp_path / "..data")  # the atomic swap kubelet does
    assert scorer.maybe_reload() and scorer.version == "v2"


def test_missing_policy_serves_heuristic_and_says_so(tmp_path, state, clock):
    h = HeuristicScorer("least-queue")
    ex = Extender(state, scorer=h, fallback=h, clock=clock)
    manager = PolicyManager(ServeSettings(policy=str(tmp_path / "absent.onnx")), ex)
    assert ex.scorer is h
    assert "serving heuristic least-queue" in manager.status()
    assert "absent.onnx" in manager.status()
    write_untrained_policy(tmp_path / "absent.onnx")
    manager.poll()
    assert ex.scorer.name == "onnx"


def test_policy_error_falls_back_to_heuristic(tmp_path, state, clock):
    for n in ("a", "b"):
        state.upsert_node(parse_node(node(n)))
    scorer = OnnxScorer(write_untrained_policy(tmp_path / "p.onnx"))

    class Boom:
        def run(self, *a, **k):
            raise RuntimeError("boom")

    scorer._loaded.session = Boom()
    h = HeuristicScorer("greedy")
    ex = Extender(state, scorer=scorer, fallback=h, clock=clock)
    reply = ex.handle("prioritize", request(["a", "b"]))
    assert reply.status == 200 and sorted(x["Score"] for x in reply.body) == [9, 10]
    decision = next(iter(ex.recent.values()))
    assert decision.scored.scorer == "heuristic:greedy" and "boom" in decision.scored.fallback
    assert ex.telemetry.fallbacks.labels(reason="policy_error")._value.get() == 1


def test_path_type(tmp_path):
    assert isinstance(write_untrained_policy(tmp_path / "x.onnx"), Path)
