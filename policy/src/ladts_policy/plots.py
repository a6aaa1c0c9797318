"""Figures for evaluation reports (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ladts_policy.evaluate import EvaluationReport


def plot_report(report: EvaluationReport, path: Path) -> Path:
    """Save a two-panel PNG: mean delay with 95% interval and episode means; tail percentiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report.policies)
    results = [report.policies[n] for n in names]
    x_P = np.arange(len(names))
    fig, (ax_mean, ax_tail) = plt.subplots(1, 2, figsize=(12, 4.5))

    means_P = np.array([r.mean_delay_s for r in results])
    lo_P = np.array([r.ci95_s[0] for r in results])
    hi_P = np.array([r.ci95_s[1] for r in results])
    err_2P = np.nan_to_num(np.vstack([means_P - lo_P, hi_P - means_P]))
    ax_mean.bar(x_P, means_P, yerr=err_2P, capsize=4, color="#4c72b0", alpha=0.8,
                label="mean, 95% interval")
    for i, r in enumerate(results):
        jitter_K = np.linspace(-0.2, 0.2, max(len(r.episode_means_s), 1))
        ax_mean.scatter(i + jitter_K[: len(r.episode_means_s)], r.episode_means_s, s=10,
                        color="black", zorder=3, label="episode mean" if i == 0 else None)
    if means_P.max() > 20 * max(means_P.min(), 1e-9):
        # Heuristics can differ by orders of magnitude on overloaded clusters.
        ax_mean.set_yscale("log")
        ax_mean.set_ylabel("service delay (s), log scale")
    else:
        ax_mean.set_ylabel("service delay (s)")
    ax_mean.set_title("Mean service delay")
    ax_mean.legend(loc="upper left", fontsize=8)

    for offset, attr, marker in ((-0.2, "p50_s", "o"), (0.0, "p95_s", "s"), (0.2, "p99_s", "^")):
        ax_tail.scatter(x_P + offset, [getattr(r, attr) for r in results], marker=marker,
                        label=attr.removesuffix("_s"))
    ax_tail.set_yscale("log")
    ax_tail.set_ylabel("service delay (s), log scale")
    ax_tail.set_title("Delay percentiles over all tasks")
    ax_tail.legend(fontsize=8)

    for ax in (ax_mean, ax_tail):
        ax.set_xticks(x_P, names, rotation=30, ha="right")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{report.scenario}: {len(report.seeds)} held-out seeds x "
                 f"{report.episodes} episode(s)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
