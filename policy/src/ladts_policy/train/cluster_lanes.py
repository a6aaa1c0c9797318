"""Training clusters stepped in lockstep, as padded feature batches with the latent memory.

Each of ``E`` lanes runs one ``k8s-edge`` episode on its own cluster (a
:class:`~ladts_policy.sim.dynamics.cluster.ClusterSimulator` with one environment); when the episode
ends the lane starts the next cluster of the run's sequence at once. Every decision goes the
way the evaluator's and the operator's do: ``snapshot`` -> :func:`ladts_policy.features.encode`,
mask = feature mask AND simulator mask (``ladts_policy.onnx_eval``). Rows are padded to
``S`` node slots (zero rows, masked).

The latent memory (LAD-TS's warm start) lives here: one ``[N, L]`` latent per lane and task
class ``(model, steps bucket)``, the key :mod:`ladts_policy.onnx_eval` and the operator use;
it is cleared when a lane starts a new cluster. With ``gaussian_start`` (D2SAC) every
decision starts from fresh ``N(0, I)`` instead. The teacher (``residency-greedy``) is asked
on every decision, so its node is in every transition (imitation and its agreement metric).
Torch-free.

Shapes: ``E`` lanes, ``S`` node slots, ``F``/``T``/``G`` feature widths, ``L`` latent width.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ladts_policy.baselines import ResidencyGreedyPolicy
from ladts_policy.contract import SPEC
from ladts_policy.features import encode
from ladts_policy.onnx_eval import steps_bucket
from ladts_policy.sim.base import DecisionView
from ladts_policy.sim.config.cluster_config import ClusterConfig
from ladts_policy.sim.dynamics.cluster import ClusterSimulator

ClusterSource = Callable[[int], tuple[ClusterConfig, int]]
"""``index -> (cluster, episode seed)``: the run's sequence of training episodes."""


@dataclass
class LaneBatch:
    """One decision of every lane, padded to ``S`` node slots."""

    node_ESF: np.ndarray
    """float32 [E, S, F] node rows."""

    mask_ES: np.ndarray
    """bool [E, S] valid actions."""

    task_ET: np.ndarray
    """float32 [E, T] task rows."""

    global_EG: np.ndarray
    """float32 [E, G] global rows."""

    start_ESL: np.ndarray
    """float32 [E, S, L] the chain's start (latent memory, zeros or Gaussian)."""

    teacher_E: np.ndarray
    """int64 [E] the teacher's node."""

    nodes_E: np.ndarray
    """int64 [E] nodes of each lane's cluster (rows beyond are padding)."""


class ClusterLanes:
    """``E`` lanes of training episodes (module docstring)."""

    def __init__(self, source: ClusterSource, *, lanes: int, node_slots: int, latent_dim: int,
                 gaussian_start: bool, seed: int) -> None:
        self.source = source
        self.lanes = lanes
        self.node_slots = node_slots
        self.latent_dim = latent_dim
        self.gaussian_start = gaussian_start
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 0x1A4E]))
        self.next_index = 0
        self.sims: list[ClusterSimulator] = []
        self.views: list[DecisionView] = []
        self.teachers: list[ResidencyGreedyPolicy] = []
        self.memory: list[dict[tuple[str, int], np.ndarray]] = []
        self.keys: list[tuple[str, int]] = [("", 0)] * lanes
        self.episodes_done = 0
        self.episode_delay_sum = np.zeros(lanes)
        self.episode_count = np.zeros(lanes, dtype=np.int64)
        self.finished_means: list[float] = []
        self.teacher_fallbacks = 0
        """Decisions whose teacher node was outside the mask (replaced by the first allowed
        node; counted so a run's log shows how often its imitation target was not the
        teacher's)."""
        for lane in range(lanes):
            self.sims.append(None)  # type: ignore[arg-type]
            self.views.append(None)  # type: ignore[arg-type]
            self.teachers.append(ResidencyGreedyPolicy())
            self.memory.append({})
            self._start_episode(lane)

    def _start_episode(self, lane: int) -> None:
        config, episode_seed = self.source(self.next_index)
        self.next_index += 1
        if config.num_nodes > self.node_slots:
            raise ValueError(f"a training cluster has {config.num_nodes} nodes, more than the "
                             f"{self.node_slots} node slots")
        sim = ClusterSimulator(config, num_envs=1)
        self.sims[lane] = sim
        self.views[lane] = sim.reset([episode_seed])
        self.teachers[lane].reset(num_envs=1, num_nodes=sim.num_nodes,
                                  seed=int(self.rng.integers(2**31 - 1)))
        self.memory[lane] = {}

    def observe(self) -> LaneBatch:
        """The pending decision of every lane."""
        e, s, lat = self.lanes, self.node_slots, self.latent_dim
        dims = SPEC.dims
        batch = LaneBatch(
            node_ESF=np.zeros((e, s, dims["node"]), np.float32),
            mask_ES=np.zeros((e, s), bool),
            task_ET=np.zeros((e, dims["task"]), np.float32),
            global_EG=np.zeros((e, dims["global"]), np.float32),
            start_ESL=np.zeros((e, s, lat), np.float32),
            teacher_E=np.zeros(e, np.int64),
            nodes_E=np.zeros(e, np.int64),
        )
        for lane, (sim, view) in enumerate(zip(self.sims, self.views, strict=True)):
            snap, task = sim.snapshot(0)
            n = sim.num_nodes
            feats = encode(snap, task, node_slots=n)
            batch.node_ESF[lane, :n] = feats.node_rows_SF
            batch.mask_ES[lane, :n] = feats.node_mask_S & view.node_mask_EN[0]
            if not batch.mask_ES[lane].any():  # features stricter than the simulator: trust it
                batch.mask_ES[lane, :n] = view.node_mask_EN[0]
            batch.task_ET[lane] = feats.task_T
            batch.global_EG[lane] = feats.global_G
            batch.nodes_E[lane] = n
            key = (task.model, steps_bucket(task.steps))
            self.keys[lane] = key
            if self.gaussian_start:
                batch.start_ESL[lane, :n] = self.rng.standard_normal((n, lat), np.float32)
            elif key in self.memory[lane]:
                batch.start_ESL[lane, :n] = self.memory[lane][key]
            teacher = int(self.teachers[lane].act(view)[0])
            if not batch.mask_ES[lane, teacher]:
                allowed = np.flatnonzero(batch.mask_ES[lane])
                teacher = int(allowed[0])
                self.teacher_fallbacks += 1
            batch.teacher_E[lane] = teacher
        return batch

    def remember(self, latent_ESL: np.ndarray) -> None:
        """Store each lane's returned latent under its current task class (LAD-TS memory)."""
        if self.gaussian_start:
            return
        for lane, sim in enumerate(self.sims):
            self.memory[lane][self.keys[lane]] = latent_ESL[lane, :sim.num_nodes].copy()

    def step(self, actions_E: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Place every lane's pod; return ``(delay_E seconds, done_E)``.

        A lane whose episode ends starts its next cluster (its next observation is that
        cluster's first decision).
        """
        delay_E = np.zeros(self.lanes)
        done_E = np.zeros(self.lanes, bool)
        for lane, sim in enumerate(self.sims):
            delays, view = sim.step(np.array([int(actions_E[lane])]))
            delay_E[lane] = float(delays[0])
            self.episode_delay_sum[lane] += delay_E[lane]
            self.episode_count[lane] += 1
            if view is None:
                done_E[lane] = True
                self.finished_means.append(self.episode_delay_sum[lane]
                                           / max(self.episode_count[lane], 1))
                self.episode_delay_sum[lane], self.episode_count[lane] = 0.0, 0
                self.episodes_done += 1
                self._start_episode(lane)
            else:
                self.views[lane] = view
        return delay_E, done_E
