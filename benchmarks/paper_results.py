"""Regenerate the ``paper`` results page: train every algorithm over several seeds, evaluate
all policies on held-out seeds, plot learning curves, write the generated part of
docs/results.md.

Steps (each skipped when its output exists, so an interrupted run resumes where it was):

1. ``ladts train`` for every ``--algos`` x ``--seeds`` (``RUNS/<algo>-s<seed>/final.pt``);
2. ``ladts evaluate`` of every heuristic (``size-greedy`` with the weight tuned on training
   seeds, see benchmarks/tune_size_greedy.py) and every checkpoint on the held-out seeds;
3. per-algorithm summaries across training seeds, episodes to convergence, the learning
   curves PNG, and the tables between the GENERATED markers of docs/results.md.

Example (the committed page): ``python benchmarks/paper_results.py`` (``make paper-results``).
Exits non-zero when a run is invalid (a checkpoint placed no task, or a training log is
empty).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from ladts_policy.evaluate import EvaluationReport, evaluate, t_quantile_975

PAPER_REPORTED = {"lad-ts": 7.71, "d2sac": 8.23, "sac": 8.49, "dqn": 8.93, "greedy": 7.36}
"""Converged average delays of the INFOCOM-era README figure (training-episode means, one
seed; greedy = Opt-TS). docs/results.md."""

PAPER_CONVERGENCE = {"lad-ts": 60, "d2sac": 150, "sac": 200, "dqn": 300}
"""Convergence episodes the ToN-era README figure marks (docs/results.md)."""

SAMPLE = "@sample"
MODES = ("", SAMPLE)
"""Each checkpoint is evaluated with argmax actions and with sampled actions."""

LABELS = {"lad-ts": "LAD-TS", "d2sac": "D2SAC-TS", "sac": "SAC-TS", "dqn": "DQN-TS",
          "lad-ts-extended": "LAD-TS extended state",
          "lad-ts-eps-softmax": "LAD-TS, softmax ε-net (as published)",
          "d2sac-eps-softmax": "D2SAC-TS, softmax ε-net"}
BEGIN, END = "<!-- BEGIN GENERATED: benchmarks/paper_results.py -->", "<!-- END GENERATED -->"


def modes(group: str) -> tuple[str, ...]:
    """Evaluation modes of a trained group: DQN's policy is deterministic, argmax only."""
    return ("",) if group.startswith("dqn") else MODES


def convergence_episode(delays: np.ndarray, window: int = 5, tol: float = 0.05) -> int | None:
    """First episode from which the ``window``-episode moving average of the training delay
    stays within ``tol`` of its final level (the mean of the last ``2 * window`` episodes).

    Returns the episode index (the window's last episode) or ``None`` if too short.
    """
    if delays.size < 2 * window:
        return None
    final = float(delays[-2 * window:].mean())
    ma = np.convolve(delays, np.ones(window) / window, mode="valid")
    inside = np.abs(ma / final - 1.0) <= tol
    outside = np.flatnonzero(~inside)
    first = 0 if outside.size == 0 else int(outside[-1]) + 1
    return first + window - 1 if first < ma.size else None


def train_all(algos: list[str], seeds: list[int], episodes: int, runs: Path,
              extra: list[str]) -> None:
    from ladts_policy.cli import main as ladts

    for seed in seeds:  # seed-major: an interrupted sweep still covers every algorithm
        for algo in algos:
            out = runs / f"{algo}-s{seed}"
            if (out / "final.pt").exists():
                continue
            argv = ["train", "--algo", algo, "--seed", str(seed), "--episodes", str(episodes),
                    "--out", str(out), "--no-progress", *extra]
            if (out / "checkpoint.pt").exists():
                argv.append("--resume")
            start = time.perf_counter()
            if ladts(argv) != 0:
                raise SystemExit(f"training failed: {' '.join(argv)}")
            print(f"trained {out.name} in {time.perf_counter() - start:.0f} s", flush=True)


def read_curve(run: Path) -> np.ndarray:
    rows = list(csv.DictReader((run / "log.csv").open()))
    if not rows:
        raise SystemExit(f"invalid run: {run}/log.csv is empty")
    return np.array([float(r["mean_delay_s"]) for r in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", default="lad-ts,d2sac,sac,dqn")
    parser.add_argument("--seeds", type=int, default=5, help="training seeds 0..N-1")
    parser.add_argument("--episodes", type=int, default=60)
    parser.add_argument("--eval-seeds", default="10000-10004")
    parser.add_argument("--size-greedy-weight", type=float, default=None,
                        help="default: the registered (tuned) weight")
    parser.add_argument("--runs", type=Path, default=Path("runs/paper-results"))
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=ARGS",
                        help="an extra trained variant, e.g. 'lad-ts-eps-softmax=--algo "
                             "lad-ts --eps-softmax'; NAME@N=ARGS trains it on N seeds "
                             "(default: --variant-seeds, else --seeds)")
    parser.add_argument("--variant-seeds", type=int, default=None,
                        help="training seeds of the variants (default: --seeds)")
    args = parser.parse_args(argv)
    algos = args.algos.split(",")
    seeds = list(range(args.seeds))
    train_all(algos, seeds, args.episodes, args.runs, [])
    variants: dict[str, list[str]] = {}
    variant_seeds: dict[str, int] = {}
    for spec in args.variant:
        name, _, rest = spec.partition("=")
        name, _, count = name.partition("@")
        variants[name] = rest.split()
        variant_seeds[name] = int(count) if count else (
            args.seeds if args.variant_seeds is None else args.variant_seeds)
    for name in variants:
        for seed in range(variant_seeds[name]):
            out = args.runs / f"{name}-s{seed}"
            if not (out / "final.pt").exists():
                from ladts_policy.cli import main as ladts

                if ladts(["train", *variants[name], "--seed", str(seed), "--episodes",
                          str(args.episodes), "--out", str(out), "--no-progress"]) != 0:
                    raise SystemExit(f"training failed: {name} seed {seed}")
    groups = {a: [args.runs / f"{a}-s{s}" for s in seeds] for a in algos}
    groups.update({v: [args.runs / f"{v}-s{s}" for s in range(variant_seeds[v])]
                   for v in variants})

    lo, hi = (int(v) for v in args.eval_seeds.split("-"))
    eval_seeds = list(range(lo, hi + 1))
    report_path = args.runs / "evaluation.json"
    if report_path.exists():
        doc = json.loads(report_path.read_text())
    else:
        from ladts_policy.train.eval_policy import CheckpointPolicy

        size_greedy = ("size-greedy" if args.size_greedy_weight is None
                       else f"size-greedy:{args.size_greedy_weight:g}")
        heuristics = ["greedy", size_greedy, "least-queue", "capacity-weighted",
                      "round-robin", "random", "local"]
        ckpts = [str(run / "final.pt") + mode for name, runs in groups.items() for run in runs
                 for mode in modes(name)]
        custom = {p: (lambda p=p: CheckpointPolicy(Path(p.removesuffix(SAMPLE)),
                                                   sample=p.endswith(SAMPLE))) for p in ckpts}
        report: EvaluationReport = evaluate("paper", policies=heuristics + ckpts,
                                            seeds=eval_seeds, custom=custom,
                                            show_progress=False)
        doc = report.to_json_dict(with_episodes=True)
        report_path.write_text(json.dumps(doc, indent=2) + "\n")
    policies = doc["policies"]
    for name, entry in policies.items():
        if entry["tasks"] == 0:
            print(f"invalid run: {name} placed no task", file=sys.stderr)
            return 1

    curves = {name: [read_curve(r) for r in runs] for name, runs in groups.items()}
    args.docs.joinpath("results").mkdir(parents=True, exist_ok=True)
    png = args.docs / "results" / "paper-learning-curves.png"
    plot_curves(curves, policies, png)
    table = render(doc, groups, curves, args, png)
    page = args.docs / "results.md"
    text = page.read_text() if page.exists() else f"# Results\n\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    page.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")
    (args.docs / "results" / "paper-learned.json").write_text(json.dumps(
        summaries(doc, groups, curves), indent=2) + "\n")
    print(f"wrote {page}, {png}")
    return 0


def summaries(doc: dict, groups: dict[str, list[Path]], curves: dict[str, list[np.ndarray]]
              ) -> dict[str, dict[str, object]]:
    """Per algorithm: mean over training seeds of each checkpoint's held-out figures."""
    policies = doc["policies"]
    out: dict[str, dict[str, object]] = {}
    for (name, runs), mode in ((g, m) for g in groups.items() for m in modes(g[0])):
        entries = [policies[str(r / "final.pt") + mode] for r in runs]
        means = np.array([e["mean_delay_s"] for e in entries])
        ratios = np.array([e["vs_greedy"] for e in entries])
        half = (t_quantile_975(len(means) - 1) * means.std(ddof=1) / math.sqrt(len(means))
                if len(means) > 1 else math.nan)
        rhalf = (t_quantile_975(len(ratios) - 1) * ratios.std(ddof=1) / math.sqrt(len(ratios))
                 if len(ratios) > 1 else math.nan)
        conv = [convergence_episode(c) for c in curves[name]]
        out[name + mode] = {
            "algorithm": name, "actions": "sampled" if mode else "argmax",
            "training_seeds": len(runs),
            "mean_delay_s": float(means.mean()), "ci95_over_seeds_s": float(half),
            "vs_greedy": float(ratios.mean()), "vs_greedy_ci95_over_seeds": float(rhalf),
            "per_seed_mean_delay_s": [float(m) for m in means],
            "p50_s": float(np.mean([e["p50_s"] for e in entries])),
            "p95_s": float(np.mean([e["p95_s"] for e in entries])),
            "p99_s": float(np.mean([e["p99_s"] for e in entries])),
            "size_quintile_mean_s": [float(v) for v in np.mean(
                [e["size_quintile_mean_s"] for e in entries], axis=0)],
            "train_last10_mean_s": float(np.mean([c[-10:].mean() for c in curves[name]])),
            "convergence_episodes": conv,
            "train_wall_s": [train_wall(r) for r in runs],
        }
    return out


def train_wall(run: Path) -> float:
    rows = list(csv.DictReader((run / "log.csv").open()))
    return float(rows[-1]["wall_s"]) if rows else math.nan


def _half(value: object) -> str:
    """A half-width, or a dash when one seed gives no interval."""
    v = float(value)  # type: ignore[arg-type]
    return "—" if math.isnan(v) else f"{v:.3f}"


def command_line(args: argparse.Namespace) -> str:
    """The command that regenerates this page (variants included)."""
    parts = ["python benchmarks/paper_results.py", f"--seeds {args.seeds}",
             f"--episodes {args.episodes}"]
    parts += [f"--variant '{v}'" for v in args.variant]
    if args.variant_seeds is not None:
        parts.append(f"--variant-seeds {args.variant_seeds}")
    return " ".join(parts)


def render(doc: dict, groups: dict[str, list[Path]], curves: dict[str, list[np.ndarray]],
           args: argparse.Namespace, png: Path) -> str:
    policies = doc["policies"]
    s = summaries(doc, groups, curves)
    n_eval = len(doc["seeds"]) * doc["episodes"]
    lines = [
        f"Held-out seeds {doc['seeds'][0]}..{doc['seeds'][-1]} ({n_eval} episodes, about "
        f"{policies['greedy']['tasks'] // n_eval:,} tasks each, the same for every policy); "
        "frozen final policies with argmax or sampled actions (each row says which); "
        f"{args.seeds} training seed(s) x "
        f"{args.episodes} episodes per algorithm. Command: `{command_line(args)}` "
        "(`make paper-results`).",
        "",
        "| policy | mean delay s (95% CI) | vs greedy (95% CI) | p50 s | p95 s | p99 s | "
        "delay by task-size quintile, small → large (s) | paper reports |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in policies.items():
        if name.endswith(("final.pt", SAMPLE)):
            continue
        q = " / ".join(f"{v:.2f}" for v in entry["size_quintile_mean_s"])
        rci = entry.get("vs_greedy_ci95") or [math.nan, math.nan]
        rep = PAPER_REPORTED.get(name)
        lines.append(
            f"| {name} | {entry['mean_delay_s']:.3f} [{entry['ci95_s'][0]:.3f}, "
            f"{entry['ci95_s'][1]:.3f}] | {entry['vs_greedy']:.3f} [{rci[0]:.3f}, {rci[1]:.3f}]"
            f" | {entry['p50_s']:.2f} | {entry['p95_s']:.2f} | {entry['p99_s']:.2f} | {q} | "
            f"{'' if rep is None else f'{rep:.2f} (Opt-TS)'} |")
    for summary in s.values():
        q = " / ".join(f"{v:.2f}" for v in summary["size_quintile_mean_s"])  # type: ignore[union-attr]
        algo = str(summary["algorithm"])
        rep = PAPER_REPORTED.get(algo)
        label = f"{LABELS.get(algo, algo)}, {summary['actions']}"
        lines.append(
            f"| **{label}** ({summary['training_seeds']} seeds) | "
            f"{summary['mean_delay_s']:.3f} ± {_half(summary['ci95_over_seeds_s'])} | "
            f"{summary['vs_greedy']:.3f} ± {_half(summary['vs_greedy_ci95_over_seeds'])} | "
            f"{summary['p50_s']:.2f} | {summary['p95_s']:.2f} | {summary['p99_s']:.2f} | {q} | "
            f"{'' if rep is None else f'{rep:.2f}'} |")
    lines += ["", "Learned rows: mean over training seeds of each seed's held-out mean, ± the "
              "95% Student-t half-width across training seeds; percentiles and quintiles "
              "averaged over seeds. Heuristic rows: 95% interval across the held-out episodes; "
              "the paired ratio interval is the ratio estimator's over the same episodes "
              "(ladts_policy.evaluate.paired_ratio).", "",
              "| algorithm | held-out mean per training seed, argmax (s) | last-10 "
              "training-episode mean (sampled actions, s) | episodes to convergence per seed "
              "| paper's | training wall-clock per run (s) |", "|---|---|---|---|---|---|"]
    for name, summary in s.items():
        if name.endswith(SAMPLE):
            continue
        per_seed = ", ".join(f"{v:.2f}" for v in summary["per_seed_mean_delay_s"])  # type: ignore[union-attr]
        conv = ", ".join("—" if c is None else str(c)
                         for c in summary["convergence_episodes"])  # type: ignore[union-attr]
        wall = ", ".join(f"{w:.0f}" for w in summary["train_wall_s"])  # type: ignore[union-attr]
        lines.append(f"| {LABELS.get(name, name)} | {per_seed} | "
                     f"{summary['train_last10_mean_s']:.3f} | {conv} | "
                     f"{PAPER_CONVERGENCE.get(name, '')} | {wall} |")
    lines += ["", f"![learning curves]({png.relative_to(args.docs)})"]
    return "\n".join(lines)


def plot_curves(curves: dict[str, list[np.ndarray]], policies: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    for name, runs in curves.items():
        n = min(len(c) for c in runs)
        stack = np.stack([c[:n] for c in runs])
        mean = stack.mean(axis=0)
        line = ax.plot(np.arange(n), mean, label=f"{LABELS.get(name, name)} "
                       f"(mean of {len(runs)} seeds)")[0]
        if len(runs) > 1:
            ax.fill_between(np.arange(n), stack.min(axis=0), stack.max(axis=0),
                            color=line.get_color(), alpha=0.15)
        for c in runs:
            conv = convergence_episode(c)
            if conv is not None:
                ax.axvline(conv, color=line.get_color(), alpha=0.25, lw=0.8)
    for name, style in (("greedy", "k--"), ("capacity-weighted", "k:")):
        if name in policies:
            ax.axhline(policies[name]["mean_delay_s"], color="k",
                       ls=style[1:], lw=1, label=f"{name} (held-out mean)")
    ax.set_xlabel("training episode")
    ax.set_ylabel("mean service delay in the episode, s (sampled actions)")
    ax.set_title("paper preset: training curves (band: min-max over seeds; thin lines: "
                 "convergence episode per seed)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
