"""Calibrate a ``k8s-edge`` scenario from the extender's trace log (``ladts calibrate``).

The trace (``ladts_operator/trace.py``: JSONL records ``decision``, ``bind``, ``completion``,
``node``, ``node_deleted``) says what the cluster saw; the calibrated scenario replays it:

- Arrivals: one per pod the extender decided (its first ``decision``). ``rate_per_s`` is
  ``(n - 1) / (last - first)``. Burstiness: arrivals are counted in ``window_s`` windows; a
  window is a burst window when its count exceeds ``mean + 3 sqrt(mean)`` (a Poisson count
  rarely does); with at least ``min_burst_windows`` of them the process is ``bursty`` with
  ``burst_time_fraction`` the share of burst windows, ``burst_multiplier`` the ratio of mean
  counts (burst / calm) and ``mean_burst_s`` the mean run of consecutive burst windows;
  otherwise ``poisson``. The index of dispersion (variance / mean of the counts, 1 for
  Poisson) is written in the header.
- Model mix: the share of decided pods per model; steps: the observed ``[min, max]``. Models
  no GPU profile can run are dropped (named in the notes). Input sizes and pod requests,
  which the trace does not carry, come from the base scenario (defaults when it lacks the
  model).
- Nodes: the latest ``node`` record of every node not deleted, grouped by (profile, cpu,
  memory, concurrency, resident models). Nodes without a known profile are dropped (noted).
- Service and load times per node class (GPU profile) and model, from ``completion``
  records (:func:`fit_pair`): a completion is *cold* when the extender's prediction
  exceeds the profile's warm time (``overhead + steps x s/step``) by more than half the load
  time (the replay's residency). The warm factor is the median of
  ``observed / warm`` over warm completions and scales ``s_per_step`` and ``overhead_s``;
  the load time is the median of ``observed - factor x warm`` over cold ones. Fewer than
  ``min_samples`` completions of a kind keep the profile's value. The
  calibrated profiles are written inline under ``gpu_profiles`` (same names, so they
  replace the built-in ones for this scenario only).
- Horizon, churn and the exclusive mode come from the base scenario (the trace does not
  measure them).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ladts_policy.sim.config.cluster_config import ClusterConfig, GpuProfile, ModelSpec
from ladts_policy.sim.config.scenario import Scenario, scenario_from_mapping


class CalibrationError(ValueError):
    """The trace cannot be calibrated from (empty, corrupt, or missing what is needed)."""


@dataclass(frozen=True)
class CalibrationConfig:
    """Knobs of :func:`calibrate`."""

    window_s: float = 30.0
    """Width of the windows arrivals are counted in for the burstiness test, s."""

    min_burst_windows: int = 2
    """Burst windows needed before the process is called ``bursty``."""

    min_samples: int = 5
    """Warm (cold) completions of a (profile, model) pair needed to change its service
    (load) time; medians of fewer are too easily moved by a few odd completions."""


@dataclass
class TraceData:
    """The records of a trace, sorted by kind (what :func:`read_trace` returns)."""

    decisions: list[dict[str, Any]] = field(default_factory=list)
    """``decision`` records, in file order."""

    completions: list[dict[str, Any]] = field(default_factory=list)
    """``completion`` records."""

    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Latest ``node`` record of each node still present at the end."""

    records: int = 0
    """JSON records read."""

    corrupt_lines: int = 0
    """Lines that were not JSON objects (skipped)."""

    sources: list[str] = field(default_factory=list)
    """Files read."""


def _lines(paths: Sequence[Path]) -> Iterator[tuple[Path, int, str]]:
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such trace file")
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    yield path, number, line


def read_trace(paths: Sequence[Path]) -> TraceData:
    """Read trace files in the order given (oldest first: ``PATH.2 PATH.1 PATH``).

    Raises:
        FileNotFoundError: a file is missing.
        CalibrationError: no line of any file is a JSON record.
    """
    data = TraceData(sources=[str(p) for p in paths])
    for _path, _number, line in _lines(paths):
        try:
            record = json.loads(line)
        except ValueError:
            data.corrupt_lines += 1
            continue
        if not isinstance(record, dict):
            data.corrupt_lines += 1
            continue
        data.records += 1
        kind = record.get("kind")
        if kind == "decision":
            data.decisions.append(record)
        elif kind == "completion":
            data.completions.append(record)
        elif kind == "node" and isinstance(record.get("node"), str):
            data.nodes[record["node"]] = record
        elif kind == "node_deleted" and isinstance(record.get("node"), str):
            data.nodes.pop(record["node"], None)
    if data.records == 0:
        where = ", ".join(data.sources)
        if data.corrupt_lines:
            raise CalibrationError(f"{where}: no JSON record in {data.corrupt_lines} lines "
                                   "(not an extender trace, or corrupt)")
        raise CalibrationError(f"{where}: empty trace (does `ladts serve` have --trace set?)")
    return data


@dataclass(frozen=True)
class Calibration:
    """A calibrated scenario: the document, its YAML header and the notes."""

    document: dict[str, Any]
    """The scenario mapping (schema of docs/scenarios.md)."""

    header: list[str]
    """Comment lines: provenance and the measured figures."""

    notes: list[str]
    """What was dropped or defaulted, one line each."""

    def to_yaml(self) -> str:
        """The scenario as commented YAML."""
        head = "".join(f"# {line}\n" for line in self.header + [f"note: {n}" for n in self.notes])
        return head + yaml.safe_dump(self.document, sort_keys=False, width=100,
                                     default_flow_style=None)


def _arrivals(decisions: list[dict[str, Any]]) -> list[tuple[float, str, int]]:
    """``(time, model, steps)`` of each pod's first decision, time-sorted."""
    first: dict[str, tuple[float, str, int]] = {}
    for rec in decisions:
        uid, t, model, steps = (rec.get("pod_uid"), rec.get("time"), rec.get("model"),
                                rec.get("steps"))
        if (isinstance(uid, str) and isinstance(t, int | float) and isinstance(model, str)
                and isinstance(steps, int) and uid not in first):
            first[uid] = (float(t), model, steps)
    return sorted(first.values())


def fit_arrivals(times: Sequence[float], config: CalibrationConfig) -> tuple[dict[str, Any],
                                                                            list[str]]:
    """The ``arrivals`` mapping for arrival times (sorted) and header lines on the fit."""
    t = np.asarray(times, dtype=float)
    span = float(t[-1] - t[0])
    if t.size < 2 or span <= 0:
        raise CalibrationError(f"{t.size} arrival(s) over {span:g} s: need at least two "
                               "decisions at different times to measure a rate")
    rate = (t.size - 1) / span
    nwin = max(int(span // config.window_s), 1)
    counts = np.histogram(t, bins=nwin, range=(t[0], t[0] + nwin * config.window_s))[0]
    mean = float(counts.mean())
    dispersion = float(counts.var() / mean) if mean > 0 else math.nan
    burst = counts > mean + 3.0 * math.sqrt(mean)
    lines = [f"arrivals: {t.size} pods over {span:.1f} s = {rate:.4f}/s; "
             f"{nwin} windows of {config.window_s:g} s, index of dispersion {dispersion:.2f} "
             f"(1 = Poisson), {int(burst.sum())} burst window(s)"]
    out: dict[str, Any] = {"process": "poisson", "rate_per_s": round(rate, 6)}
    if int(burst.sum()) >= config.min_burst_windows and not burst.all():
        calm_mean = float(counts[~burst].mean())
        multiplier = float(counts[burst].mean()) / max(calm_mean, 1e-9)
        runs = [len(m.group()) for m in re.finditer("1+", "".join("1" if b else "0"
                                                                    for b in burst))]
        out.update(process="bursty",
                   burst_multiplier=round(max(multiplier, 1.0), 3),
                   burst_time_fraction=round(float(burst.mean()), 4),
                   mean_burst_s=round(float(np.mean(runs)) * config.window_s, 1))
    return out, lines


def _model_mix(arrivals: list[tuple[float, str, int]], base: ClusterConfig,
               profiles: dict[str, GpuProfile], runnable_on: set[str],
               notes: list[str]) -> list[dict[str, Any]]:
    by_model: dict[str, list[int]] = defaultdict(list)
    for _, name, count in arrivals:
        by_model[name].append(count)
    base_models = {m.name: m for m in base.models}
    total = sum(len(v) for v in by_model.values())
    mix = []
    for model, steps in sorted(by_model.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        if model not in runnable_on:
            notes.append(f"model {model!r} ({len(steps)} pods) dropped: no node of the trace "
                         "has a GPU profile that runs it")
            continue
        spec = base_models.get(model) or ModelSpec(model, 1.0, (1, 1), (0.01, 0.1))
        if model not in base_models:
            notes.append(f"model {model!r}: input size and pod requests are defaults "
                         "(not in the base scenario)")
        mix.append({"name": model, "weight": round(len(steps) / total, 4),
                    "steps": [min(steps), max(steps)], "input_mbit": list(spec.input_mbit),
                    "cpu": spec.cpu, "memory_gib": spec.memory_gib})
    if not mix:
        raise CalibrationError("no decided pod has a model any node of the trace can run")
    return mix


def _prefix(names: list[str], fallback: str) -> str:
    common = names[0]
    for name in names[1:]:
        while not name.startswith(common):
            common = common[:-1]
    common = common.rstrip("-0123456789")
    return common or fallback


def _node_groups(nodes: dict[str, dict[str, Any]], profiles: dict[str, GpuProfile],
                 models: set[str], notes: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    groups: dict[tuple[Any, ...], list[str]] = defaultdict(list)
    for name, rec in sorted(nodes.items()):
        profile = rec.get("profile")
        if profile not in profiles:
            notes.append(f"node {name} dropped: no known GPU profile ({profile!r})")
            continue
        gpu = profiles[profile]
        resident = tuple(m for m in rec.get("resident") or [] if m in models
                         and gpu.can_run(m))
        key = (profile, float(rec.get("cpu") or 8.0), float(rec.get("memory_gib") or 32.0),
               int(rec.get("concurrency") or 1), resident)
        groups[key].append(name)
    out, seen = [], []
    used_prefixes: Counter[str] = Counter()
    for (profile, cpu, mem, conc, resident), names in groups.items():
        prefix = _prefix(names, profile)
        used_prefixes[prefix] += 1
        if used_prefixes[prefix] > 1:
            prefix = f"{prefix}-g{used_prefixes[prefix]}"
        out.append({"profile": profile, "count": len(names), "name_prefix": prefix,
                    "cpu": cpu, "memory_gib": mem, "concurrency": conc,
                    "resident": list(resident)})
        seen.append(f"{profile} x{len(names)}: {', '.join(names)}")
    if not out:
        raise CalibrationError("no node with a known GPU profile in the trace (`node` records "
                               "are written by ladts serve with --trace)")
    return out, seen


def fit_pair(samples: Sequence[tuple[float, float, bool]], load_s: float, min_samples: int
             ) -> tuple[float, float, int, int]:
    """Warm factor and load time of one (profile, model) pair.

    ``samples`` are ``(observed_s, warm_s, cold)``: the observed service time, the profile's
    warm time for the pod's steps, and whether the extender's replay had the pod cold (its
    prediction included the load). The factor is the median of ``observed / warm`` over warm
    completions; the load the median of ``observed - factor x warm`` over cold ones.
    Classifying by duration instead is ambiguous when the load time is close to the service
    time (a node twice as slow looks like a cold start), so the replay's residency decides.
    Returns ``(factor, load_s, warm count, cold count)``; fewer than ``min_samples`` of a
    kind keep 1 and the profile's load.
    """
    warm = [o / w for o, w, cold in samples if not cold]
    factor = float(np.median(warm)) if len(warm) >= min_samples else 1.0
    colds = [o - factor * w for o, w, cold in samples if cold]
    load = max(float(np.median(colds)), 0.0) if len(colds) >= min_samples else load_s
    return factor, load, len(warm), len(colds)


def _timings(completions: list[dict[str, Any]], profiles: dict[str, GpuProfile],
             nodes: dict[str, dict[str, Any]], config: CalibrationConfig
             ) -> tuple[list[dict[str, Any]], list[str]]:
    """Calibrated inline GPU profiles for the profiles of the trace's nodes."""
    samples: dict[tuple[str, str], list[tuple[float, float, bool]]] = defaultdict(list)
    profile_of = {name: rec.get("profile") for name, rec in nodes.items()}
    nonpositive = 0
    for rec in completions:
        node, model, steps = rec.get("node"), rec.get("model"), rec.get("steps")
        observed, predicted = rec.get("observed_s"), rec.get("predicted_s")
        profile = profile_of.get(node) if isinstance(node, str) else None
        if (profile not in profiles or not isinstance(model, str) or not isinstance(steps, int)
                or not isinstance(observed, int | float) or not isinstance(predicted, int | float)
                or predicted <= 0 or not profiles[profile].can_run(model)):
            continue
        if observed <= 0:
            nonpositive += 1  # finished before its FIFO start: out of order, not a timing
            continue
        timing = profiles[profile].timings[model]
        warm_s = timing.service_s(steps)
        samples[(profile, model)].append(
            (float(observed), warm_s, predicted - warm_s > 0.5 * timing.load_s))
    lines: list[str] = []
    if nonpositive:
        lines.append(f"{nonpositive} completion(s) skipped: finished before their FIFO start")
    out = []
    for profile in sorted({p for p in profile_of.values() if p in profiles}):
        gpu = profiles[profile]
        models: dict[str, Any] = {}
        for model, timing in gpu.timings.items():
            pair = samples.get((profile, model), [])
            factor, load, n_warm, n_cold = fit_pair(pair, timing.load_s, config.min_samples)
            models[model] = {"s_per_step": round(timing.s_per_step * factor, 5),
                             "overhead_s": round(timing.overhead_s * factor, 4),
                             "memory_gib": timing.memory_gib, "load_s": round(load, 3)}
            if pair:
                few = config.min_samples
                lines.append(f"{profile}/{model}: {n_warm} warm (factor {factor:.3f}"
                             f"{'' if n_warm >= few else ', too few: profile'}), {n_cold} cold "
                             f"(load {timing.load_s:g} -> {load:.2f} s"
                             f"{'' if n_cold >= few else ', too few: profile'})")
        out.append({"name": gpu.name, "product_label": gpu.product_label,
                    "vram_gib": gpu.vram_gib,
                    "description": f"{gpu.description} (calibrated from a trace)".strip(),
                    "models": models})
    return out, lines


def calibrate(data: TraceData, base: Scenario, *, name: str = "calibrated",
              config: CalibrationConfig | None = None) -> Calibration:
    """Calibrate a scenario from trace records; see the module docstring.

    Raises:
        CalibrationError: the trace lacks decisions, nodes, or two distinct arrival times.
    """
    config = config or CalibrationConfig()
    base_cluster = base.cluster
    profiles = dict(base_cluster.gpu_profiles)
    if not data.decisions:
        raise CalibrationError(f"{', '.join(data.sources)}: no decision records "
                               f"({data.records} records read): the extender decided nothing")
    notes: list[str] = []
    if data.corrupt_lines:
        notes.append(f"{data.corrupt_lines} corrupt line(s) skipped")
    arrivals = _arrivals(data.decisions)
    arrival_map, header = fit_arrivals([a[0] for a in arrivals], config)
    known = {n: r for n, r in data.nodes.items() if r.get("profile") in profiles}
    runnable_on = {m for r in known.values() for m in profiles[r["profile"]].timings}
    mix = _model_mix(arrivals, base_cluster, profiles, runnable_on, notes)
    groups, seen = _node_groups(data.nodes, profiles, {m["name"] for m in mix}, notes)
    gpu_profiles, timing_lines = _timings(data.completions, profiles, known, config)
    document: dict[str, Any] = {
        "kind": "k8s-edge",
        "name": name,
        "description": f"Calibrated from {', '.join(data.sources)} (ladts calibrate); "
                       f"horizon and churn from {base.name}.",
        "cluster": {
            "horizon_s": base_cluster.horizon_s,
            "arrivals": arrival_map,
            "models": mix,
            "gpu_profiles": gpu_profiles,
            "nodes": groups,
            "churn": {"enabled": base_cluster.churn.enabled,
                      "mean_up_s": base_cluster.churn.mean_up_s,
                      "mean_down_s": base_cluster.churn.mean_down_s,
                      "max_down_fraction": base_cluster.churn.max_down_fraction},
            "exclusive": base_cluster.exclusive,
        },
    }
    header = [f"Calibrated by `ladts calibrate` from {', '.join(data.sources)}",
              f"({data.records} records: {len(data.decisions)} decisions, "
              f"{len(data.completions)} completions, {len(data.nodes)} nodes). "
              "Schema: docs/scenarios.md.",
              *header,
              "models: " + ", ".join(f"{m['name']} {m['weight']:.3f}" for m in mix),
              "nodes seen:", *[f"  {line}" for line in seen],
              "service/load times (observed vs profile):",
              *[f"  {line}" for line in timing_lines or ["no completions: profile values"]]]
    # The document must be a valid scenario (raises ScenarioError naming the field if not).
    scenario_from_mapping(document)
    return Calibration(document=document, header=header, notes=notes)


def trace_paths(path: Path, backups: Iterable[int] = range(9, 0, -1)) -> list[Path]:
    """``path`` with its rotated files, oldest first (``PATH.9`` ... ``PATH.1``, ``PATH``)."""
    rotated = [path.with_name(f"{path.name}.{k}") for k in backups]
    return [p for p in rotated if p.is_file()] + [path]
