"""Held-out table of trained cluster policies from ``ladts evaluate --json`` reports.

``ladts evaluate`` gives every policy its own seed from its name only, so reports of the same
scenario and evaluation seeds written by separate runs can be merged: this script reads them,
checks they agree on scenario and seeds, and prints one Markdown row per policy with its mean
delay, its paired ratio to greedy and to residency-greedy (the ratio estimator of
``ladts_policy.evaluate.paired_ratio``, 95 % interval over the held-out episodes), then one
row per variant (``runs/<variant>-s<seed>/<file>``; files other than ``final.*``, e.g.
``bc.onnx``, make their own variant rows): the mean of its seeds' ratios with a
Student-t interval over training seeds. Example::

    python benchmarks/cluster_policy_table.py runs/eval/k8s-edge/*.json

Exits non-zero when the reports disagree or greedy / residency-greedy is missing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from ladts_policy.evaluate import paired_ratio, t_quantile_975

VARIANT = re.compile(r"(?:^|/)(?P<variant>[^/]+)-s(?P<seed>\d+)/(?P<stem>[^/.]+)\.[^/]+$")


def _fmt(ratio: float, ci: tuple[float, float] | None) -> str:
    return f"{ratio:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{ratio:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    args = parser.parse_args(argv)
    merged: dict[str, dict[str, object]] = {}
    key = None
    for path in args.reports:
        report = json.loads(path.read_text())
        this = (report["scenario"], tuple(report["seeds"]), report["episodes"])
        if key is not None and this != key:
            print(f"{path}: scenario/seeds {this} differ from {key}", file=sys.stderr)
            return 1
        key = this
        merged.update(report["policies"])
    if "greedy" not in merged or "residency-greedy" not in merged:
        print("greedy and residency-greedy must be among the reports", file=sys.stderr)
        return 1
    g = np.array(merged["greedy"]["episode_means_s"])
    r = np.array(merged["residency-greedy"]["episode_means_s"])
    assert key is not None
    print(f"scenario {key[0]}, held-out seeds {list(key[1])}, {key[2]} episode(s) each\n")
    print("| policy | mean delay s | × greedy [95 % CI] | × residency-greedy [95 % CI] |")
    print("|---|---|---|---|")
    variants: dict[str, list[tuple[float, float]]] = {}
    for name, result in merged.items():
        x = np.array(result["episode_means_s"])
        vg, vg_ci = paired_ratio(x, g)
        vr, vr_ci = paired_ratio(x, r)
        print(f"| {name} | {result['mean_delay_s']:.3f} | {_fmt(vg, vg_ci)} | "
              f"{_fmt(vr, vr_ci)} |")
        match = VARIANT.search(name)
        if match:
            stem = "" if match["stem"] == "final" else f" ({match['stem']})"
            variants.setdefault(match["variant"] + stem, []).append((vg, vr))
    if variants:
        print("\n| variant | training seeds | × greedy, mean over seeds [95 % CI] | "
              "× residency-greedy, mean over seeds [95 % CI] |")
        print("|---|---|---|---|")
        for variant, rows in variants.items():
            cells = []
            for column in np.array(rows).T:
                mean = float(column.mean())
                if column.size > 1:
                    half = t_quantile_975(column.size - 1) * float(column.std(ddof=1)) / (
                        column.size ** 0.5)
                    cells.append(f"{mean:.3f} [{mean - half:.3f}, {mean + half:.3f}]")
                else:
                    cells.append(f"{mean:.3f}")
            print(f"| {variant} | {len(rows)} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
