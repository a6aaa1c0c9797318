"""The ``k8s-edge`` results: learned cluster policies beside greedy and residency-greedy.

Evaluates ``greedy``, ``residency-greedy`` and every given learned policy (several training
seeds per variant: ONNX files of the serving contract, or cluster checkpoints through the
cluster trainer's evaluation policy, :func:`policy_factory`) on every ``k8s-edge`` preset
and on the held-out clusters of benchmarks/scenarios/heldout/ (clusters the trainer never
generates), on the held-out seeds 10000..10004, all on the same episodes. For each policy
it reports the mean service delay and the ratios of means to greedy and to
residency-greedy over the same episodes, with 95 % percentile-bootstrap intervals that
resample training seeds and episodes together (:func:`ratio_interval`). It writes

- ``--docs``/results/cluster-k8s-edge.json: every per-episode mean, per policy and scenario;
- ``--docs``/results/cluster-k8s-edge.png: the ratio to greedy per scenario, with intervals;
- the section between the markers :data:`BEGIN` / :data:`END` of ``--docs``/results.md
  (``benchmarks/paper_results.py`` owns other markers on that page, so neither overwrites
  the other), including this run's exact command.

The rollout planner is not rerun: its figures in docs/scenarios.md are cited as the
reference. Exits 1, writing nothing, when a run is invalid: a policy raising, a
policy placing fewer tasks than greedy (an episode it did not finish), a missing or
non-finite episode mean, or a ``--learned`` pattern matching nothing.

    python benchmarks/cluster_results.py --learned lad-ts='runs/cluster/lad-ts-s*/policy.onnx'
    python benchmarks/cluster_results.py --ci-small --learned a=A.onnx --docs /tmp/docs

``make cluster-results`` runs the documented configuration. Held-out variants:
benchmarks/scenarios/heldout/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import glob
import hashlib
import json
import math
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ladts_policy.baselines import SchedulingPolicy
from ladts_policy.commands.arg_types import seed_list
from ladts_policy.evaluate import (
    DEFAULT_EVAL_SEEDS,
    EvaluationReport,
    PolicyResult,
    evaluate,
    with_greedy_ratio,
)
from ladts_policy.onnx_eval import OnnxEvalPolicy, check_policy_file
from ladts_policy.policy_contract import PolicyInfo

REPO = Path(__file__).resolve().parents[1]
HELDOUT_DIR = REPO / "benchmarks" / "scenarios" / "heldout"
PRESETS = ("k8s-edge", "k8s-edge-bursty", "k8s-edge-busy", "k8s-edge-200")
"""The ``k8s-edge``-kind presets (``ladts scenarios``); ``k8s-edge-bursty`` is held out too
(the trainer draws Poisson arrivals only)."""

HEURISTICS = ("greedy", "residency-greedy")
"""The references every learned policy is compared with."""

BEGIN = "<!-- BEGIN GENERATED: benchmarks/cluster_results.py -->"
END = "<!-- END GENERATED: benchmarks/cluster_results.py -->"

TARGET_VS_GREEDY = 0.80
"""Issue 10's target on every preset: LAD-TS at most 0.80 x greedy (and at or below
residency-greedy); on held-out clusters never worse than greedy."""

BOOTSTRAP_RESAMPLES = 4000
"""Resamples of :func:`ratio_interval`."""

ROLLOUT_REFERENCE = (
    "| k8s-edge | 60 s | 0.932 [0.790, 1.073] | 1,268 |\n"
    "| k8s-edge-bursty | 30 s | 0.933 [0.655, 1.210] | 1,948 |\n"
    "| k8s-edge-busy | 10 s | 0.951 [0.858, 1.044] | 3,338 |\n"
    "| k8s-edge-200 | 60 s | 0.999 [0.905, 1.092] | 93 |"
)
"""The rollout planner's ratios to greedy as measured in docs/scenarios.md ("Baselines
beyond greedy"; seeds 10000-10002, one episode each: one hour, ``k8s-edge-200`` its 600 s),
quoted, not rerun."""

CI_SMALL_HORIZON_S = 120.0
"""``--ci-small``: seconds of arrivals per episode."""


@dataclass(frozen=True)
class Learned:
    """One learned variant: its name and one policy file per training seed."""

    name: str
    """Variant name (``lad-ts``, ``d2sac``, ...)."""

    files: tuple[Path, ...]
    """ONNX files (or checkpoints) of its training seeds, sorted."""


def parse_learned(specs: Sequence[str]) -> list[Learned]:
    """``NAME=GLOB`` arguments to variants (raises ValueError on a bad spec or no match)."""
    out: list[Learned] = []
    for spec in specs:
        name, sep, pattern = spec.partition("=")
        if not sep or not name or not pattern:
            raise ValueError(f"--learned {spec!r}: expected NAME=GLOB")
        if name in HEURISTICS or any(v.name == name for v in out):
            raise ValueError(f"--learned {spec!r}: name {name!r} is taken")
        files = tuple(sorted(Path(p) for p in glob.glob(pattern, recursive=True)))
        if not files:
            raise ValueError(f"--learned {spec!r}: the pattern matches no file")
        out.append(Learned(name, files))
    return out


def policy_factory(path: Path, name: str) -> tuple[Callable[[], SchedulingPolicy], PolicyInfo]:
    """A factory of the evaluation policy of ``path`` named ``name``, and what it declares.

    ONNX files run through :class:`ladts_policy.onnx_eval.OnnxEvalPolicy`. Anything else is
    a cluster checkpoint, run by the cluster trainer's own evaluation policy
    (``ladts_policy.train.cluster_eval_policy``, torch), which decides as the ONNX path does
    and starts a D2SAC actor from N(0, I) as it was trained (its ONNX export would be fed the
    latent memory instead: evaluate D2SAC from its checkpoints).

    Raises:
        ValueError: a checkpoint without the cluster trainer installed.
        PolicyFileError: an ONNX file that does not load or is off the contract.
    """
    if path.suffix == ".onnx":
        info = check_policy_file(path)
        return (lambda: OnnxEvalPolicy(path, name=name)), info
    try:
        from ladts_policy.train.cluster_eval_policy import load_checkpoint_policy
    except ImportError as exc:
        raise ValueError(f"{path}: a checkpoint needs the cluster trainer "
                         f"(ladts_policy.train.cluster_eval_policy, torch): {exc}") from None

    def load() -> SchedulingPolicy:
        policy = load_checkpoint_policy(path)
        policy.name = name
        return policy

    probe = load_checkpoint_policy(path)
    return load, probe.info


def display_path(name_or_path: str) -> str:
    """A preset name, or a file path relative to the repository when it is inside it."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        return name_or_path
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return name_or_path


def scenario_document(name_or_path: str) -> dict:
    """The YAML mapping of a preset name or a scenario file."""
    from importlib import resources

    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return dict(yaml.safe_load(path.read_text()))
    entry = resources.files("ladts_policy.scenarios").joinpath(f"{name_or_path}.yaml")
    return dict(yaml.safe_load(entry.read_text()))


def with_horizon(name_or_path: str, horizon_s: float | None, tmp: Path) -> str:
    """The scenario itself, or a copy with ``horizon_s`` seconds of arrivals (in ``tmp``)."""
    if horizon_s is None:
        return name_or_path
    doc = scenario_document(name_or_path)
    doc["cluster"]["horizon_s"] = float(horizon_s)
    if "gpu_profiles" in doc["cluster"] and isinstance(doc["cluster"]["gpu_profiles"], str):
        raise ValueError(f"{name_or_path}: --horizon-s cannot relocate a gpu_profiles file")
    out = tmp / f"{doc['name']}.yaml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(out)


def ratio_interval(x_SK: np.ndarray, ref_K: np.ndarray, *, seed: int = 0,
                   resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float, float]:
    """Ratio of means ``mean(x) / mean(ref)`` and its 95 % percentile-bootstrap interval.

    ``x_SK``: per-episode means of ``S`` training seeds on ``K`` episodes; ``ref_K``: the
    reference's per-episode means on the same episodes. Each resample draws training seeds
    and episodes with replacement (the same episodes for the policy and its reference, so
    the pairing is kept); with one seed only episodes vary.
    """
    x_SK = np.atleast_2d(np.asarray(x_SK, dtype=float))
    ref_K = np.asarray(ref_K, dtype=float)
    if x_SK.shape[1] != ref_K.shape[0]:
        raise ValueError(f"paired episodes differ: {x_SK.shape} vs {ref_K.shape}")
    ratio = float(x_SK.mean() / ref_K.mean())
    s, k = x_SK.shape
    if k < 2:
        return ratio, math.nan, math.nan
    rng = np.random.default_rng(seed)
    seeds_RS = rng.integers(0, s, size=(resamples, s))
    eps_RK = rng.integers(0, k, size=(resamples, k))
    num_R = x_SK[seeds_RS[:, :, None], eps_RK[:, None, :]].mean(axis=(1, 2))
    den_R = ref_K[eps_RK].mean(axis=1)
    low, high = np.percentile(num_R / den_R, [2.5, 97.5])
    return ratio, float(low), float(high)


@dataclass(frozen=True)
class Row:
    """One policy on one scenario."""

    policy: str
    """Heuristic name or learned variant name."""
    seeds: int
    """Training seeds (1 for a heuristic)."""
    mean_s: float
    """Mean service delay over seeds and episodes, s."""
    p95_s: float
    """Mean over training seeds of the pooled 95th percentile, s."""
    vs_greedy: tuple[float, float, float]
    """Ratio to greedy with its 95 % interval."""
    vs_residency: tuple[float, float, float]
    """Ratio to residency-greedy with its 95 % interval."""
    seed_ratio_range: tuple[float, float]
    """Smallest and largest ratio to greedy of one training seed."""
    decisions_per_s: float
    """Mean decisions per second of wall time (shared machine)."""


def invalid_reasons(report: EvaluationReport, expected_episodes: int) -> list[str]:
    """Why a report cannot be used (empty when it is valid)."""
    reasons = []
    greedy_tasks = report.policies["greedy"].tasks
    for name, r in report.policies.items():
        if len(r.episode_means_s) != expected_episodes:
            reasons.append(f"{name}: {len(r.episode_means_s)} of {expected_episodes} "
                           "episodes have a mean (an episode placed no task)")
        if not np.all(np.isfinite(r.episode_means_s)):
            reasons.append(f"{name}: non-finite episode means")
        if r.tasks != greedy_tasks:
            reasons.append(f"{name}: placed {r.tasks} tasks, greedy {greedy_tasks} "
                           "(an episode it did not finish)")
    return reasons


def summarise_scenario(report: EvaluationReport, learned: Sequence[Learned],
                       members: dict[str, list[str]]) -> list[Row]:
    """Rows of the heuristics and of each learned variant (its seeds pooled)."""
    p = report.policies
    g_K = np.array(p["greedy"].episode_means_s)
    r_K = np.array(p["residency-greedy"].episode_means_s)
    groups = [(h, [h]) for h in HEURISTICS] + [(v.name, members[v.name]) for v in learned]
    rows = []
    for name, names in groups:
        x_SK = np.array([p[n].episode_means_s for n in names])
        per_seed = x_SK.mean(axis=1) / g_K.mean()
        rows.append(Row(
            policy=name, seeds=len(names), mean_s=float(x_SK.mean()),
            p95_s=float(np.mean([p[n].p95_s for n in names])),
            vs_greedy=ratio_interval(x_SK, g_K), vs_residency=ratio_interval(x_SK, r_K),
            seed_ratio_range=(float(per_seed.min()), float(per_seed.max())),
            decisions_per_s=float(np.mean([p[n].decisions_per_s for n in names])),
        ))
    return rows


def member_name(variant: str, index: int) -> str:
    """Evaluation name of a variant's ``index``-th file: the noise seed follows the name."""
    return f"{variant}#{index}"


def run_scenario(scenario: str, label: str, learned: Sequence[Learned],
                 factories: dict[str, Callable[[], SchedulingPolicy]],
                 args: argparse.Namespace, tmp: Path
                 ) -> tuple[EvaluationReport, dict[str, list[str]]]:
    """Evaluate the heuristics and every learned file on ``scenario`` (same episodes).

    One ``evaluate`` call per policy: episodes depend only on the seeds and a policy's own
    randomness only on its name (``ladts_policy.evaluate.policy_seed``), so this equals one
    joint call, and each policy's result can be cached on its own (:func:`cache_key`): a
    rerun evaluates only the policies (files) that are new or changed.
    """
    members = {v.name: [member_name(v.name, i) for i in range(len(v.files))] for v in learned}
    files = {member_name(v.name, i): f for v in learned for i, f in enumerate(v.files)}
    horizon = horizon_for(label, args)
    scenario_file = with_horizon(scenario, horizon, tmp)
    results: dict[str, PolicyResult] = {}
    for name in [*HEURISTICS, *files]:
        key = cache_key(display_path(scenario), args, name, files.get(name), horizon)
        result = read_cache(args.cache, label, name, key)
        if result is None:
            custom = {name: factories[name]} if name in factories else None
            report = evaluate(scenario_file, policies=[name], seeds=args.seeds,
                              episodes=args.episodes, show_progress=not args.no_progress,
                              custom=custom)
            result = report.policies[name]
            if len(result.episode_means_s) == len(args.seeds) * args.episodes:
                write_cache(args.cache, label, name, key, result)
        else:
            print(f"  {name}: from the cache", flush=True)
        results[name] = result
    report = EvaluationReport(scenario=display_path(scenario), seeds=list(args.seeds),
                              episodes=args.episodes, policies=with_greedy_ratio(results))
    return report, members


def fmt_ratio(r: tuple[float, float, float]) -> str:
    """``0.912 [0.850, 0.975]``."""
    if math.isnan(r[1]):
        return f"{r[0]:.3f}"
    return f"{r[0]:.3f} [{r[1]:.3f}, {r[2]:.3f}]"


def target_notes(rows: Sequence[Row], heldout: bool, variant: str | None) -> str:
    """Whether ``variant`` meets issue 10's target on this scenario (printed, not asserted)."""
    row = next((r for r in rows if r.policy == variant), None)
    if row is None:
        return "—"
    if heldout:
        return "met (≤ greedy)" if row.vs_greedy[0] <= 1.0 else "missed (> greedy)"
    ok_g = row.vs_greedy[0] <= TARGET_VS_GREEDY
    ok_r = row.vs_residency[0] <= 1.0
    if ok_g and ok_r:
        return f"met (≤ {TARGET_VS_GREEDY} × greedy, ≤ residency-greedy)"
    missed = ([f"> {TARGET_VS_GREEDY} × greedy"] if not ok_g else []) + (
        ["> residency-greedy"] if not ok_r else [])
    return "missed (" + ", ".join(missed) + ")"


def horizon_for(label: str, args: argparse.Namespace) -> float | None:
    """The episode horizon of a scenario: ``--horizon-s`` unless ``--keep-horizon`` names it."""
    keep = {k for k in args.keep_horizon.split(",") if k}
    return None if label in keep else args.horizon_s


@functools.cache
def code_digest() -> str:
    """SHA-256 (16 hex) of the ``ladts_policy`` sources: a cached result of older simulator,
    baseline or evaluation code is not reused."""
    import ladts_policy

    root = Path(ladts_policy.__file__).parent
    digest = hashlib.sha256()
    for source in sorted(root.rglob("*.py")):
        digest.update(source.relative_to(root).as_posix().encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def scenario_digest(scenario: str) -> str:
    """SHA-256 (16 hex) of the scenario document (a file, or a preset of the package)."""
    import ladts_policy

    path = Path(scenario)
    if not path.is_file():
        path = Path(ladts_policy.__file__).parent / "scenarios" / f"{scenario}.yaml"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else ""


def cache_key(scenario: str, args: argparse.Namespace, name: str, file: Path | None,
              horizon_s: float | None) -> dict:
    """What a cached result must match to be reused: scenario (name and content), seeds,
    episodes, horizon, the policy's name and its file (path, size, modification time), and
    the ``ladts_policy`` code that produced it."""
    ident = None if file is None else [str(file), file.stat().st_size, file.stat().st_mtime_ns]
    return {"scenario": scenario, "scenario_sha256": scenario_digest(scenario),
            "code_sha256": code_digest(), "seeds": list(args.seeds),
            "episodes": args.episodes, "horizon_s": horizon_s, "policy": name, "file": ident}


def _cache_file(folder: Path, label: str, name: str) -> Path:
    return folder / label / f"{name.replace('/', '_')}.json"


def read_cache(folder: Path | None, label: str, name: str, key: dict) -> PolicyResult | None:
    """The cached result of policy ``name`` on ``label`` when its key matches, else None."""
    if folder is None or not _cache_file(folder, label, name).is_file():
        return None
    doc = json.loads(_cache_file(folder, label, name).read_text())
    if doc.get("key") != key:
        return None
    entry = {**doc["result"], "ci95_s": tuple(doc["result"]["ci95_s"]),
             "vs_greedy": None, "vs_greedy_ci95": None}
    return PolicyResult(**entry)


def write_cache(folder: Path | None, label: str, name: str, key: dict,
                result: PolicyResult) -> None:
    """Keep one policy's result on one scenario, so a rerun skips it."""
    if folder is None:
        return
    path = _cache_file(folder, label, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = dataclasses.asdict(result)
    path.write_text(json.dumps({"key": key, "result": entry}) + "\n")


def render_markdown(results: dict[str, list[Row]], heldout: set[str], learned: Sequence[Learned],
                    infos: dict[str, list[str]], args: argparse.Namespace, command: str,
                    png_name: str, elapsed_s: float) -> str:
    """The generated section of docs/results.md."""
    variant = "lad-ts" if any(v.name == "lad-ts" for v in learned) else (
        learned[0].name if learned else None)
    horizon = ("each scenario's own horizon (one hour; 20 minutes for heldout-100-nodes)"
               if args.horizon_s is None else f"{args.horizon_s:g}-s episodes")
    if args.horizon_s is not None and args.keep_horizon:
        horizon += (" except " + ", ".join(k for k in args.keep_horizon.split(",") if k)
                    + " (their own horizon: one hour)")
    lines = [
        f"Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by",
        "",
        "```sh",
        command,
        "```",
        "",
        f"Held-out seeds {args.seeds[0]}..{args.seeds[-1]} × {args.episodes} episode(s), "
        f"{horizon}; the same episodes for every policy. Ratios are ratios of means over those "
        "episodes with 95 % percentile-bootstrap intervals resampling training seeds and "
        f"episodes ({BOOTSTRAP_RESAMPLES} resamples); *seed range* is the smallest and largest "
        "ratio to greedy of one training seed; p95 is the mean over training seeds of the "
        "pooled 95th percentile. Decisions/s are wall-clock on the shared 2-core machine, "
        "while the trainer and other developers' jobs ran"
        f" (this invocation took {elapsed_s / 60:.1f} min; scenarios reused from the cache "
        "keep their first run's figures)."
        + (f" Left out: {args.exclude.replace(',', ', ')} (`--exclude`)." if args.exclude
           else ""),
        "",
        "Learned policies decide by the argmax of their probabilities over the valid nodes: "
        "ONNX files through the serving path (`features.encode` → onnxruntime, latent memory "
        "per task class), checkpoints (`.pt`) through the cluster trainer's evaluation policy "
        "(the same path with the torch actor; D2SAC starts every chain from N(0, I) as it "
        "was trained). `k8s-edge-bursty` is a preset the trainer never saw either (it draws "
        "Poisson arrivals only); it is held to the preset targets below.",
        "",
    ]
    for v in learned:
        lines.append(f"- `{v.name}`: {len(v.files)} training seed(s): "
                     + ", ".join(f"`{f}` ({i})" for f, i in zip(v.files, infos[v.name],
                                                               strict=True)))
    lines += ["", f"![ratio to greedy per scenario]({png_name})", ""]
    for title, names in (("Presets", [s for s in results if s not in heldout]),
                         ("Held-out clusters (never generated in training; "
                          "benchmarks/scenarios/heldout/)", [s for s in results if s in heldout])):
        if not names:
            continue
        lines += [f"**{title}**", "",
                  "| scenario | policy | seeds | mean s | p95 s | vs greedy [95% CI] | "
                  "vs residency-greedy [95% CI] | seed range | decisions/s |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for scenario in names:
            for r in results[scenario]:
                lines.append(
                    f"| {scenario} | {r.policy} | {r.seeds} | {r.mean_s:.3f} | {r.p95_s:.2f} | "
                    f"{fmt_ratio(r.vs_greedy)} | {fmt_ratio(r.vs_residency)} | "
                    f"{r.seed_ratio_range[0]:.3f}–{r.seed_ratio_range[1]:.3f} | "
                    f"{r.decisions_per_s:,.0f} |")
        lines.append("")
        if variant:
            lines += [f"Issue 10's targets for `{variant}` (mean ratio; printed, not asserted): "
                      + "; ".join(f"{s}: {target_notes(results[s], s in heldout, variant)}"
                                  for s in names), ""]
    lines += [
        "The rollout planner, the reference (docs/scenarios.md, \"Baselines beyond greedy\"; "
        "seeds 10000–10002, one episode each: one hour, k8s-edge-200 its 600 s; not rerun here):",
        "",
        "| preset | rollout horizon | vs greedy [paired 95% CI] | decisions/s |",
        "|---|---|---|---|",
        ROLLOUT_REFERENCE,
    ]
    return "\n".join(lines)


def write_section(page: Path, section: str) -> None:
    """Replace the text between :data:`BEGIN` and :data:`END` (append both when absent)."""
    text = page.read_text() if page.exists() else "# Results\n"
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
    else:
        head, tail = text.rstrip("\n") + "\n\n", "\n"
    page.write_text(f"{head}{BEGIN}\n{section}\n{END}{tail}")


def plot(results: dict[str, list[Row]], out: Path) -> Path:
    """Ratio to greedy per scenario and policy, with intervals; lines at 1 and the target."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(results)
    policies = [r.policy for r in results[scenarios[0]] if r.policy != "greedy"]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(scenarios) + 2), 4.2))
    width = 0.8 / max(len(policies), 1)
    for j, name in enumerate(policies):
        xs, ys, lo, hi = [], [], [], []
        for i, s in enumerate(scenarios):
            row = next(r for r in results[s] if r.policy == name)
            ratio, low, high = row.vs_greedy
            xs.append(i + (j - (len(policies) - 1) / 2) * width)
            ys.append(ratio)
            lo.append(0.0 if math.isnan(low) else ratio - low)
            hi.append(0.0 if math.isnan(high) else high - ratio)
        ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", capsize=3, label=name)
    ax.set_yscale("log")  # ratios: 0.8 and 1.25 are equally far from 1
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%.1f"))
    ax.axhline(1.0, color="black", lw=0.8, label="greedy")
    ax.axhline(TARGET_VS_GREEDY, color="grey", ls="--", lw=0.8, label="target (presets)")
    ax.set_xticks(range(len(scenarios)))
    ax.set_xticklabels(scenarios, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("mean delay / greedy's (95% CI)")
    ax.set_title("k8s-edge: learned policies vs greedy, held-out seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learned", action="append", default=[], metavar="NAME=GLOB",
                        help="a learned variant: its training seeds' ONNX files or cluster "
                             "checkpoints (repeatable)")
    parser.add_argument("--scenarios", default=None,
                        help="comma-separated presets or files (default: every k8s-edge "
                             "preset and every file of benchmarks/scenarios/heldout/)")
    parser.add_argument("--seeds", type=seed_list, default=list(DEFAULT_EVAL_SEEDS),
                        help="held-out seeds (default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=1, help="episodes per seed")
    parser.add_argument("--horizon-s", type=float, default=None,
                        help="shorten every scenario to this many seconds of arrivals")
    parser.add_argument("--keep-horizon", default="",
                        help="comma-separated scenario names that keep their own horizon "
                             "despite --horizon-s")
    parser.add_argument("--docs", type=Path, default=REPO / "docs",
                        help="docs folder: results.md and results/ (default: the repository's)")
    parser.add_argument("--ci-small", action="store_true",
                        help=f"tiny run for CI: {CI_SMALL_HORIZON_S:g}-s episodes, seeds "
                             "10000-10001, k8s-edge and heldout-4-nodes only")
    parser.add_argument("--exclude", default="",
                        help="comma-separated scenario names to leave out (e.g. k8s-edge-200)")
    parser.add_argument("--cache", type=Path, default=REPO / "runs" / "cluster-results",
                        help="folder of per-policy results: a rerun with the same seeds, "
                             "horizon and files reuses them (default: %(default)s)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write it")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    args = parser.parse_args(argv)
    if args.ci_small:
        args.horizon_s = CI_SMALL_HORIZON_S
        args.seeds = [10_000, 10_001]
        args.scenarios = args.scenarios or f"k8s-edge,{HELDOUT_DIR / 'heldout-4-nodes.yaml'}"
    if args.no_cache:
        args.cache = None
    if any(s < DEFAULT_EVAL_SEEDS[0] for s in args.seeds):
        parser.error("evaluation seeds start at 10000 (training uses the seeds below)")
    if not args.learned:
        parser.error("no --learned policy: the section would hold the baselines only")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run, check validity, write the JSON, the figure and the docs section."""
    args = parse_args(argv)
    command = "python benchmarks/cluster_results.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    try:
        learned = parse_learned(args.learned)
    except ValueError as exc:
        print(f"invalid run: {exc}", file=sys.stderr)
        return 1
    heldout_files = sorted(str(p) for p in HELDOUT_DIR.glob("*.yaml"))
    scenarios = (args.scenarios.split(",") if args.scenarios
                 else [*PRESETS, *heldout_files])
    excluded = {e for e in args.exclude.split(",") if e}
    scenarios = [s for s in scenarios if Path(s).stem not in excluded]
    heldout = {Path(s).stem for s in scenarios if Path(s).resolve().parent == HELDOUT_DIR}
    started = time.perf_counter()
    results: dict[str, list[Row]] = {}
    raw: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="ladts-cluster-results-") as tmp_name:
        tmp = Path(tmp_name)
        infos: dict[str, list[str]] = {}
        factories: dict[str, Callable[[], SchedulingPolicy]] = {}
        try:
            for v in learned:
                infos[v.name] = []
                for i, f in enumerate(v.files):
                    name = member_name(v.name, i)
                    factories[name], info = policy_factory(f, name)
                    infos[v.name].append(f"{info.policy_version} (seed {info.training_seed})")
        except Exception as exc:  # unreadable, off-contract, not a checkpoint, no torch
            print(f"invalid run: a learned policy does not load: {exc}", file=sys.stderr)
            return 1
        for scenario in scenarios:
            label = Path(scenario).stem if scenario.endswith((".yaml", ".yml")) else scenario
            print(f"== {label}", flush=True)
            try:
                report, members = run_scenario(scenario, label, learned, factories, args, tmp)
            except Exception as exc:  # a policy erroring makes the whole run invalid
                print(f"invalid run: {label}: {type(exc).__name__}: {exc}", file=sys.stderr)
                return 1
            reasons = invalid_reasons(report, len(args.seeds) * args.episodes)
            if reasons:
                print(f"invalid run: {label}: " + "; ".join(reasons), file=sys.stderr)
                return 1
            rows = summarise_scenario(report, learned, members)
            results[label] = rows
            raw[label] = {**report.to_json_dict(with_episodes=True), "members": members}
            for r in rows:
                print(f"  {r.policy:<24} seeds {r.seeds}  mean {r.mean_s:8.3f} s  vs greedy "
                      f"{fmt_ratio(r.vs_greedy):<26} vs residency-greedy "
                      f"{fmt_ratio(r.vs_residency)}", flush=True)
    elapsed = time.perf_counter() - started
    results_dir = args.docs / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    png = plot(results, results_dir / "cluster-k8s-edge.png")
    (results_dir / "cluster-k8s-edge.json").write_text(json.dumps(
        {"command": command, "seeds": args.seeds, "episodes": args.episodes,
         "horizon_s": args.horizon_s, "learned": {v.name: [str(f) for f in v.files]
                                                  for v in learned},
         "scenarios": raw}, indent=2) + "\n")
    section = render_markdown(results, heldout, learned, infos, args, command,
                              f"results/{png.name}", elapsed)
    write_section(args.docs / "results.md", section)
    print(f"wrote {args.docs / 'results.md'}, {png}, {results_dir / 'cluster-k8s-edge.json'} "
          f"({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
