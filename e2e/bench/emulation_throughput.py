"""How many AIGC pods per wall second the emulated cluster sustains (kube-scheduler + kwok +
emulation controller + apiserver on this machine).

A script, not a test. It runs one episode of a scenario (default ``k8s-edge-200``) with the
arrival rate set so that pods are created at ``--wall-rate`` pods per wall second, at a time
scale high enough that modelled service is short in wall time, and reports:

- created, bound and completed pods per wall second over the submission window (completed =
  the controller saw ``Succeeded``, i.e. kwok acted on the annotated finish);
- scheduling latency (creation → bind) and observed lag (Succeeded seen − modelled finish)
  in wall milliseconds, mean / p50 / p95: if the emulation keeps up they stay flat; when it
  falls behind they grow with the backlog.

Exits 1 when the run is invalid (lost / unbound / unfinished pods, errors, cut). Speed figures
depend on the machine and its load: quote them with both.

Usage::

    python -m e2e.bench.emulation_throughput --wall-rate 100 --wall-s 30 --time-scale 100
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from e2e.bench.run import emulate
from e2e.bench.stats import delay_stats, run_problems
from e2e.bench.workload import bench_cluster, draw_requests
from e2e.emulation.records import SUCCEEDED
from e2e.emulation.scenario_nodes import load_cluster


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="k8s-edge-200")
    p.add_argument("--wall-rate", type=float, default=100.0, help="pods created per wall s")
    p.add_argument("--wall-s", type=float, default=30.0, help="submission window, wall s")
    p.add_argument("--time-scale", type=float, default=100.0, help="cluster s per wall s")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-wall-s", type=float, default=240.0)
    p.add_argument("--out", type=Path, default=Path("runs/bench/emulation-throughput"))
    return p.parse_args(argv)


def per_wall_s(times_s: np.ndarray, start: float, end: float) -> float:
    """Events per wall second inside [start, end] (times in wall seconds)."""
    inside = np.count_nonzero((times_s >= start) & (times_s <= end))
    return float(inside / (end - start)) if end > start else float("nan")


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print and write the throughput; 1 when the run is invalid."""
    args = parse_args(argv)
    scale = args.time_scale
    cluster = bench_cluster(
        load_cluster(args.scenario), args.wall_s * scale, args.wall_rate / scale
    )
    requests = draw_requests(cluster, args.seed)
    print(
        f"{args.scenario}: {cluster.num_nodes} nodes, {len(requests)} pods over {args.wall_s:g} "
        f"wall s (target {args.wall_rate:g} pods/s wall), time scale {scale:g}",
        flush=True,
    )
    run = emulate(cluster, requests, time_scale=scale, max_wall_s=args.max_wall_s, out=args.out)
    recs = run.records
    created = np.array([r.created_s for r in recs]) / scale
    bound = np.array([r.bind_s for r in recs]) / scale
    done = np.array([r.observed_finish_s for r in recs if r.outcome == SUCCEEDED]) / scale
    start, end = float(created.min(initial=0.0)), float(created.max(initial=0.0))
    last_done = float(done.max(initial=start))
    last_bound = float(bound.max(initial=start))
    result = {
        "scenario": args.scenario,
        "nodes": cluster.num_nodes,
        "time_scale": scale,
        "target_wall_rate": args.wall_rate,
        "created_per_wall_s": per_wall_s(created, start, end),
        "bound_per_wall_s": per_wall_s(bound, start, end),
        "completed_per_wall_s": per_wall_s(done, start, end),
        # Sustained: every pod from the first creation to the last bind / completion.
        "overall_bound_per_wall_s": len(bound) / (last_bound - start) if last_bound > start else 0,
        "overall_completed_per_wall_s": len(done) / (last_done - start) if last_done > start else 0,
        "cpu_ms_per_pod": {
            k: round(1000.0 * v / max(1, len(recs)), 1) for k, v in run.summary["cpu_s"].items()
        },
        "scheduling_latency_wall_ms": delay_stats([r.scheduling_latency_wall_ms for r in recs]),
        "observed_lag_wall_ms": delay_stats(
            [r.observed_lag_s / scale * 1000.0 for r in recs if r.outcome == SUCCEEDED]
        ),
        **run.summary,
    }
    result["problems"] = run_problems(run.summary)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "result.json").write_text(json.dumps(result, indent=2, default=str), "utf-8")
    sl, lag = result["scheduling_latency_wall_ms"], result["observed_lag_wall_ms"]
    print(
        f"created {result['created_per_wall_s']:.1f}, bound {result['bound_per_wall_s']:.1f}, "
        f"completed {result['completed_per_wall_s']:.1f} pods/s wall over the submission window"
    )
    print(
        f"sustained (first creation to last bind / completion): bound "
        f"{result['overall_bound_per_wall_s']:.1f}, completed "
        f"{result['overall_completed_per_wall_s']:.1f} pods/s wall"
    )
    print(f"CPU ms per pod: {result['cpu_ms_per_pod']}")
    print(f"CPU ms per pod over the run less the idle rate: "
          f"{run.summary['cpu_ms_per_pod_marginal']}")
    print(f"apiserver requests and watch events per pod: {run.summary['apiserver_per_pod']}")
    print(f"scheduling latency ms: mean {sl['mean']:.0f} p50 {sl['p50']:.0f} p95 {sl['p95']:.0f}")
    print(f"observed lag ms: mean {lag['mean']:.0f} p50 {lag['p50']:.0f} p95 {lag['p95']:.0f}")
    print(f"submitter lag behind arrivals: {run.summary['max_submit_lag_cluster_s']} s cluster")
    print(
        f"CPU seconds per process over {run.summary['wall_s']:.0f} s wall: {run.summary['cpu_s']}"
    )
    if result["problems"]:
        print("INVALID: " + "; ".join(result["problems"]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
