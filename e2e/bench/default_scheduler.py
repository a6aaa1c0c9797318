"""Service delay of AIGC pods under kube-scheduler's default profile on an emulated cluster.

A script, not a test. It starts a loopback-only control plane (kine, kube-apiserver,
kube-scheduler, kwok) with the e2e.controlplane helpers, creates the scenario's nodes, submits the
scenario's requests as AIGC pods (``schedulerName: default-scheduler``, the scenario's cpu/memory
requests) at their Poisson arrival times, and lets the emulation controller run them in cluster
time. Then it replays the same requests (same seed, same draw as the simulator) through the
simulator with the ``spread`` heuristic and compares the mean service delays.

Modelling choices (documented in ``docs/baseline.md``):

- Churn is disabled in both (the emulation has no node leave/join).
- Each pod carries a required node affinity on ``ladts.io/gpu-profile`` listing the GPU profiles
  that can run its model, the emulated counterpart of the simulator's node mask (an operator
  would pin models to capable GPUs the same way).
- Service delay = pod creation → Succeeded, in cluster time; creation is the moment the
  benchmark creates the pod (cluster clock), bind is when the controller sees ``nodeName``.

Usage::

    .venv/bin/python -m e2e.bench.default_scheduler --scenario k8s-edge --seed 0 \\
        --time-scale 20 --horizon-s 3600 --out runs/bench/k8s-edge
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from e2e.bench.kube_model import kube_scheduler_delays
from e2e.emulation.controller import ClusterClock, EmulationController, PodRecord
from e2e.emulation.pods import aigc_pod_manifest
from e2e.emulation.scenario_nodes import (
    GPU_PROFILE_LABEL,
    create_nodes,
    load_cluster,
    wait_nodes_ready,
)
from e2e.emulation.service import ScenarioService
from ladts_policy.sim.base import DecisionView
from ladts_policy.sim.cluster_config import (
    ChurnSpec,
    ClusterConfig,
    ResidencySpec,
    UncertaintySpec,
)
from ladts_policy.sim.workload import Workload, draw_workload, episode_generators

NAMESPACE = "default"
SCHEDULER_NAME = "default-scheduler"
TARGET_GAP = 0.15


# ------------------------------------------------------------------------------------ pure


@dataclass(frozen=True)
class Request:
    """One AIGC request of the episode."""

    index: int
    arrival_s: float
    model: str
    steps: int
    input_mbit: float
    cpu: float
    memory_gib: float


def bench_cluster(
    cluster: ClusterConfig, horizon_s: float | None = None, rate_per_s: float | None = None
) -> ClusterConfig:
    """The scenario as benchmarked: churn off, optionally another horizon or arrival rate.

    The emulated nodes start with the fixed ``resident`` lists and run the profile times, so
    the simulator side is compared with those too (no per-episode residency, no hidden
    speed or noise, fresh metrics).
    """
    horizon = cluster.horizon_s if horizon_s is None else horizon_s
    arrivals = cluster.arrivals
    if rate_per_s is not None:
        arrivals = dataclasses.replace(arrivals, rate_per_s=rate_per_s)
    return dataclasses.replace(
        cluster, churn=ChurnSpec(enabled=False), horizon_s=horizon, arrivals=arrivals,
        residency=ResidencySpec(mode="fixed"),
        uncertainty=UncertaintySpec(node_speed_sigma=0.0, request_noise_sigma=0.0,
                                    scrape_interval_s=0.0),
    )


def draw_requests(cluster: ClusterConfig, seed: int) -> list[Request]:
    """The episode's requests, drawn exactly as the simulator draws them for ``seed``."""
    arrivals_rng, _ = episode_generators(seed)
    work: Workload = draw_workload(cluster, arrivals_rng)
    models = cluster.models
    return [
        Request(
            index=i,
            arrival_s=float(work.arrival_s_T[i]),
            model=models[int(work.model_T[i])].name,
            steps=int(work.steps_T[i]),
            input_mbit=float(work.input_mbit_T[i]),
            cpu=models[int(work.model_T[i])].cpu,
            memory_gib=models[int(work.model_T[i])].memory_gib,
        )
        for i in range(len(work))
    ]


def capable_profiles(cluster: ClusterConfig) -> dict[str, list[str]]:
    """Model -> GPU profiles (present in the cluster) that can run it."""
    used = {g.profile for g in cluster.nodes}
    return {
        m.name: sorted(p for p in used if cluster.gpu_profiles[p].can_run(m.name))
        for m in cluster.models
    }


def request_pod(req: Request, profiles: Sequence[str], created_s: float) -> dict[str, Any]:
    """The Pod body of one request, with its GPU-profile affinity."""
    body = aigc_pod_manifest(
        f"aigc-{req.index:06d}",
        req.model,
        req.steps,
        cpu=req.cpu,
        memory_gib=req.memory_gib,
        scheduler_name=SCHEDULER_NAME,
        namespace=NAMESPACE,
        input_mbit=req.input_mbit,
        created_s=created_s,
    )
    term = {
        "matchExpressions": [{"key": GPU_PROFILE_LABEL, "operator": "In", "values": list(profiles)}]
    }
    body["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
        }
    }
    return body


def delay_stats(delays: Sequence[float]) -> dict[str, float]:
    """Count, mean, p50, p95, max of service delays (NaN when empty)."""
    arr = np.asarray(delays, dtype=float)
    if arr.size == 0:
        return {"n": 0, "mean": math.nan, "p50": math.nan, "p95": math.nan, "max": math.nan}
    return {
        "n": int(arr.size),
        "mean": float(arr.mean()),
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "max": float(arr.max()),
    }


def relative_gap(emulated: float, simulated: float) -> float:
    """(emulated - simulated) / simulated."""
    return (emulated - simulated) / simulated if simulated else math.inf


_HIST = re.compile(r"^scheduler_scheduling_attempt_duration_seconds_(sum|count)\{(.*)\} (\S+)$")


def attempt_duration(metrics_text: str) -> tuple[float, int]:
    """Total seconds and count of scheduled attempts (``result="scheduled"``) from /metrics."""
    total, count = 0.0, 0
    for line in metrics_text.splitlines():
        m = _HIST.match(line)
        if not m or 'result="scheduled"' not in m.group(2):
            continue
        if m.group(1) == "sum":
            total += float(m.group(3))
        else:
            count += int(float(m.group(3)))
    return total, count


def bind_throughput(
    bind_wall_s: Sequence[float], create_wall_s: Sequence[float]
) -> dict[str, float]:
    """Pods bound per wall second, overall and in the busiest one-second window."""
    if not bind_wall_s:
        return {"overall_pods_per_s": 0.0, "peak_1s_pods_per_s": 0.0}
    binds = np.sort(np.asarray(bind_wall_s))
    span = float(binds[-1] - min(create_wall_s))
    window_ends = np.searchsorted(binds, binds + 1.0, side="left")
    return {
        "overall_pods_per_s": len(binds) / span if span > 0 else math.inf,
        "peak_1s_pods_per_s": float((window_ends - np.arange(len(binds))).max()),
    }


# ------------------------------------------------------------------------------------ simulator


def simulate(cluster: ClusterConfig, seed: int, policy_name: str = "spread") -> list[float]:
    """Service delays of the episode in the simulator under a baseline heuristic."""
    from ladts_policy.baselines import make_policy
    from ladts_policy.sim.cluster import ClusterSimulator

    sim = ClusterSimulator(cluster, num_envs=1)
    policy = make_policy(policy_name)
    view: DecisionView | None = sim.reset([seed])
    policy.reset(num_envs=1, num_nodes=sim.num_nodes, seed=seed)
    delays: list[float] = []
    while view is not None:
        delay_E, view = sim.step(policy.act(view))
        delays.append(float(delay_E[0]))
    return delays


# ------------------------------------------------------------------------------------ I/O


@dataclass
class Plane:
    """Handles of the running control plane."""

    core_v1: Any
    scheduler: Any
    workdir: Path


@contextmanager
def control_plane(workdir: Path) -> Iterator[Plane]:
    """Start kine, kube-apiserver, kube-scheduler and kwok (AIGC-aware stages); stop them all."""
    from kubernetes import client, config

    from e2e.controlplane.binaries import find_binaries
    from e2e.controlplane.components import (
        start_apiserver,
        start_kine,
        start_kwok,
        start_scheduler,
    )
    from e2e.controlplane.processes import ProcessManager
    from e2e.emulation.kwok_stages import write_aigc_stages

    binaries = find_binaries()
    needed = ("kine", "kube-apiserver", "kube-scheduler", "kwok", "stages-fast.yaml")
    missing = binaries.missing_of(needed)
    if missing:
        raise SystemExit(f"missing binaries {missing}: run e2e/controlplane/build.sh")
    pm = ProcessManager()
    api: Any = None
    try:
        kine = start_kine(pm, binaries.get("kine"), workdir / "kine")
        server = start_apiserver(
            pm, binaries.get("kube-apiserver"), workdir / "apiserver", kine.etcd_url
        )
        scheduler = start_scheduler(
            pm, binaries.get("kube-scheduler"), workdir / "scheduler", server
        )
        stages = write_aigc_stages(binaries.get("stages-fast.yaml"), workdir / "stages-aigc.yaml")
        start_kwok(pm, binaries.get("kwok"), stages, workdir / "kwok", server.kubeconfig)
        api = config.new_client_from_config(config_file=str(server.kubeconfig))
        api.configuration.connection_pool_maxsize = 16
        yield Plane(core_v1=client.CoreV1Api(api), scheduler=scheduler, workdir=workdir)
    finally:
        if api is not None:
            api.close()
        pm.stop_all()
        left = pm.leftovers()
        if left:
            print(f"WARNING: processes left behind: {left}", file=sys.stderr)


def submit(
    core_v1: Any,
    requests: Sequence[Request],
    profiles: dict[str, list[str]],
    clock: ClusterClock,
    deadline: float,
) -> tuple[list[float], float]:
    """Create each request's pod at its arrival (cluster time); return wall times and max lag."""
    created_wall: list[float] = []
    max_lag_s = 0.0
    for req in requests:
        wait = clock.wall_until(req.arrival_s)
        if wait > 0:
            time.sleep(wait)
        if time.monotonic() > deadline:
            print(f"submission stopped at deadline after {len(created_wall)} pods", file=sys.stderr)
            break
        now = clock.now()
        max_lag_s = max(max_lag_s, now - req.arrival_s)
        created_wall.append(time.monotonic())
        core_v1.create_namespaced_pod(NAMESPACE, request_pod(req, profiles[req.model], now))
    return created_wall, max_lag_s


def run_emulated(
    args: argparse.Namespace, cluster: ClusterConfig, requests: list[Request]
) -> dict[str, Any]:
    """Run the episode on the emulated cluster; return records and run facts."""
    workdir = Path(tempfile.mkdtemp(prefix="ladts-bench-"))
    deadline = time.monotonic() + args.max_wall_s
    specs = cluster.expand_nodes()
    profiles = capable_profiles(cluster)
    with control_plane(workdir) as plane:
        names = create_nodes(plane.core_v1, specs)
        wait_nodes_ready(plane.core_v1, names, timeout_s=120)
        service = ScenarioService(specs, cluster)
        clock = ClusterClock(args.time_scale)
        log = args.out / "emulated-pods.jsonl"
        log.unlink(missing_ok=True)
        controller = EmulationController(
            plane.core_v1, service, clock, namespace=NAMESPACE, log_path=log, annotate=False
        )
        with controller:
            created_wall, max_lag = submit(plane.core_v1, requests, profiles, clock, deadline)
            done = controller.wait_finished(
                len(created_wall), max(0.0, deadline - time.monotonic())
            )
            records = controller.records()
            errors = list(controller.errors)
            patch_lag = controller.max_patch_lag_s
        total, count = attempt_duration(plane.scheduler.metrics())
    bind_wall = [clock.origin + r.bind_s / clock.time_scale for r in records]
    return {
        "records": records,
        "created": len(created_wall),
        "all_finished": done,
        "errors": errors[:20],
        "max_submit_lag_cluster_s": max_lag,
        "max_patch_lag_wall_s": patch_lag,
        "throughput": bind_throughput(bind_wall, created_wall),
        "scheduler_attempts": count,
        "scheduler_mean_attempt_ms": 1000.0 * total / count if count else math.nan,
        "workdir": str(workdir),
    }


def write_plot(
    path: Path,
    emulated: Sequence[float],
    simulated: Sequence[float],
    modelled: Sequence[float],
    title: str,
) -> None:
    """Delay CDF (log x) and histogram of the emulated run, the simulator and the model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_cdf, ax_hist) = plt.subplots(1, 2, figsize=(11, 4))
    series = (
        ("kube-scheduler (emulated)", emulated),
        ("spread (simulator)", simulated),
        ("kube-scheduler model", modelled),
    )
    for label, data in series:
        arr = np.sort(np.asarray(data, dtype=float))
        if arr.size:
            ax_cdf.plot(arr, np.arange(1, arr.size + 1) / arr.size, label=label)
            ax_hist.hist(arr, bins=60, alpha=0.5, label=label)
    ax_cdf.set_xscale("log")
    ax_cdf.set_xlabel("service delay, s (cluster time)")
    ax_cdf.set_ylabel("CDF")
    ax_hist.set_xlabel("service delay, s (cluster time)")
    ax_hist.set_ylabel("pods")
    for ax in (ax_cdf, ax_hist):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="k8s-edge", help="preset name or scenario YAML path")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-scale", type=float, default=20.0, help="cluster s per wall s")
    p.add_argument("--horizon-s", type=float, default=None, help="override the arrival horizon")
    p.add_argument("--rate-per-s", type=float, default=None, help="override the arrival rate")
    p.add_argument("--max-wall-s", type=float, default=540.0, help="hard bound on the run")
    p.add_argument("--policy", default="spread", help="simulator heuristic to compare with")
    p.add_argument("--out", type=Path, default=Path("runs/bench/default-scheduler"))
    p.add_argument("--sim-only", action="store_true", help="skip the control plane")
    p.add_argument(
        "--reuse-emulated",
        type=Path,
        default=None,
        help="take the emulated results from an earlier --out folder (no control plane)",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print / write its results."""
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.reuse_emulated is not None:
        previous = json.loads((args.reuse_emulated / "result.json").read_text("utf-8"))
        args.time_scale = previous["time_scale"]
    cluster = bench_cluster(load_cluster(args.scenario), args.horizon_s, args.rate_per_s)
    requests = draw_requests(cluster, args.seed)
    print(
        f"{args.scenario}: {cluster.num_nodes} nodes, {len(requests)} requests over "
        f"{cluster.horizon_s:g} s cluster time, time scale {args.time_scale:g}"
    )
    sim_delays = simulate(cluster, args.seed, args.policy)
    sim_stats = delay_stats(sim_delays)
    model_delays = kube_scheduler_delays(cluster, requests, args.seed)
    model_stats = delay_stats(model_delays)
    result: dict[str, Any] = {
        "scenario": args.scenario,
        "nodes": cluster.num_nodes,
        "seed": args.seed,
        "horizon_s": cluster.horizon_s,
        "requests": len(requests),
        "time_scale": args.time_scale,
        "simulator": {"policy": args.policy, **sim_stats},
        "kube_model": model_stats,
    }
    emu_delays: list[float] = []
    if args.reuse_emulated is not None:
        result["emulated"], emu_delays = reuse_emulated(args.reuse_emulated)
    elif not args.sim_only:
        result["emulated"], emu_delays = emulate(args, cluster, requests)
    if "emulated" in result:
        result["gap_mean"] = relative_gap(result["emulated"]["mean"], sim_stats["mean"])
        result["gap_mean_kube_model"] = relative_gap(
            result["emulated"]["mean"], model_stats["mean"]
        )
    (args.out / "result.json").write_text(json.dumps(result, indent=2, default=str), "utf-8")
    title = f"{args.scenario}, seed {args.seed}, {len(requests)} pods"
    write_plot(args.out / "delay.png", emu_delays, sim_delays, model_delays, title)
    _print_summary(result)
    return 0


def emulate(
    args: argparse.Namespace, cluster: ClusterConfig, requests: list[Request]
) -> tuple[dict[str, Any], list[float]]:
    """Run the emulated episode; return its summary and the finished pods' delays."""
    started = time.monotonic()
    run = run_emulated(args, cluster, requests)
    records: list[PodRecord] = run.pop("records")
    delays = [r.service_delay_s for r in records if r.succeeded_patched]
    summary = {
        "scheduler": SCHEDULER_NAME,
        **delay_stats(delays),
        "cold_starts": sum(r.cold for r in records),
        "bound": len(records),
        "rejected": sum(bool(r.error) for r in records),
        "scheduling_delay_cluster_s": delay_stats([r.scheduling_delay_s for r in records]),
        "wall_s": time.monotonic() - started,
        **run,
    }
    return summary, delays


def reuse_emulated(folder: Path) -> tuple[dict[str, Any], list[float]]:
    """Read an earlier run's emulated summary and per-pod log (to redo only the comparison)."""
    summary = json.loads((folder / "result.json").read_text("utf-8"))["emulated"]
    lines = (folder / "emulated-pods.jsonl").read_text("utf-8").splitlines()
    delays = [float(json.loads(line)["service_delay_s"]) for line in lines if line.strip()]
    if len(delays) != summary["n"]:
        raise SystemExit(f"{folder}: {len(delays)} log lines but n={summary['n']} in result.json")
    return summary, delays


def _print_summary(result: dict[str, Any]) -> None:
    """Human-readable table."""
    sim = result["simulator"]
    print(
        f"simulator/{sim['policy']}: n={sim['n']} mean={sim['mean']:.2f}s "
        f"p50={sim['p50']:.2f}s p95={sim['p95']:.2f}s"
    )
    km = result["kube_model"]
    print(
        f"kube-scheduler model (fit filter + pending queue): n={km['n']} mean={km['mean']:.2f}s "
        f"p50={km['p50']:.2f}s p95={km['p95']:.2f}s"
    )
    emu = result.get("emulated")
    if emu:
        tp = emu["throughput"]
        print(
            f"emulated/{emu['scheduler']}: n={emu['n']} mean={emu['mean']:.2f}s "
            f"p50={emu['p50']:.2f}s p95={emu['p95']:.2f}s; bound {emu['bound']}/"
            f"{emu['created']}, finished={emu['all_finished']}, wall {emu['wall_s']:.0f}s"
        )
        print(
            f"scheduling: {tp['overall_pods_per_s']:.1f} pods/s overall, peak "
            f"{tp['peak_1s_pods_per_s']:.0f} pods/s, mean attempt "
            f"{emu['scheduler_mean_attempt_ms']:.2f} ms, creation->bind p50 "
            f"{emu['scheduling_delay_cluster_s']['p50']:.2f}s cluster"
        )
        gap = result["gap_mean"]
        verdict = "within" if abs(gap) <= TARGET_GAP else "OUTSIDE"
        print(
            f"mean gap (emulated vs simulated): {gap:+.1%} ({verdict} the {TARGET_GAP:.0%} target)"
        )
        print(f"mean gap (emulated vs kube-scheduler model): {result['gap_mean_kube_model']:+.1%}")


if __name__ == "__main__":
    sys.exit(main())
