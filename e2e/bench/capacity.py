"""Capacity: the highest arrival rate each scheduler serves with p95 service delay <= a limit.

A script, not a test. For each scheduler (those of ``e2e/bench/end_to_end.py``) it runs the
end-to-end benchmark's episode (:func:`e2e.bench.end_to_end.run_one`: a fresh control plane,
the simulator's seeded arrivals, the same emulated cluster) at each rate of ``--rates`` in
increasing order, and stops at the first rate whose p95 service delay (bind → finish, cluster
seconds, of the requests arriving after ``--warmup-s``; mean over ``--seeds``) exceeds
``--p95-limit-s`` or whose run could not finish its
pods in the wall bound (an overloaded cluster). The capacity is the highest rate before that.
For the ladts schedulers the simulator's p95 for the same scorer on the same arrivals is
printed beside each rate.

Short horizons understate how far an overloaded queue grows (an unstable rate's p95 keeps
rising with the horizon), so a rate that passes a short run is an upper bound on what the
scheduler sustains; the sweep reports the horizon with the result.

Exits 1 when a run is invalid for another reason than overload (pods lost, rejected,
controller errors, the extender not binding its pods).

Usage::

    python -m e2e.bench.capacity --scenario k8s-edge --scheduler default,ladts \\
        --rates 0.25,0.5,0.75,1,1.5,2,3,4 --horizon-s 60 --seeds 0 --out runs/bench/capacity
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from e2e.bench.end_to_end import SCHEDULERS, run_one
from e2e.bench.ladts_stack import policy_sha256
from e2e.bench.stats import delay_stats
from e2e.bench.workload import bench_cluster, draw_requests
from e2e.emulation.scenario_nodes import load_cluster

#: Problems that mean "overloaded" rather than "invalid": the pods did not all finish in time.
OVERLOAD_MARKERS = ("pods not finished", "run cut at the wall bound", "pods never bound")


def overloaded_only(problems: Sequence[str]) -> bool:
    """Whether every problem of a run is a symptom of overload (none is a lost pod/error)."""
    return all(any(m in p for m in OVERLOAD_MARKERS) for p in problems)


def capacity(points: Sequence[dict[str, Any]], limit_s: float) -> float:
    """Highest rate of the ascending sweep ``points`` before the first that is not sustained
    (0 when the lowest already fails)."""
    best = 0.0
    for point in points:
        if not point["sustained"]:
            break
        best = point["rate_per_s"]
    return best


def sweep(name: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """One scheduler over the rates, stopping at the first rate not sustained."""
    sched = SCHEDULERS[name]
    points: list[dict[str, Any]] = []
    for rate in args.rate_list:
        cluster = bench_cluster(load_cluster(args.scenario), args.horizon_s, rate)
        runs, p95s, sim_p95s = [], [], []
        for seed in args.seed_list:
            result, done = run_one(sched, cluster, seed, args.time_scale, args.max_wall_s,
                                   args.out / f"rate-{rate:g}")
            runs.append(result)
            steady = [r.service_delay_s for r in done if r.created_s >= args.warmup_s]
            result["steady_service_delay_s"] = delay_stats(steady)
            p95s.append(result["steady_service_delay_s"]["p95"])
            if "sim_prediction" in result:
                arrivals = [q.arrival_s for q in draw_requests(cluster, seed)]
                sim_d = [d for d, t in zip(result["sim_prediction"]["delays_s"], arrivals,
                                         strict=True) if t >= args.warmup_s]
                sim_p95s.append(delay_stats(sim_d)["p95"])
        p95 = float(np.mean(p95s))
        problems = [p for r in runs for p in r["problems"]]
        point: dict[str, Any] = {
            "rate_per_s": rate,
            "p95_s": p95,
            "mean_s": float(np.mean([r["steady_service_delay_s"]["mean"] for r in runs])),
            "pods": int(sum(r["created"] for r in runs)),
            "problems": problems,
            "invalid": bool(problems) and not overloaded_only(problems),
            "sustained": not problems and not math.isnan(p95) and p95 <= args.p95_limit_s,
            "runs": runs,
        }
        if len(sim_p95s) == len(runs):
            point["sim_p95_s"] = float(np.mean(sim_p95s))
        points.append(point)
        sim = f", simulator p95 {point['sim_p95_s']:.1f} s" if "sim_p95_s" in point else ""
        print(f"  {name} at {rate:g} req/s: p95 {p95:.1f} s, mean {point['mean_s']:.1f} s "
              f"({point['pods']} pods{sim}) -> "
              f"{'sustained' if point['sustained'] else 'NOT sustained'}"
              + (f"; {'INVALID' if point['invalid'] else 'overloaded'}: {problems[:2]}"
                 if problems else ""), flush=True)
        if not point["sustained"]:
            break
    return points


def write_plot(path: Path, summary: dict[str, Any]) -> None:
    """p95 service delay against the arrival rate per scheduler, the limit as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (name, points) in enumerate(summary["sweeps"].items()):
        rates = [p["rate_per_s"] for p in points]
        ax.plot(rates, [p["p95_s"] for p in points], "o-", color=f"C{i}", label=f"{name} (live)")
        if all("sim_p95_s" in p for p in points):
            ax.plot(rates, [p["sim_p95_s"] for p in points], "x--", color=f"C{i}",
                    label=f"{name} (simulator)")
    ax.axhline(summary["p95_limit_s"], color="k", lw=0.8, ls=":", label="limit")
    ax.set_yscale("log")
    ax.set_xlabel("arrival rate, requests per cluster second")
    ax.set_ylabel("p95 service delay, s")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(f"{summary['scenario']}: {summary['horizon_s']:g} s of arrivals (first "
                 f"{summary['warmup_s']:g} s not counted), "
                 f"seeds {summary['seed_list']}, time scale {summary['time_scale']:g}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="k8s-edge", help="preset name or scenario YAML path")
    p.add_argument("--scheduler", default="default,ladts",
                   help=f"comma-separated, of {', '.join(SCHEDULERS)}")
    p.add_argument("--rates", default="0.25,0.5,1,1.5,2,3,4",
                   help="comma-separated arrival rates, requests per cluster second")
    p.add_argument("--seeds", default="0", help="comma-separated episode seeds per rate")
    p.add_argument("--horizon-s", type=float, default=60.0, help="arrival horizon per run")
    p.add_argument("--p95-limit-s", type=float, default=30.0)
    p.add_argument("--warmup-s", type=float, default=0.0,
                   help="requests arriving earlier are run but left out of the p95 (short "
                        "runs from the preset's resident models are cold-start bound)")
    p.add_argument("--time-scale", type=float, default=1.0,
                   help="cluster s per wall s (ladts serve reads wall time: keep 1 for ladts)")
    p.add_argument("--max-wall-s", type=float, default=400.0, help="wall bound of each run")
    p.add_argument("--out", type=Path, default=Path("runs/bench/capacity"))
    args = p.parse_args(argv)
    args.rate_list = sorted(float(r) for r in str(args.rates).split(",") if r.strip())
    args.seed_list = [int(s) for s in str(args.seeds).split(",") if s.strip()]
    args.schedulers = [s.strip() for s in str(args.scheduler).split(",") if s.strip()]
    unknown = [s for s in args.schedulers if s not in SCHEDULERS]
    if unknown or not args.schedulers or not args.rate_list or not args.seed_list:
        p.error(f"need schedulers of {', '.join(SCHEDULERS)} (unknown: {unknown}), rates "
                "and seeds")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Sweep every scheduler; print and write the capacities; 1 when a run is invalid."""
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{args.scenario}: rates {args.rate_list} req/s, {args.horizon_s:g} s of arrivals, "
          f"seeds {args.seed_list}, time scale {args.time_scale:g}, "
          f"limit p95 <= {args.p95_limit_s:g} s", flush=True)
    sweeps = {name: sweep(name, args) for name in args.schedulers}
    caps = {name: capacity(points, args.p95_limit_s) for name, points in sweeps.items()}
    summary: dict[str, Any] = {
        "scenario": args.scenario,
        "horizon_s": args.horizon_s,
        "time_scale": args.time_scale,
        "seed_list": args.seed_list,
        "rates": args.rate_list,
        "p95_limit_s": args.p95_limit_s,
        "warmup_s": args.warmup_s,
        "policy_sha256": policy_sha256(),
        "command": "python -m e2e.bench.capacity " + " ".join(sys.argv[1:] if argv is None
                                                              else argv),
        "capacity_per_s": caps,
        "sweeps": sweeps,
    }
    (args.out / "result.json").write_text(json.dumps(summary, indent=2, default=str), "utf-8")
    write_plot(args.out / "capacity.png", summary)
    capped = {name: cap == args.rate_list[-1] and sweeps[name][-1]["sustained"]
              for name, cap in caps.items()}
    for name, cap in caps.items():
        print(f"capacity {name}: {cap:g} req/s" + (" (the highest rate tried: at least)"
                                                  if capped[name] else ""))
    for name in caps:
        if name != "default" and "default" in caps:
            ratio = caps[name] / caps["default"] if caps["default"] else math.inf
            bound = ("undetermined: the default reached the highest rate tried"
                     if capped["default"] else "at least" if capped[name] else "")
            print(f"{name}/default capacity ratio: {ratio:.2f}" + (f" ({bound})" if bound
                                                                   else ""))
    invalid = [(name, p["rate_per_s"], p["problems"])
               for name, points in sweeps.items() for p in points if p["invalid"]]
    for name, rate, problems in invalid:
        print(f"INVALID {name} at {rate:g} req/s: " + "; ".join(problems), file=sys.stderr)
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
