"""Scenario loading and validation."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ladts_policy.sim.config.cluster_config import ClusterConfig
from ladts_policy.sim.config.cluster_schema import builtin_gpu_profiles
from ladts_policy.sim.config.errors import ScenarioError
from ladts_policy.sim.config.scenario import list_presets, load_scenario, parse_scenario

MINIMAL = """
kind: k8s-edge
name: tiny
cluster:
  horizon_s: 60
  arrivals: {rate_per_s: 0.5}
  models:
    - {name: sd15, weight: 1, steps: [20, 30]}
  nodes:
    - {profile: rtx-4090, count: 2, name_prefix: ws}
    - {profile: orin-nano-8, count: 1}
"""


def _parse(text: str) -> ClusterConfig:
    return parse_scenario(textwrap.dedent(text), origin="test").cluster


def _error(text: str) -> str:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(textwrap.dedent(text), origin="test")
    return str(info.value)


@pytest.mark.parametrize("name", ["k8s-edge", "k8s-edge-200", "k8s-edge-bursty",
                                  "k8s-edge-busy"])
def test_cluster_presets_load(name: str) -> None:
    scenario = load_scenario(name)
    assert scenario.kind == "k8s-edge"
    assert scenario.name == name
    nodes = scenario.cluster.expand_nodes()
    assert len(nodes) == scenario.cluster.num_nodes
    assert len({n.name for n in nodes}) == len(nodes)


def test_preset_list_and_sizes() -> None:
    presets = list_presets()
    assert {"k8s-edge", "k8s-edge-200", "k8s-edge-bursty"} <= set(presets)
    assert "gpu-profiles" not in presets
    assert load_scenario("k8s-edge").cluster.num_nodes == 20
    assert load_scenario("k8s-edge-200").cluster.num_nodes == 200


def test_minimal_defaults_and_names() -> None:
    config = _parse(MINIMAL)
    names = [n.name for n in config.expand_nodes()]
    assert names == ["ws-0", "ws-1", "orin-nano-8-0"]
    assert config.arrivals.process == "poisson"
    assert not config.churn.enabled and not config.exclusive
    assert config.nodes[0].concurrency == 1
    assert config.models[0].input_mbit == (0.0, 0.0)


def test_builtin_profiles_cover_reference_classes() -> None:
    profiles = builtin_gpu_profiles()
    for name in ("agx-orin-64", "orin-nx-16", "orin-nano-8", "rtx-4090", "a10", "l4", "a100-80"):
        assert name in profiles
    nano = profiles["orin-nano-8"]
    assert not nano.can_run("sdxl") and nano.can_run("sd15")
    assert profiles["rtx-4090"].timings["sd15"].s_per_step == pytest.approx(0.024)


def test_profile_for_label() -> None:
    config = load_scenario("k8s-edge").cluster
    profile = config.profile_for_label("NVIDIA-GeForce-RTX-4090")
    assert profile is not None and profile.name == "rtx-4090"
    assert config.profile_for_label("no-such-gpu") is None


def test_unknown_profile_names_field_and_known() -> None:
    message = _error(MINIMAL.replace("profile: orin-nano-8", "profile: foo"))
    assert "cluster.nodes[1].profile: unknown GPU profile 'foo'; known:" in message
    assert "rtx-4090" in message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("name: tiny", "name: tiny\ncolour: red", "<document>: unknown key(s): colour"),
        ("horizon_s: 60", "horizon_s: 60\n  horizon: 5", "cluster: unknown key(s): horizon"),
        ("{rate_per_s: 0.5}", "{rate_per_s: 0.5, rate: 1}", "cluster.arrivals: unknown key(s)"),
        ("steps: [20, 30]}", "steps: [20, 30], step: 3}", "cluster.models[0]: unknown key"),
        ("horizon_s: 60", "horizon_s: -1", "cluster.horizon_s: must be > 0"),
        ("steps: [20, 30]", "steps: [30, 20]", "cluster.models[0].steps: low 30 is above high 20"),
        ("steps: [20, 30]", "steps: many", "cluster.models[0].steps[0]: expected an integer"),
        ("count: 2,", "count: 0,", "cluster.nodes[0].count: must be >= 1"),
        ("kind: k8s-edge", "kind: k9s", "kind: 'k9s' is not one of paper, k8s-edge"),
        ("{rate_per_s: 0.5}", "{process: fancy, rate_per_s: 1}", "cluster.arrivals.process"),
        ("name: tiny\n", "", "name: required field is missing"),
    ],
)
def test_bad_fields_are_named(old: str, new: str, expected: str) -> None:
    text = textwrap.dedent(MINIMAL)
    assert old in text
    assert expected in _error(text.replace(old, new))


def test_resident_must_fit_and_be_runnable() -> None:
    text = MINIMAL.replace(
        "{profile: orin-nano-8, count: 1}", "{profile: orin-nano-8, count: 1, resident: [sdxl]}"
    )
    assert "cluster.nodes[1].resident[0]: 'sdxl' is not a model of the mix" in _error(text)


def test_model_nobody_can_run_is_rejected() -> None:
    text = MINIMAL.replace(
        "- {name: sd15, weight: 1, steps: [20, 30]}",
        "- {name: sd15, weight: 1, steps: [20, 30]}\n    - {name: dalle, weight: 1, steps: 4}",
    )
    assert "cluster.models[1]: no node group can run 'dalle'" in _error(text)


def test_inline_profile_extends_builtin() -> None:
    text = MINIMAL + textwrap.indent(
        textwrap.dedent(
            """
            gpu_profiles:
              - name: tiny-gpu
                product_label: TINY
                vram_gib: 6
                models:
                  sd15: {s_per_step: 0.5, overhead_s: 1, memory_gib: 4, load_s: 10}
            """
        ),
        "  ",
    )
    config = _parse(text.replace("profile: orin-nano-8", "profile: tiny-gpu"))
    assert config.expand_nodes()[2].profile.product_label == "TINY"
    assert "rtx-4090" in config.gpu_profiles


def test_profile_file_relative_to_scenario(tmp_path: Path) -> None:
    (tmp_path / "gpus.yaml").write_text(
        "profiles:\n  - {name: x1, product_label: X, vram_gib: 8, models: "
        "{sd15: {s_per_step: 0.1, overhead_s: 0.1, memory_gib: 4, load_s: 1}}}\n"
    )
    scenario_file = tmp_path / "s.yaml"
    scenario_file.write_text(
        textwrap.dedent(MINIMAL).replace("profile: orin-nano-8", "profile: x1")
        + "  gpu_profiles: gpus.yaml\n"
    )
    assert load_scenario(str(scenario_file)).cluster.gpu_profiles["x1"].vram_gib == 8
    (tmp_path / "gpus.yaml").write_text("profiles:\n  - {name: x1, vram_gib: 8, models: {}}\n")
    with pytest.raises(ScenarioError, match=r"profiles\[0\].product_label: required"):
        load_scenario(str(scenario_file))


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="neither a preset"):
        load_scenario(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [unclosed\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(str(bad))


def test_make_simulator_dimensions() -> None:
    sim = load_scenario("k8s-edge").make_simulator(3)
    assert sim.num_envs == 3 and sim.num_nodes == 20
