"""Honest evaluation of schedulers on a scenario: held-out seeds, intervals, percentiles.

Every policy sees exactly the same episodes (common random numbers: the episode seeds are
the same for all policies), so differences between policies are not sampling noise of the
workload. An episode's score is the mean service delay of all tasks placed in it; the
reported mean is over episodes, with a Student-t 95% interval across episodes (episodes
are independent: each has its own seed). Percentiles pool the delays of all tasks.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ladts_policy.baselines import SchedulingPolicy, make_policy
from ladts_policy.sim.base import DecisionView, VecSimulator

EVAL_SEED_BASE = 10_000
"""Evaluation seeds start here; training (later) draws seeds below it, so they never meet."""

DEFAULT_EVAL_SEEDS = tuple(range(EVAL_SEED_BASE, EVAL_SEED_BASE + 5))
"""Five held-out seeds: the minimum the project reports a mean and interval over."""

MAX_ENVS_PER_BATCH = 64
"""Episodes simulated in lockstep at once; bounds memory for long paper-preset episodes."""

# Student-t 0.975 quantiles for small degrees of freedom; normal beyond the table.
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
         9: 2.262, 10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042,
         40: 2.021, 60: 2.000, 120: 1.980}


def t_quantile_975(dof: int) -> float:
    """Two-sided 95% Student-t critical value for ``dof`` degrees of freedom."""
    if dof < 1:
        return math.nan
    keys = sorted(k for k in _T975 if k <= dof)
    return _T975[keys[-1]] if dof <= 120 else 1.960


def episode_seed(seed: int, episode: int) -> int:
    """Derive the simulator seed of ``episode`` under a user-facing ``seed``."""
    return int(np.random.SeedSequence([seed, episode]).generate_state(1)[0])


@dataclass(frozen=True)
class PolicyResult:
    """Summary of one policy's service delays over all evaluation episodes."""

    mean_delay_s: float
    """Mean over episodes of the per-episode mean service delay, seconds."""
    ci95_s: tuple[float, float]
    """Student-t 95% interval of that mean across episodes, seconds."""
    p50_s: float
    """Median service delay over all tasks, seconds."""
    p95_s: float
    """95th percentile service delay over all tasks, seconds."""
    p99_s: float
    """99th percentile service delay over all tasks, seconds."""
    vs_greedy: float | None
    """mean_delay_s divided by greedy's (None when greedy was not evaluated)."""
    vs_greedy_ci95: tuple[float, float] | None = None
    """Paired 95% interval of ``vs_greedy`` over the same episodes (ratio estimator: the
    Student-t interval of ``mean(x) / mean(g)`` from the per-episode residuals
    ``x_k - ratio * g_k``; None without greedy or with fewer than two episodes)."""
    episode_means_s: list[float] = field(default_factory=list)
    """Per-episode mean delays, in seed-major order (kept for plots and paired tests)."""
    tasks: int = 0
    """Number of tasks placed over all episodes."""
    decisions_per_s: float = 0.0
    """Decisions per second of wall time, simulator included (machine-dependent)."""
    size_quintile_mean_s: list[float] | None = None
    """Mean delay of the tasks in each task-size quintile, smallest fifth first (None when
    the simulator does not report task sizes). Every policy sees the same tasks, so the
    quintiles hold the same tasks for every policy."""


@dataclass(frozen=True)
class EvaluationReport:
    """Everything ``ladts evaluate`` prints and writes."""

    scenario: str
    """Scenario preset name or file path."""
    seeds: list[int]
    """User-facing held-out seeds."""
    episodes: int
    """Episodes per seed."""
    policies: dict[str, PolicyResult]
    """Results by policy name, in the order evaluated."""

    def to_json_dict(self, *, with_episodes: bool = False) -> dict[str, object]:
        """The documented JSON shape; per-episode means only when asked for."""
        policies: dict[str, object] = {}
        for name, result in self.policies.items():
            entry = asdict(result)
            entry["ci95_s"] = list(result.ci95_s)
            if result.vs_greedy_ci95 is not None:
                entry["vs_greedy_ci95"] = list(result.vs_greedy_ci95)
            if not with_episodes:
                entry.pop("episode_means_s")
            policies[name] = entry
        return {"scenario": self.scenario, "seeds": self.seeds, "episodes": self.episodes,
                "policies": policies}

    def write_json(self, path: Path) -> None:
        """Write the report (with per-episode means) as JSON, creating parent folders."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json_dict(with_episodes=True), indent=2) + "\n")


ProgressFn = Callable[[int], None]
"""Called with the number of decisions just simulated (drives a progress bar)."""


def run_policy(
    make_sim: Callable[[int], VecSimulator],
    policy: SchedulingPolicy,
    env_seeds: Sequence[int],
    *,
    policy_seed: int,
    progress: ProgressFn | None = None,
    sizes_out: list[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """Run ``policy`` on one episode per entry of ``env_seeds``; return each episode's delays.

    A policy with an ``attach(sim)`` method (one that reads simulator-specific state: a
    trained paper agent, an ONNX policy, the rollout planner) gets each simulator before its
    episodes start. When
    ``sizes_out`` is given and the simulator reports task sizes, each episode's task sizes
    (aligned with its delays) are appended to it.
    """
    delays: list[np.ndarray] = []
    for start in range(0, len(env_seeds), MAX_ENVS_PER_BATCH):
        batch = list(env_seeds[start:start + MAX_ENVS_PER_BATCH])
        sim = make_sim(len(batch))
        attach = getattr(policy, "attach", None)
        if attach is not None:
            attach(sim)  # policies that read the simulator (onnx_eval, rollout, checkpoints)
        policy.reset(num_envs=sim.num_envs, num_nodes=sim.num_nodes,
                     seed=policy_seed + start)
        rows_TE: list[np.ndarray] = []
        size_rows_TE: list[np.ndarray] = []
        view: DecisionView | None = sim.reset(batch)
        while view is not None:
            actions_E = policy.act(view)
            if view.task_size_E is not None:
                size_rows_TE.append(np.asarray(view.task_size_E, dtype=float))
            delay_E, view = sim.step(actions_E)
            rows_TE.append(delay_E)
            if progress is not None:
                progress(int(np.count_nonzero(~np.isnan(delay_E))))
        delay_TE = np.stack(rows_TE) if rows_TE else np.empty((0, len(batch)))
        delays.extend(col[~np.isnan(col)] for col in delay_TE.T)
        if sizes_out is not None and size_rows_TE and len(size_rows_TE) == len(rows_TE):
            size_TE = np.stack(size_rows_TE)
            sizes_out.extend(size_TE[~np.isnan(col), e] for e, col in enumerate(delay_TE.T))
    return delays


def size_quintile_means(delays: np.ndarray, sizes: np.ndarray) -> list[float]:
    """Mean delay per fifth of the tasks ordered by size (stable: ties keep task order)."""
    order = np.argsort(sizes, kind="stable")
    return [float(part.mean()) if part.size else math.nan
            for part in np.array_split(delays[order], 5)]


def summarise(episode_delays: Sequence[np.ndarray],
              episode_sizes: Sequence[np.ndarray] | None = None) -> PolicyResult:
    """Mean with a 95% interval over episodes, pooled percentiles, per-size-quintile means."""
    means_K = np.array([d.mean() if d.size else math.nan for d in episode_delays])
    means_K = means_K[~np.isnan(means_K)]
    if means_K.size == 0:
        raise ValueError("no task was placed in any episode: nothing to evaluate")
    mean = float(means_K.mean())
    if means_K.size > 1:
        half = t_quantile_975(means_K.size - 1) * float(means_K.std(ddof=1)) / math.sqrt(
            means_K.size)
    else:
        half = math.nan
    pooled = np.concatenate([d for d in episode_delays if d.size])
    p50, p95, p99 = (float(v) for v in np.percentile(pooled, [50, 95, 99]))
    quintiles = None
    if episode_sizes is not None and len(episode_sizes) == len(episode_delays):
        sizes = np.concatenate([s for s, d in zip(episode_sizes, episode_delays, strict=True)
                                if d.size])
        if sizes.shape == pooled.shape:
            quintiles = size_quintile_means(pooled, sizes)
    return PolicyResult(mean_delay_s=mean, ci95_s=(mean - half, mean + half), p50_s=p50,
                        p95_s=p95, p99_s=p99, vs_greedy=None,
                        episode_means_s=[float(m) for m in means_K], tasks=int(pooled.size),
                        size_quintile_mean_s=quintiles)


def paired_ratio(x_K: np.ndarray, g_K: np.ndarray) -> tuple[float, tuple[float, float] | None]:
    """Ratio ``mean(x) / mean(g)`` of paired per-episode means and its 95% interval.

    The interval is the ratio estimator's: residuals ``d_k = x_k - r g_k`` have mean 0 and
    ``SE(r) = sd(d) / (sqrt(K) mean(g))`` (delta method), with a Student-t quantile.
    """
    x_K, g_K = np.asarray(x_K, dtype=float), np.asarray(g_K, dtype=float)
    if x_K.shape != g_K.shape:
        raise ValueError(f"paired episodes differ in number: {x_K.shape} vs {g_K.shape}")
    ratio = float(x_K.mean() / g_K.mean())
    k = x_K.size
    if k < 2:
        return ratio, None
    se = float((x_K - ratio * g_K).std(ddof=1)) / (math.sqrt(k) * float(g_K.mean()))
    half = t_quantile_975(k - 1) * se
    return ratio, (ratio - half, ratio + half)


def with_greedy_ratio(results: dict[str, PolicyResult]) -> dict[str, PolicyResult]:
    """Fill ``vs_greedy`` and its paired interval when greedy is among the results."""
    greedy = results.get("greedy")
    if greedy is None:
        return results
    g_K = np.array(greedy.episode_means_s)
    out = {}
    for name, r in results.items():
        ratio, ci = paired_ratio(np.array(r.episode_means_s), g_K)
        out[name] = PolicyResult(**{**asdict(r), "ci95_s": r.ci95_s, "vs_greedy": ratio,
                                    "vs_greedy_ci95": ci})
    return out


def policy_seed(name: str) -> int:
    """The seed of a policy's own randomness: a function of its name only.

    So a policy's results do not depend on which other policies run or in what order.
    """
    return EVAL_SEED_BASE + zlib.crc32(name.encode()) % 1_000_003


PAPER_ONLY = frozenset({"local", "size-greedy"})
"""Heuristics that need the paper's notion of a local server or its task sizes."""

LEARNED_POLICY = "lad-ts"
"""The bundled cluster policy (``ladts_policy/bundled/lad-ts.onnx``) as an evaluation policy."""

CLUSTER_ONLY = frozenset({"spread", "residency-greedy", "rollout", LEARNED_POLICY})
"""Policies that need the cluster's view (resource requests, node feature rows); uniform or
meaningless on ``paper``, whose servers have no feature rows of ``ladts_policy.features``."""

HEURISTIC_ORDER = ("greedy", "residency-greedy", LEARNED_POLICY, "size-greedy", "least-queue",
                   "capacity-weighted", "spread", "round-robin", "random", "local")
"""Default evaluation order: the reference (greedy) first, then roughly best to worst, the
bundled learned policy beside the heuristics it must beat. ``rollout`` is left out (a few
to tens of times slower than greedy on the vectorised simulator, about a thousand times on the
reference); name it in ``--policies``."""


def default_policies(kind: str) -> list[str]:
    """Every registered policy that applies to a scenario of this ``kind``."""
    excluded = CLUSTER_ONLY if kind == "paper" else PAPER_ONLY
    return [name for name in HEURISTIC_ORDER if name not in excluded]


def build_policy(name: str) -> SchedulingPolicy:
    """A heuristic by name, ``lad-ts`` (the bundled ONNX policy) or an ONNX policy file.

    Raises:
        ladts_policy.bundled.BundledPolicyMissing: ``lad-ts`` in a checkout without the
            bundled file (the message names the command that regenerates it).
    """
    from ladts_policy.bundled import bundled_policy_path
    from ladts_policy.onnx_eval import OnnxEvalPolicy, is_policy_file

    if name == LEARNED_POLICY:
        return OnnxEvalPolicy(bundled_policy_path(), name=LEARNED_POLICY)
    if is_policy_file(name):
        return OnnxEvalPolicy(Path(name))
    return make_policy(name)


def evaluate(
    scenario: str,
    *,
    policies: Sequence[str] | None = None,
    seeds: Sequence[int] = DEFAULT_EVAL_SEEDS,
    episodes: int = 1,
    show_progress: bool = True,
    policy_options: dict[str, dict[str, float]] | None = None,
    custom: Mapping[str, Callable[[], SchedulingPolicy]] | None = None,
    common_policy_seed: int | None = None,
) -> EvaluationReport:
    """Evaluate policies on a scenario preset name or YAML file; see the module docstring.

    ``policies`` are heuristic names or ONNX policy files (``ladts_policy.onnx_eval``);
    ``custom`` maps extra policy names (e.g. checkpoint paths) to factories and is looked up
    first. ``common_policy_seed`` gives every policy the same seed for its own randomness
    (common random numbers: two policies that act alike get equal results, as a paired
    comparison such as the rollout gate wants); None: :func:`policy_seed` of each name.
    """
    from tqdm import tqdm

    from ladts_policy.sim.config.scenario import load_scenario

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if not seeds:
        raise ValueError("at least one evaluation seed is needed")
    spec = load_scenario(scenario)
    names = list(policies) if policies else default_policies(spec.kind)
    unknown_here = [n for n in names if spec.kind != "paper" and n in PAPER_ONLY]
    if unknown_here:
        raise ValueError(f"policies {unknown_here} apply to the 'paper' scenario kind only")
    cluster_here = [n for n in names if spec.kind == "paper" and n == LEARNED_POLICY]
    if cluster_here:
        raise ValueError(f"policy {LEARNED_POLICY!r} is the cluster policy: it applies to "
                         "k8s-edge scenarios only (paper servers have no feature rows)")
    custom = custom or {}
    built = {name: custom[name]() if name in custom else build_policy(name)
             for name in names}  # fail fast on unknown names
    for name, options in (policy_options or {}).items():
        if name in built:
            for key, value in options.items():  # e.g. rollout horizon_s / top_k
                if not hasattr(built[name], key):
                    raise ValueError(f"policy {name!r} has no option {key!r}")
                setattr(built[name], key, type(getattr(built[name], key))(value))
    env_seeds = [episode_seed(s, e) for s in seeds for e in range(episodes)]
    results: dict[str, PolicyResult] = {}
    with tqdm(total=None, unit="dec", unit_scale=True, disable=not show_progress,
              desc=spec.name, dynamic_ncols=True) as bar:
        for index, (name, policy) in enumerate(built.items()):
            bar.set_postfix_str(name)
            sizes: list[np.ndarray] = []
            started = time.perf_counter()
            delays = run_policy(spec.make_simulator, policy, env_seeds,
                                policy_seed=(policy_seed(name) if common_policy_seed is None
                                             else common_policy_seed),
                                progress=bar.update, sizes_out=sizes)
            rate = sum(d.size for d in delays) / max(time.perf_counter() - started, 1e-9)
            results[name] = dataclasses.replace(summarise(delays, sizes or None),
                                                decisions_per_s=rate)
            if index == 0:
                # Arrivals do not depend on the policy: every policy makes as many decisions.
                bar.total = bar.n * len(built)
                bar.refresh()
    return EvaluationReport(scenario=scenario, seeds=[int(s) for s in seeds],
                            episodes=episodes, policies=with_greedy_ratio(results))


def format_table(report: EvaluationReport) -> str:
    """A fixed-width table of the report for the terminal."""
    header = (f"{'policy':<18}{'mean s':>10}{'95% CI':>24}{'p50 s':>10}{'p95 s':>10}"
              f"{'p99 s':>10}{'vs greedy':>11}{'paired 95% CI':>18}")
    lines = [f"scenario {report.scenario}: {len(report.seeds)} seeds x {report.episodes} "
             f"episode(s), held-out seeds {report.seeds[0]}..{report.seeds[-1]}", header,
             "-" * len(header)]
    for name, r in report.policies.items():
        ratio = "—" if r.vs_greedy is None else f"{r.vs_greedy:.3f}"
        ci = f"[{r.ci95_s[0]:.3f}, {r.ci95_s[1]:.3f}]"
        rci = "—" if r.vs_greedy_ci95 is None else (
            f"[{r.vs_greedy_ci95[0]:.3f}, {r.vs_greedy_ci95[1]:.3f}]")
        lines.append(f"{name:<18}{r.mean_delay_s:>10.3f}{ci:>24}{r.p50_s:>10.3f}"
                     f"{r.p95_s:>10.3f}{r.p99_s:>10.3f}{ratio:>11}{rci:>18}")
    quintiled = {n: r for n, r in report.policies.items() if r.size_quintile_mean_s}
    if quintiled:
        lines.append("")
        lines.append("mean delay (s) by task-size quintile, smallest fifth first")
        for name, r in quintiled.items():
            q = "".join(f"{v:>8.3f}" for v in r.size_quintile_mean_s or [])
            lines.append(f"{name:<18}{q}")
    return "\n".join(lines)
