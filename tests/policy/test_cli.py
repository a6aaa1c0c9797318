"""The ``ladts`` command line, run in-process through ``main(argv)``."""

import json

import pytest

from ladts_policy.cli import SUBCOMMANDS, build_parser, main


def test_every_subcommand_has_help(capsys):
    for name in SUBCOMMANDS:
        with pytest.raises(SystemExit) as info:
            build_parser().parse_args([name, "--help"])
        assert info.value.code == 0
        assert name in capsys.readouterr().out


def test_evaluate_writes_documented_json_and_plot(tiny, tmp_path, capsys):
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    status = main(["evaluate", "--scenario", str(tiny), "--policies", "greedy,spread",
                   "--seeds", "10000-10001", "--episodes", "2", "--json", str(out),
                   "--plot", str(png), "--no-progress"])
    assert status == 0
    doc = json.loads(out.read_text())
    assert doc["seeds"] == [10000, 10001] and doc["episodes"] == 2
    assert list(doc["policies"]) == ["greedy", "spread"]
    assert doc["policies"]["greedy"]["vs_greedy"] == pytest.approx(1.0)
    assert len(doc["policies"]["spread"]["episode_means_s"]) == 4
    assert png.stat().st_size > 10_000
    assert "greedy" in capsys.readouterr().out


def test_evaluate_default_policies_are_those_that_apply(tiny, tmp_path, bundled_export):
    out = tmp_path / "r.json"
    assert main(["evaluate", "--scenario", str(tiny), "--seeds", "1", "--json", str(out),
                 "--no-progress"]) == 0
    names = set(json.loads(out.read_text())["policies"])
    assert "spread" in names and "lad-ts" in names and "local" not in names


@pytest.mark.parametrize(("argv", "message"), [
    (["--policies", "best"], "unknown policy 'best'"),
    (["--policies", "local"], "apply to the 'paper' scenario kind only"),
    (["--episodes", "0"], "episodes must be >= 1"),
])
def test_evaluate_bad_input_is_a_clear_error(tiny, capsys, argv, message):
    assert main(["evaluate", "--scenario", str(tiny), "--no-progress", *argv]) == 2
    assert message in capsys.readouterr().err


def test_missing_scenario_file_is_a_clear_error(tmp_path, capsys):
    assert main(["evaluate", "--scenario", str(tmp_path / "nope.yaml"), "--no-progress"]) == 2
    assert "nope.yaml" in capsys.readouterr().err


def test_scenarios_lists_presets_and_validates_files(tiny, tmp_path, capsys):
    assert main(["scenarios"]) == 0
    listing = capsys.readouterr().out
    assert "paper" in listing and "k8s-edge" in listing
    bad = tmp_path / "bad.yaml"
    bad.write_text(tiny.read_text().replace("rtx-4090", "rtx-9999"))
    assert main(["scenarios", str(tiny), str(bad)]) == 1
    report = capsys.readouterr().out
    assert "tiny.yaml: ok" in report and "unknown GPU profile 'rtx-9999'" in report


def test_demo_writes_report_files(tmp_path, capsys, bundled_export):
    assert main(["demo", "--out", str(tmp_path), "--episodes", "1", "--no-progress"]) == 0
    doc = json.loads((tmp_path / "demo.json").read_text())
    assert doc["scenario"] == "k8s-edge" and len(doc["seeds"]) >= 5
    # The bundled policy beside the baselines.
    assert {"greedy", "residency-greedy", "lad-ts"} <= set(doc["policies"])
    assert (tmp_path / "demo.png").exists()
