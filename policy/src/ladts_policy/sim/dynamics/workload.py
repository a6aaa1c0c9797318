"""Random draws of one episode of the ``k8s-edge`` scenario: requests and node churn.

Every draw takes an explicit :class:`numpy.random.Generator`. :func:`episode_generators`
derives independent streams for arrivals and churn from one seed, so the same seed gives the
same requests whether or not churn is enabled, and every scheduler compared on a seed sees
the same workload (common random numbers).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ladts_policy.sim.config.cluster_config import (
    ArrivalSpec,
    ChurnSpec,
    ClusterConfig,
    NodeSpec,
    UncertaintySpec,
)

LEAVE = 0
"""Churn event kind: the node is cordoned and drains."""

JOIN = 1
"""Churn event kind: the node is schedulable again."""


@dataclass(frozen=True)
class Workload:
    """The requests of one episode, in arrival order (``T`` requests)."""

    arrival_s_T: np.ndarray
    """float [T]: arrival times in seconds, non-decreasing, in ``[0, horizon_s)``."""

    model_T: np.ndarray
    """int [T]: index into ``ClusterConfig.models``."""

    steps_T: np.ndarray
    """int [T]: denoising steps."""

    input_mbit_T: np.ndarray
    """float [T]: request payload, megabits."""

    def __len__(self) -> int:
        return int(self.arrival_s_T.shape[0])


@dataclass(frozen=True)
class ChurnEvents:
    """Node leave/join events of one episode, sorted by time (``K`` events)."""

    time_s_K: np.ndarray
    """float [K]: event times, seconds."""

    node_K: np.ndarray
    """int [K]: node index in ``ClusterConfig.expand_nodes()`` order."""

    kind_K: np.ndarray
    """int [K]: :data:`LEAVE` or :data:`JOIN`."""


def episode_generators(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent (arrivals, churn) generators derived from one seed."""
    arrivals, churn = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(arrivals), np.random.default_rng(churn)


@dataclass(frozen=True)
class HiddenDraws:
    """What schedulers never see in one episode: realised-time factors and scrape phases."""

    node_factor_N: np.ndarray
    """float [N]: realised / profile run time of each node (its hidden speed)."""

    noise_T: np.ndarray
    """float [T]: realised / node-typical run time of each request."""

    scrape_phase_s_N: np.ndarray
    """float [N]: time of each node's first metrics scrape in ``[0, interval)``."""


def draw_hidden(
    spec: UncertaintySpec, num_nodes: int, num_requests: int, seed: int
) -> HiddenDraws:
    """Draw the hidden factors from a third stream of ``seed`` (arrivals and churn unchanged)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])
    node_N = np.exp(spec.node_speed_sigma * rng.standard_normal(num_nodes))
    noise_T = np.exp(spec.request_noise_sigma * rng.standard_normal(num_requests))
    phase_N = rng.uniform(0.0, spec.scrape_interval_s, num_nodes)
    return HiddenDraws(node_factor_N=node_N, noise_T=noise_T, scrape_phase_s_N=phase_N)


def draw_arrival_times(spec: ArrivalSpec, horizon_s: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival times on ``[0, horizon_s)``: Poisson, or a two-state MMPP for ``bursty``.

    The MMPP alternates calm and burst periods with exponential durations (means
    ``ArrivalSpec.mean_calm_s()`` and ``mean_burst_s``), starting in a state drawn from the
    stationary distribution; within a period arrivals are Poisson at that state's rate.
    """
    calm_rate, burst_rate = spec.state_rates()
    if spec.process == "poisson":
        return _poisson_segment(0.0, horizon_s, calm_rate, rng)
    parts = []
    t = 0.0
    burst = bool(rng.random() < spec.burst_time_fraction)
    while t < horizon_s:
        mean = spec.mean_burst_s if burst else spec.mean_calm_s()
        end = min(horizon_s, t + rng.exponential(mean))
        parts.append(_poisson_segment(t, end, burst_rate if burst else calm_rate, rng))
        t, burst = end, not burst
    return np.concatenate(parts)


def _poisson_segment(start: float, end: float, rate: float, rng: np.random.Generator) -> np.ndarray:
    count = rng.poisson(rate * (end - start))
    return np.sort(rng.uniform(start, end, size=count))


def draw_workload(config: ClusterConfig, rng: np.random.Generator) -> Workload:
    """Draw one episode of requests: arrival times, then model, steps and payload per request."""
    arrival_s_T = draw_arrival_times(config.arrivals, config.horizon_s, rng)
    count = arrival_s_T.shape[0]
    weight_M = np.array([m.weight for m in config.models], dtype=float)
    model_T: np.ndarray
    if config.drift.enabled:
        model_T = _draw_drifting_models(config, arrival_s_T, rng)
    else:
        model_T = np.asarray(rng.choice(len(config.models), size=count,
                                        p=weight_M / weight_M.sum()))
    steps_lo_M = np.array([m.steps[0] for m in config.models])
    steps_hi_M = np.array([m.steps[1] for m in config.models])
    steps_T = rng.integers(steps_lo_M[model_T], steps_hi_M[model_T] + 1)
    mbit_lo_M = np.array([m.input_mbit[0] for m in config.models])
    mbit_hi_M = np.array([m.input_mbit[1] for m in config.models])
    input_mbit_T = rng.uniform(mbit_lo_M[model_T], mbit_hi_M[model_T])
    return Workload(
        arrival_s_T=arrival_s_T,
        model_T=np.asarray(model_T, dtype=np.int64),
        steps_T=np.asarray(steps_T, dtype=np.int64),
        input_mbit_T=np.asarray(input_mbit_T, dtype=float),
    )


def drift_weights(
    config: ClusterConfig, rollout: int, start_s: float, time_s_T: np.ndarray
) -> np.ndarray:
    """Return float [T, M]: model weights at each time under the drift (``DriftSpec``)."""
    spec = config.drift
    weight_TM = np.tile(np.array([m.weight for m in config.models], dtype=float),
                        (time_s_T.shape[0], 1))
    ramp = np.clip((time_s_T - start_s) / max(spec.ramp_s, 1e-9), 0.0, 1.0)
    weight_TM[:, rollout] *= spec.initial_share + (1.0 - spec.initial_share) * ramp
    return weight_TM


def _draw_drifting_models(
    config: ClusterConfig, arrival_s_T: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    spec = config.drift
    names = config.model_names
    rollout = names.index(spec.model) if spec.model else int(rng.integers(len(names)))
    lo, hi = spec.start_fraction
    start_s = float(rng.uniform(lo, hi)) * config.horizon_s
    weight_TM = drift_weights(config, rollout, start_s, arrival_s_T)
    cdf_TM = np.cumsum(weight_TM, axis=1)
    u_T1 = rng.random((arrival_s_T.shape[0], 1)) * cdf_TM[:, -1:]
    return np.asarray(np.minimum((cdf_TM <= u_T1).sum(axis=1), len(names) - 1), dtype=np.int64)


def draw_residency(config: ClusterConfig, nodes: list[NodeSpec], seed: int) -> list[NodeSpec]:
    """The episode's nodes with their initial resident models (``ResidencySpec``).

    ``fixed`` returns ``nodes`` unchanged; ``random`` draws from a fourth stream of ``seed``
    (arrivals, churn and hidden factors are unchanged): :func:`draw_resident`.
    """
    if config.residency.mode == "fixed":
        return nodes
    return [dataclasses.replace(node, resident=resident)
            for node, resident in zip(nodes, draw_resident(config, nodes, seed), strict=True)]


def draw_resident(config: ClusterConfig, nodes: list[NodeSpec],
                  seed: int) -> list[tuple[str, ...]]:
    """Each node's initial resident models (the lists of :func:`draw_residency`).

    ``random``: per node, the models it can run in a random order, each kept while fewer
    than ``max_models`` are and it fits the VRAM left.
    """
    spec = config.residency
    if spec.mode == "fixed":
        return [node.resident for node in nodes]
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[3])
    names = config.model_names
    runnable: dict[int, tuple[list[str], list[float]]] = {}  # per profile (nodes share them)
    out = []
    for node in nodes:
        profile = node.profile
        key = id(profile)
        if key not in runnable:
            fits = [m for m in names if profile.can_run(m)]
            runnable[key] = (fits, [profile.timings[m].memory_gib for m in fits])
        fits, need_K = runnable[key]
        chosen: list[str] = []
        free = profile.vram_gib
        for k in rng.permutation(len(fits)):
            if len(chosen) < spec.max_models and need_K[k] <= free:
                chosen.append(fits[k])
                free -= need_K[k]
        out.append(tuple(chosen))
    return out


def draw_churn(
    spec: ChurnSpec, num_nodes: int, horizon_s: float, rng: np.random.Generator
) -> ChurnEvents:
    """Alternating up/down periods per node (exponential), all nodes up at time 0.

    Every leave is followed by a join unless the horizon ends first. The simulator may skip a
    leave (see ``ChurnSpec.max_down_fraction``); the matching join is then a no-op.
    """
    times: list[float] = []
    nodes: list[int] = []
    kinds: list[int] = []
    if spec.enabled:
        for node in range(num_nodes):
            t = rng.exponential(spec.mean_up_s)
            while t < horizon_s:
                times.append(t)
                nodes.append(node)
                kinds.append(LEAVE)
                t += rng.exponential(spec.mean_down_s)
                if t >= horizon_s:
                    break
                times.append(t)
                nodes.append(node)
                kinds.append(JOIN)
                t += rng.exponential(spec.mean_up_s)
    order = np.argsort(np.asarray(times, dtype=float), kind="stable")
    return ChurnEvents(
        time_s_K=np.asarray(times, dtype=float)[order],
        node_K=np.asarray(nodes, dtype=np.int64)[order],
        kind_K=np.asarray(kinds, dtype=np.int64)[order],
    )
