"""ladts against kube-scheduler's default profile, end to end on the emulated GPU cluster.

A script, not a test. For each seed and scheduler it starts a fresh loopback-only control
plane (:func:`e2e.bench.run.emulate`, the machinery of ``e2e/bench/default_scheduler.py``),
creates the scenario's nodes and submits the simulator's draw of requests for that seed as
AIGC pods from a separate process, so every scheduler sees the same arrivals on the same
cluster. Schedulers (``--scheduler``, comma-separated):

- ``default``: the cluster's kube-scheduler, profile ``default-scheduler``;
- ``ladts``: the chart as it ships (``e2e/bench/ladts_stack.py``): the chart's kube-scheduler
  configuration (profile ``ladts-scheduler``, the extender entry) and ``ladts serve`` with the
  chart's settings (the bundled LAD-TS policy), a real Prometheus scraping the emulated GPUs;
- ``ladts-heuristic``: the same with ``serve.policy.bundled=false`` (``ladts serve --policy
  none``: the residency-greedy heuristic).

Columns per scheduler (per seed, then mean with a 95% Student-t interval over seeds): service
delay (bind → modelled finish) and response delay (creation → finish) mean / p50 / p95 / p99
in cluster seconds, scheduling latency (creation → bind) in wall ms, pods/s bound (pods over
first creation → last bind, wall), pods not finished, the extender's fallbacks by reason and
its policy version and sha256; for the ladts schedulers also the simulator's prediction for
the same scorer on the same arrivals (``e2e/bench/sim_prediction.py``).

The run is invalid, and the script exits 1, when any run lost pods, left pods unbound or
unfinished, was cut by its wall bound or had controller errors (as default_scheduler.py), and
for the ladts schedulers when ``ladts serve`` did not bind every pod itself (an ignorable
extender that failed would hand pods to kube-scheduler's own binder unnoticed).

Usage::

    python -m e2e.bench.end_to_end --scenario k8s-edge --scheduler default,ladts \\
        --horizon-s 120 --seeds 0,1,2 --out runs/bench/end-to-end/k8s-edge
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from e2e.bench.default_scheduler import seed_result
from e2e.bench.ladts_stack import SCHEDULER_NAME as LADTS_SCHEDULER_NAME
from e2e.bench.ladts_stack import LadtsStack, policy_sha256
from e2e.bench.run import StackSetup, emulate
from e2e.bench.sim_prediction import agreement, predict
from e2e.bench.stats import delay_stats, seed_interval
from e2e.bench.workload import bench_cluster, draw_requests
from e2e.emulation.records import SUCCEEDED, PodRecord
from e2e.emulation.scenario_nodes import load_cluster
from ladts_policy.sim.config.cluster_config import ClusterConfig

STATS = ("mean", "p50", "p95", "p99")
DELAY_COLUMNS = ("service_delay_s", "response_delay_s")


@dataclass(frozen=True)
class BenchScheduler:
    """One scheduler of the comparison."""

    name: str
    """Name on the command line and in the results."""
    scheduler_name: str
    """``spec.schedulerName`` of the pods."""
    stack: StackSetup | None
    """What to start beside the cluster (None: the cluster's own kube-scheduler)."""
    sim_scorer: str | None
    """``ladts evaluate``'s name of the scorer it runs (None: no simulator counterpart)."""


SCHEDULERS = {
    "default": BenchScheduler("default", "default-scheduler", None, None),
    "ladts": BenchScheduler("ladts", LADTS_SCHEDULER_NAME, LadtsStack(bundled_policy=True),
                            "lad-ts"),
    "ladts-heuristic": BenchScheduler("ladts-heuristic", LADTS_SCHEDULER_NAME,
                                      LadtsStack(bundled_policy=False), "residency-greedy"),
}


def pods_per_s(records: Sequence[PodRecord], time_scale: float) -> float:
    """Bound pods over first creation → last bind, per wall second."""
    if not records:
        return math.nan
    span_s = max(r.bind_s for r in records) - min(r.created_s for r in records)
    return len(records) / max(span_s / time_scale, 1e-9)


def live_nodes(records: Sequence[PodRecord]) -> dict[int, str]:
    """Request index (the pod is ``aigc-<index>``) -> the node it was bound to."""
    return {int(r.name.rsplit("-", 1)[1]): r.node for r in records if r.node}


def scheduler_problems(sched: BenchScheduler, result: dict[str, Any]) -> list[str]:
    """Why a ladts run does not measure ladts: the extender did not bind every pod."""
    if sched.stack is None:
        return []
    stack = result.get("stack") or {}
    binds = stack.get("binds") or {}
    problems = []
    if int(binds.get("ok", 0)) < result["bound"]:
        problems.append(f"ladts serve bound {int(binds.get('ok', 0))} of {result['bound']} pods"
                        " (the rest went around the extender)")
    if binds.get("error"):
        problems.append(f"{int(binds['error'])} bind errors in ladts serve")
    return problems


def run_one(sched: BenchScheduler, cluster: ClusterConfig, seed: int, time_scale: float,
            max_wall_s: float, out: Path) -> tuple[dict[str, Any], list[PodRecord]]:
    """One scheduler on one seed: its columns and its finished pods' records."""
    requests = draw_requests(cluster, seed)
    run = emulate(cluster, requests, time_scale=time_scale, max_wall_s=max_wall_s,
                  out=out / sched.name / f"seed-{seed}", scheduler_name=sched.scheduler_name,
                  stack=sched.stack)
    done = [r for r in run.records if r.outcome == SUCCEEDED]
    result: dict[str, Any] = {"seed": seed, "scheduler": sched.name,
                              **seed_result(cluster, run.records, run.summary, time_scale)}
    result["response_delay_s"] = delay_stats([r.finish_s - r.created_s for r in done])
    result["pods_per_s"] = pods_per_s(run.records, time_scale)
    result["problems"] = list(result["problems"]) + scheduler_problems(sched, result)
    if sched.sim_scorer is not None:
        pred = predict(cluster, seed, sched.sim_scorer)
        result["sim_prediction"] = {"scorer": sched.sim_scorer, "requests": len(pred.delays_s),
                                    "delay_s": delay_stats(pred.delays_s),
                                    "noise_means_s": pred.noise_means_s,
                                    "placements": agreement(live_nodes(run.records),
                                                            pred.nodes, cluster)}
        if len(pred.delays_s) != len(requests):
            result["problems"].append(f"simulator episode has {len(pred.delays_s)} requests, "
                                      f"the run {len(requests)}: not the same arrivals")
    if sched.sim_scorer is not None:
        result["sim_prediction"]["delays_s"] = pred.delays_s  # for warm-up cuts; not printed
    return result, done


def over_seeds(per_seed: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and 95% interval over seeds of every column."""
    out: dict[str, Any] = {}
    for column in (*DELAY_COLUMNS, "scheduling_latency_wall_ms"):
        out[column] = {s: seed_interval([r[column][s] for r in per_seed]) for s in STATS}
    out["pods_per_s"] = seed_interval([r["pods_per_s"] for r in per_seed])
    # The scheduling cycle is serial: 1 / attempt time bounds a scheduler's pods/s whatever
    # the arrivals (pods/s above only follows the arrival rate while it keeps up).
    attempt = [r["scheduler_mean_attempt_ms"] for r in per_seed]
    out["scheduler_mean_attempt_ms"] = seed_interval(
        [math.nan if a is None else a for a in attempt])
    out["unfinished"] = int(sum(r["unfinished"] for r in per_seed))
    if all("sim_prediction" in r for r in per_seed):
        out["sim_delay_s"] = {s: seed_interval([r["sim_prediction"]["delay_s"][s]
                                                for r in per_seed]) for s in STATS}
    fallbacks: dict[str, float] = {}
    for r in per_seed:
        for reason, n in ((r.get("stack") or {}).get("fallbacks") or {}).items():
            fallbacks[reason] = fallbacks.get(reason, 0.0) + n
    out["fallbacks"] = fallbacks
    return out


def paired_ratio(by_seed_x: dict[int, float], by_seed_y: dict[int, float]) -> dict[str, float]:
    """Ratio of the seed means of x and y, and the mean and 95% interval of per-seed ratios."""
    seeds = sorted(set(by_seed_x) & set(by_seed_y))
    x = np.asarray([by_seed_x[s] for s in seeds], dtype=float)
    y = np.asarray([by_seed_y[s] for s in seeds], dtype=float)
    per_seed = seed_interval(list(x / y)) if seeds else seed_interval([])
    ratio = float(x.mean() / y.mean()) if seeds else math.nan
    return {"ratio_of_means": ratio, "per_seed_mean": per_seed["mean"],
            "per_seed_half_width": per_seed["half_width"], "seeds": len(seeds)}


def ratios(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """ladts / default (mean, p95, pods/s) and ladts live / its simulator prediction."""
    def by_seed(name: str, column: str, stat: str) -> dict[int, float]:
        return {r["seed"]: r[column][stat] for r in results.get(name, [])}

    out: dict[str, Any] = {}
    for name in ("ladts", "ladts-heuristic"):
        if name not in results:
            continue
        if "default" in results:
            out[f"{name}/default mean delay"] = paired_ratio(
                by_seed(name, "service_delay_s", "mean"),
                by_seed("default", "service_delay_s", "mean"))
            out[f"{name}/default p95 delay"] = paired_ratio(
                by_seed(name, "service_delay_s", "p95"),
                by_seed("default", "service_delay_s", "p95"))
            out[f"{name}/default pods/s"] = paired_ratio(
                {r["seed"]: r["pods_per_s"] for r in results[name]},
                {r["seed"]: r["pods_per_s"] for r in results["default"]})
            out[f"{name}/default attempt-bound pods/s"] = paired_ratio(
                {r["seed"]: 1.0 / (r["scheduler_mean_attempt_ms"] or math.nan)
                 for r in results[name]},
                {r["seed"]: 1.0 / (r["scheduler_mean_attempt_ms"] or math.nan)
                 for r in results["default"]})
        sim = {r["seed"]: r["sim_prediction"]["delay_s"]["mean"] for r in results[name]}
        out[f"{name} live/sim mean delay"] = paired_ratio(
            by_seed(name, "response_delay_s", "mean"), sim)
    return out


def _iv(v: dict[str, float], digits: int = 2) -> str:
    hw = "" if math.isnan(v["half_width"]) else f" ± {v['half_width']:.{digits}f}"
    return f"{v['mean']:.{digits}f}{hw}"


def markdown_table(summary: dict[str, Any]) -> str:
    """The over-seeds table (one row per scheduler) and the ratios."""
    head = ("| Scheduler | Service delay mean / p50 / p95 / p99, s | Response delay mean, s "
            "| Sim prediction mean / p95, s | Scheduling latency mean / p95, ms | Pods/s "
            "| kube-scheduler attempt, ms | Not finished | Fallbacks by reason | Policy |")
    lines = [head, "|" + "---|" * 10]
    for name, over in summary["over_seeds"].items():
        sd = over["service_delay_s"]
        sim = over.get("sim_delay_s")
        stack: dict[str, Any] = next(
            (r["stack"] for r in summary["seeds"][name] if r.get("stack")), {})
        policy = (stack or {}).get("policy") or {}
        sha = (stack or {}).get("policy_sha256")
        policy_text = (f"{policy.get('scorer', '')} {policy.get('version', '')}"
                       + (f" sha256 {sha[:12]}" if sha else "")).strip() or "—"
        fallbacks = ", ".join(f"{k} {int(v)}" for k, v in sorted(over["fallbacks"].items()))
        lines.append(
            f"| {name} | {' / '.join(_iv(sd[s]) for s in STATS)} "
            f"| {_iv(over['response_delay_s']['mean'])} "
            f"| {(_iv(sim['mean']) + ' / ' + _iv(sim['p95'])) if sim else '—'} "
            f"| {_iv(over['scheduling_latency_wall_ms']['mean'], 1)} / "
            f"{_iv(over['scheduling_latency_wall_ms']['p95'], 1)} "
            f"| {_iv(over['pods_per_s'])} | {_iv(over['scheduler_mean_attempt_ms'], 1)} "
            f"| {over['unfinished']} "
            f"| {'n/a' if not stack else fallbacks or 'none'} "
            f"| {policy_text if stack else 'n/a'} |")
    lines.append("")
    for key, r in summary["ratios"].items():
        hw = r["per_seed_half_width"]
        lines.append(f"- {key}: **{r['ratio_of_means']:.3f}** (per-seed ratios "
                     f"{r['per_seed_mean']:.3f}{'' if math.isnan(hw) else f' ± {hw:.3f}'}, "
                     f"{r['seeds']} seeds)")
    return "\n".join(lines) + "\n"


def write_plot(path: Path, summary: dict[str, Any], delays: dict[str, list[float]]) -> None:
    """Service-delay CDF per scheduler (all seeds pooled) and mean delay with intervals, the
    simulator's predictions beside the ladts schedulers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    for name, values in delays.items():
        arr = np.sort(np.asarray(values, dtype=float))
        if arr.size:
            ax.plot(arr, np.arange(1, arr.size + 1) / arr.size, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("service delay (bind → finish), s of cluster time")
    ax.set_ylabel("CDF (all seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    names = list(summary["over_seeds"])
    for i, name in enumerate(names):
        over = summary["over_seeds"][name]
        for j, stat in enumerate(("mean", "p95")):
            v = over["service_delay_s"][stat]
            err = 0.0 if math.isnan(v["half_width"]) else v["half_width"]
            bx.bar(i * 3 + j, v["mean"], yerr=err, color=f"C{j}", capsize=3,
                   label=f"live {stat}" if i == 0 else None)
            if "sim_delay_s" in over:
                bx.plot(i * 3 + j, over["sim_delay_s"][stat]["mean"], "k_", markersize=18,
                        label="simulator prediction" if j == 0 and "sim" not in str(
                            bx.get_legend_handles_labels()[1]) else None)
    bx.set_xticks([i * 3 + 0.5 for i in range(len(names))], names)
    bx.set_ylabel("service delay, s (mean over seeds, 95% interval)")
    bx.grid(alpha=0.3, axis="y")
    bx.legend()
    fig.suptitle(f"{summary['scenario']}: {summary['nodes']} nodes, {summary['horizon_s']:g} s "
                 f"of arrivals, time scale {summary['time_scale']:g}, seeds {summary['seed_list']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="k8s-edge", help="preset name or scenario YAML path")
    p.add_argument("--scheduler", default="default,ladts",
                   help=f"comma-separated, of {', '.join(SCHEDULERS)}")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated episode seeds")
    p.add_argument("--horizon-s", type=float, default=None, help="override the arrival horizon")
    p.add_argument("--rate-per-s", type=float, default=None, help="override the arrival rate")
    p.add_argument("--time-scale", type=float, default=1.0,
                   help="cluster s per wall s (ladts serve reads wall time: keep 1 for ladts)")
    p.add_argument("--max-wall-s", type=float, default=540.0, help="wall bound of each run")
    p.add_argument("--out", type=Path, default=Path("runs/bench/end-to-end"))
    args = p.parse_args(argv)
    args.seed_list = [int(s) for s in str(args.seeds).split(",") if s.strip()]
    args.schedulers = [s.strip() for s in str(args.scheduler).split(",") if s.strip()]
    unknown = [s for s in args.schedulers if s not in SCHEDULERS]
    if unknown or not args.schedulers:
        p.error(f"unknown scheduler(s) {unknown}; choose from {', '.join(SCHEDULERS)}")
    if not args.seed_list:
        p.error("at least one seed")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run every seed and scheduler; print and write the results; 1 when any run is invalid."""
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    cluster = bench_cluster(load_cluster(args.scenario), args.horizon_s, args.rate_per_s)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in args.schedulers}
    delays: dict[str, list[float]] = {name: [] for name in args.schedulers}
    for seed in args.seed_list:  # seeds outermost: each seed's schedulers run under like load
        n = len(draw_requests(cluster, seed))
        print(f"{args.scenario} seed {seed}: {cluster.num_nodes} nodes, {n} requests over "
              f"{cluster.horizon_s:g} s cluster time, time scale {args.time_scale:g} "
              f"({n / cluster.horizon_s * args.time_scale:.1f} pods/s wall)", flush=True)
        for name in args.schedulers:
            result, done = run_one(SCHEDULERS[name], cluster, seed, args.time_scale,
                                   args.max_wall_s, args.out)
            results[name].append(result)
            delays[name] += [r.service_delay_s for r in done]
            _print_run(result)
    summary: dict[str, Any] = {
        "scenario": args.scenario,
        "nodes": cluster.num_nodes,
        "horizon_s": cluster.horizon_s,
        "rate_per_s": cluster.arrivals.rate_per_s,
        "time_scale": args.time_scale,
        "seed_list": args.seed_list,
        "schedulers": args.schedulers,
        "policy_sha256": policy_sha256(),
        "command": "python -m e2e.bench.end_to_end " + " ".join(sys.argv[1:] if argv is None
                                                                else argv),
        "seeds": results,
        "over_seeds": {name: over_seeds(rs) for name, rs in results.items()},
    }
    summary["ratios"] = ratios(results)
    (args.out / "result.json").write_text(json.dumps(summary, indent=2, default=str), "utf-8")
    table = markdown_table(summary)
    (args.out / "table.md").write_text(table, "utf-8")
    write_plot(args.out / "delay.png", summary, delays)
    print(table)
    invalid = [(r["scheduler"], r["seed"], r["problems"])
               for rs in results.values() for r in rs if r["problems"]]
    for name, seed, problems in invalid:
        print(f"INVALID {name} seed {seed}: " + "; ".join(problems), file=sys.stderr)
    _print_ratios(summary["ratios"])
    return 1 if invalid else 0


def _print_run(r: dict[str, Any]) -> None:
    """One run, human-readable."""
    sd = r["service_delay_s"]
    stack = r.get("stack") or {}
    print(f"  {r['scheduler']}: created {r['created']}/{r['requests']}, bound {r['bound']}, "
          f"succeeded {r['succeeded']}, unfinished {r['unfinished']}, lost {r['lost']}, "
          f"wall {r['wall_s']:.0f}s; service delay mean {sd['mean']:.2f} / p95 "
          f"{sd['p95']:.2f} s; scheduling latency mean "
          f"{r['scheduling_latency_wall_ms']['mean']:.1f} ms; {r['pods_per_s']:.2f} pods/s",
          flush=True)
    if stack:
        est = (stack.get("trace") or {}).get("service_estimate_over_observed") or {}
        print(f"    fallbacks {stack.get('fallbacks')}, binds {stack.get('binds')}, "
              f"policy {stack.get('policy')}; serve's service-time estimate / observed: mean "
              f"{est.get('mean')}, median |error| {est.get('median_abs_error')} "
              f"({est.get('n')} completions)", flush=True)
    if "sim_prediction" in r:
        p = r["sim_prediction"]["delay_s"]
        noise = r["sim_prediction"].get("noise_means_s") or []
        spread = (f" (other noise seeds: mean {min(noise):.2f}-{max(noise):.2f} s)"
                  if noise else "")
        agree = r["sim_prediction"].get("placements") or {}
        print(f"    simulator ({r['sim_prediction']['scorer']}): mean {p['mean']:.2f} / p95 "
              f"{p['p95']:.2f} s{spread}; same GPU profile as the simulator for "
              f"{agree.get('same_profile_share')} of requests, first difference at request "
              f"{agree.get('first_divergence')}", flush=True)
    for problem in r["problems"]:
        print(f"    PROBLEM: {problem}", flush=True)


def _print_ratios(rs: dict[str, Any]) -> None:
    """The closing lines (``ladts/default mean delay ratio: X`` first)."""
    for key, r in rs.items():
        hw = r["per_seed_half_width"]
        print(f"{key} ratio: {r['ratio_of_means']:.3f} (per-seed {r['per_seed_mean']:.3f}"
              f"{'' if math.isnan(hw) else f' ± {hw:.3f}'})")


if __name__ == "__main__":
    sys.exit(main())
