"""benchmarks/cluster_results.py at its CI size, on untrained policies of the contract's shape.

The script is run as a user runs it (a subprocess), into a copy of docs/results.md, so the
test checks what it writes: the JSON of every episode, the figure, its own section between its
markers (and the ``paper`` section of benchmarks/paper_results.py left alone), and that an
invalid run exits non-zero and writes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ladts_policy.untrained_policy import write_untrained_policy

pytest.importorskip("onnx")

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "cluster_results.py"
BEGIN = "<!-- BEGIN GENERATED: benchmarks/cluster_results.py -->"
END = "<!-- END GENERATED: benchmarks/cluster_results.py -->"
PAPER_BEGIN = "<!-- BEGIN GENERATED: benchmarks/paper_results.py -->"


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "policy/src"), str(REPO / "operator/src"), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, str(SCRIPT), "--no-progress", *args], env=env,
                          capture_output=True, text=True, timeout=900, check=False)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "results.md").write_text((REPO / "docs" / "results.md").read_text())
    return folder


def test_ci_small_run_writes_json_figure_and_its_own_section(tmp_path, docs):
    for seed, weight in ((0, -4.0), (1, -2.0)):
        write_untrained_policy(tmp_path / f"u-s{seed}.onnx", policy_version=f"u-{seed}",
                               weights={"est_delay_s": weight})
    paper_before = (docs / "results.md").read_text().partition(BEGIN)[0]
    means = []
    # A second run replaces the section (it does not add one) and reuses all 4 policies x 2
    # scenarios from the cache; a third evaluates again without it and must agree.
    for cache_args, from_cache in ((["--cache", str(tmp_path / "cache")], 0),
                                   (["--cache", str(tmp_path / "cache")], 8),
                                   (["--no-cache"], 0)):
        result = run_script("--ci-small", "--learned", f"u={tmp_path}/u-s*.onnx",
                            "--docs", str(docs), *cache_args)
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.count("from the cache") == from_cache
        doc = json.loads((docs / "results" / "cluster-k8s-edge.json").read_text())
        means.append({s: {n: p["episode_means_s"] for n, p in v["policies"].items()}
                      for s, v in doc["scenarios"].items()})
    assert means[0] == means[1] == means[2]
    page = (docs / "results.md").read_text()
    assert page.count(BEGIN) == page.count(END) == 1
    assert page.partition(BEGIN)[0] == paper_before  # the paper section is untouched
    assert PAPER_BEGIN in page
    section = page.partition(BEGIN)[2].partition(END)[0]
    command = next(line for line in section.splitlines()
                   if line.startswith("python benchmarks/cluster_results.py"))
    assert "--ci-small" in command and "--learned" in command
    assert "| k8s-edge | u | 2 |" in section and "| heldout-4-nodes | u | 2 |" in section
    doc = json.loads((docs / "results" / "cluster-k8s-edge.json").read_text())
    assert set(doc["scenarios"]) == {"k8s-edge", "heldout-4-nodes"}
    for scenario in doc["scenarios"].values():
        policies = scenario["policies"]
        assert set(policies) == {"greedy", "residency-greedy", "u#0", "u#1"}
        tasks = {p["tasks"] for p in policies.values()}
        assert len(tasks) == 1 and tasks.pop() > 0  # every policy placed every task
        # The table's ratio is the ratio of the pooled means, from the per-episode numbers.
        x = np.array([policies[n]["episode_means_s"] for n in ("u#0", "u#1")])
        g = np.array(policies["greedy"]["episode_means_s"])
        assert x.shape == (2, 2)
        name = scenario["scenario"].rsplit("/", 1)[-1].removesuffix(".yaml")
        row = next(line for line in section.splitlines() if line.startswith(f"| {name} | u |"))
        assert f"| {x.mean() / g.mean():.3f} [" in row
    assert (docs / "results" / "cluster-k8s-edge.png").stat().st_size > 10_000


def test_a_policy_that_errors_makes_the_run_invalid(tmp_path, docs):
    nan = write_untrained_policy(tmp_path / "nan.onnx", weights={"est_delay_s": float("nan")})
    before = (docs / "results.md").read_text()
    result = run_script("--ci-small", "--scenarios", "k8s-edge", "--learned", f"nan={nan}",
                        "--docs", str(docs), "--no-cache")
    assert result.returncode == 1
    assert "invalid run: k8s-edge" in result.stderr and "non-finite" in result.stderr
    assert (docs / "results.md").read_text() == before
    assert not (docs / "results").exists()


def test_a_pattern_that_matches_nothing_is_invalid(tmp_path, docs):
    result = run_script("--ci-small", "--learned", f"x={tmp_path}/none-*.onnx",
                        "--docs", str(docs), "--no-cache")
    assert result.returncode == 1 and "matches no file" in result.stderr


def test_a_run_without_learned_policies_is_refused_and_writes_nothing(tmp_path, docs):
    before = (docs / "results.md").read_text()
    result = run_script("--ci-small", "--docs", str(docs), "--no-cache")
    assert result.returncode == 2
    assert "no --learned policy" in result.stderr
    assert (docs / "results.md").read_text() == before
    assert not (docs / "results").exists()
