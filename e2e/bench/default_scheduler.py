"""Service delay of AIGC pods under kube-scheduler's default profile on the emulated cluster.

A script, not a test. For each seed it starts a fresh loopback-only control plane
(:func:`e2e.bench.run.emulate`), creates the scenario's nodes, submits the simulator's draw of
requests for that seed as AIGC pods (``schedulerName: default-scheduler``) at their arrival
times from a separate process, and lets kwok and the emulation controller run them.

Reported per seed and over seeds (mean with a 95% interval; mean / p50 / p95 side by side):

- **service delay**: bind → modelled finish, cluster seconds (queue wait at the node's model
  server + service);
- **scheduling latency**: creation → bind, wall milliseconds (kube-scheduler + watch lag; never
  multiplied by the time scale);
- **observed lag**: when the cluster showed ``Succeeded`` minus the modelled finish, in wall
  milliseconds (kwok + apiserver + watch);
- **trace replay**: the recorded placements through fresh ``NodeServer``\\ s must reproduce
  every start and finish exactly; a residual is an emulation artefact.

The run is invalid, and the script exits 1, when pods are lost, never bound, rejected,
removed, unfinished (their delays would be censored) or the wall bound cut it.

Usage::

    python -m e2e.bench.default_scheduler --scenario k8s-edge --seeds 0 1 2 \\
        --time-scale 20 --horizon-s 600 --out runs/bench/k8s-edge
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

from e2e.bench.run import emulate
from e2e.bench.stats import delay_stats, run_problems, seed_interval, trace_replay
from e2e.bench.workload import bench_cluster, draw_requests
from e2e.emulation.records import SUCCEEDED, PodRecord
from e2e.emulation.scenario_nodes import load_cluster
from e2e.emulation.service import ScenarioService
from ladts_policy.sim.config.cluster_config import ClusterConfig

SCHEDULER_NAME = "default-scheduler"


def seed_result(
    cluster: ClusterConfig, records: list[PodRecord], summary: dict[str, Any], time_scale: float
) -> dict[str, Any]:
    """Columns of one seed's run."""
    done = [r for r in records if r.outcome == SUCCEEDED]
    service = ScenarioService(cluster.expand_nodes(), cluster)
    requests_of = {m.name: (m.cpu, m.memory_gib) for m in cluster.models}
    replay = trace_replay(records, lambda n: service.server_factory(n)(), requests_of)
    lag_ms = [r.observed_lag_s / time_scale * 1000.0 for r in done]
    return {
        **summary,
        "service_delay_s": delay_stats([r.service_delay_s for r in done]),
        "scheduling_latency_wall_ms": delay_stats([r.scheduling_latency_wall_ms for r in records]),
        "observed_lag_wall_ms": delay_stats(lag_ms),
        "cold_starts": sum(r.cold for r in done),
        "replay": {
            "pods": replay.pods,
            "mismatches": replay.mismatches,
            "max_abs_residual_s": replay.max_abs_residual_s,
        },
        "problems": run_problems(summary),
    }


def over_seeds(per_seed: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and 95% interval over seeds of each column's mean / p50 / p95."""
    out: dict[str, Any] = {}
    for column in ("service_delay_s", "scheduling_latency_wall_ms", "observed_lag_wall_ms"):
        out[column] = {
            stat: seed_interval([s[column][stat] for s in per_seed])
            for stat in ("mean", "p50", "p95")
        }
    return out


def write_plot(path: Path, delays_by_seed: dict[int, list[float]], title: str) -> None:
    """Service-delay CDF per seed (log x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for seed, delays in sorted(delays_by_seed.items()):
        arr = np.sort(np.asarray(delays, dtype=float))
        if arr.size:
            ax.plot(arr, np.arange(1, arr.size + 1) / arr.size, label=f"seed {seed}")
    ax.set_xscale("log")
    ax.set_xlabel("service delay (bind → finish), s of cluster time")
    ax.set_ylabel("CDF")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="k8s-edge", help="preset name or scenario YAML path")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--time-scale", type=float, default=20.0, help="cluster s per wall s")
    p.add_argument("--horizon-s", type=float, default=None, help="override the arrival horizon")
    p.add_argument("--rate-per-s", type=float, default=None, help="override the arrival rate")
    p.add_argument("--max-wall-s", type=float, default=540.0, help="wall bound of each seed")
    p.add_argument("--out", type=Path, default=Path("runs/bench/default-scheduler"))
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every seed; print and write the results; 1 when any run is invalid."""
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    cluster = bench_cluster(load_cluster(args.scenario), args.horizon_s, args.rate_per_s)
    per_seed: list[dict[str, Any]] = []
    delays: dict[int, list[float]] = {}
    for seed in args.seeds:
        requests = draw_requests(cluster, seed)
        print(
            f"{args.scenario} seed {seed}: {cluster.num_nodes} nodes, {len(requests)} requests "
            f"over {cluster.horizon_s:g} s cluster time, time scale {args.time_scale:g} "
            f"({len(requests) / cluster.horizon_s * args.time_scale:.1f} pods/s wall)",
            flush=True,
        )
        run = emulate(
            cluster,
            requests,
            time_scale=args.time_scale,
            max_wall_s=args.max_wall_s,
            out=args.out / f"seed-{seed}",
            scheduler_name=SCHEDULER_NAME,
        )
        result = {"seed": seed, **seed_result(cluster, run.records, run.summary, args.time_scale)}
        per_seed.append(result)
        delays[seed] = [r.service_delay_s for r in run.records if r.outcome == SUCCEEDED]
        _print_seed(result)
    summary = {
        "scenario": args.scenario,
        "nodes": cluster.num_nodes,
        "horizon_s": cluster.horizon_s,
        "time_scale": args.time_scale,
        "scheduler": SCHEDULER_NAME,
        "seeds": per_seed,
        "over_seeds": over_seeds(per_seed),
    }
    (args.out / "result.json").write_text(json.dumps(summary, indent=2, default=str), "utf-8")
    title = f"{args.scenario}, default-scheduler, {len(args.seeds)} seed(s)"
    write_plot(args.out / "delay.png", delays, title)
    _print_over_seeds(summary["over_seeds"])
    invalid = [(s["seed"], s["problems"]) for s in per_seed if s["problems"]]
    for seed, problems in invalid:
        print(f"INVALID seed {seed}: " + "; ".join(problems), file=sys.stderr)
    return 1 if invalid else 0


def _fmt(d: dict[str, float], unit: str) -> str:
    return f"mean {d['mean']:.2f} / p50 {d['p50']:.2f} / p95 {d['p95']:.2f} {unit}"


def _print_seed(r: dict[str, Any]) -> None:
    """One seed, human-readable."""
    rp = r["replay"]
    print(
        f"  pods: created {r['created']}/{r['requests']}, bound {r['bound']}, succeeded "
        f"{r['succeeded']}, unfinished {r['unfinished']}, lost {r['lost']}, wall {r['wall_s']:.0f}s"
    )
    print(f"  service delay (cluster): {_fmt(r['service_delay_s'], 's')}")
    print(f"  scheduling latency (wall): {_fmt(r['scheduling_latency_wall_ms'], 'ms')}")
    print(f"  observed Succeeded - modelled finish (wall): {_fmt(r['observed_lag_wall_ms'], 'ms')}")
    print(
        f"  trace replay: {rp['pods']} pods, {rp['mismatches']} mismatches, "
        f"max |residual| {rp['max_abs_residual_s']:.3g} s"
    )
    if r["unfinished"]:
        print(
            f"  NOTE {r['unfinished']} pods unfinished: their delays are censored (missing), so "
            "the delays above are biased low"
        )


def _print_over_seeds(over: dict[str, Any]) -> None:
    """Mean ± 95% half-width over seeds."""
    for column, stats in over.items():
        parts = []
        for stat, v in stats.items():
            hw = "" if math.isnan(v["half_width"]) else f" ± {v['half_width']:.2f}"
            parts.append(f"{stat} {v['mean']:.2f}{hw}")
        print(f"over {stats['mean']['seeds']} seeds, {column}: " + ", ".join(parts))


if __name__ == "__main__":
    sys.exit(main())
