"""The cluster trainer: imitation warm start, then discrete SAC, on random training clusters.

``ladts train --scenario k8s-edge --algo lad-ts|d2sac ...`` runs this (docs/training.md,
"The cluster policy"). One loop over lockstep steps of the lanes
(:class:`~ladts_policy.train.cluster_lanes.ClusterLanes`):

1. Imitation (``imitate=residency-greedy``): the teacher places every pod while the actor
   runs alongside to keep its own latent memory; transitions go to the replay and the actor
   takes cross-entropy steps on the teacher's node (:mod:`.cluster_imitation`).
2. SAC (:mod:`.cluster_sac`): the actor samples its nodes; the replay (teacher transitions
   first) trains the per-node twin critics, then the actor and α.

Feature normalisation (the actor's and critics' ``FeatureNorm``) is set once from the first
transitions. Every ``validate_every`` decisions, at the end of imitation and at the end,
the argmax policy is scored on the validation clusters (random clusters of a training-range
seed that is never trained on) as its pooled delay ratio to greedy on the same episodes; the
best-scoring actor is ``DIR/final.pt`` (the selection never sees an evaluation seed), the
last one ``DIR/last.pt``, the imitation-only one ``DIR/bc.pt``. ``DIR/log.csv`` has one row
per validation; ``DIR/summary.json`` the wall-clock and the validation history.
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ladts_policy.baselines import GreedyPolicy, ResidencyGreedyPolicy, SchedulingPolicy
from ladts_policy.evaluate import episode_seed, run_policy
from ladts_policy.policy_contract import PolicyInfo
from ladts_policy.sim.config.cluster_config import ClusterConfig
from ladts_policy.sim.config.scenario import Scenario, load_scenario
from ladts_policy.sim.dynamics.cluster import ClusterSimulator
from ladts_policy.train import checkpoint
from ladts_policy.train.cluster_buffer import ClusterReplay, state_of
from ladts_policy.train.cluster_config import ClusterTrainConfig
from ladts_policy.train.cluster_distribution import (
    DISTRIBUTION_VERSION,
    DistributionConfig,
    generate_scenario,
)
from ladts_policy.train.cluster_eval_policy import ClusterCheckpointPolicy
from ladts_policy.train.cluster_export import CLUSTER_FORMAT
from ladts_policy.train.cluster_imitation import Imitation
from ladts_policy.train.cluster_lanes import ClusterLanes, LaneBatch
from ladts_policy.train.cluster_networks import ClusterActorConfig, ClusterDiffusionActor
from ladts_policy.train.cluster_sac import ClusterSAC

LOG_FIELDS = ("phase", "decisions", "updates", "train_delay_s", "teacher_agreement",
              "bc_loss", "critic_loss", "actor_loss", "alpha", "entropy", "val_ratio",
              "wall_s", "actor_fallbacks", "teacher_fallbacks")
"""Columns of ``DIR/log.csv`` (one row per validation). The two fallbacks are cumulative
counts of decisions: ``actor_fallbacks`` SAC decisions whose actor probabilities were NaN or
zero on every allowed node (the teacher's node was played and stored as the transition),
``teacher_fallbacks`` decisions whose teacher node was outside the mask (the first allowed
node was used instead; ``ClusterLanes.teacher_fallbacks``)."""

NORM_STEPS = 32
"""Lockstep steps collected before the feature normalisation is set and updates start."""


def validation_seed(seed: int) -> int:
    """The training-range seed of the validation clusters (never the run's own)."""
    return 9999 if seed != 9999 else 9998


class ClusterTrainer:
    """One cluster training run (module docstring)."""

    def __init__(self, config: ClusterTrainConfig, out_dir: Path, *,
                 show_progress: bool = True) -> None:
        self.config = config
        self.out_dir = out_dir
        self.show_progress = show_progress
        if (out_dir / "final.pt").exists():
            raise ValueError(f"{out_dir / 'final.pt'} exists: choose another --out")
        self.device = torch.device(config.device)
        if config.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is available")
        torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.base: Scenario = load_scenario(config.scenario)
        self.base_cluster = self.base.cluster
        self.dist = DistributionConfig(min_nodes=config.min_nodes, max_nodes=config.max_nodes,
                                       horizon_s=config.horizon_s)
        if config.distribution == "scenario":
            self.node_slots = self.base_cluster.num_nodes
        else:
            self.node_slots = config.max_nodes
        self.actor_cfg = ClusterActorConfig(hidden=config.hidden,
                                            latent_dim=config.latent_dim,
                                            steps=config.denoising_steps)
        self.actor = ClusterDiffusionActor(self.actor_cfg).to(self.device)
        self.sac = ClusterSAC(self.actor, config)
        self.imitation = Imitation(self.actor, config.bc_lr)
        self.replay = ClusterReplay(config.buffer_size, self.node_slots, config.latent_dim,
                                    self.device)
        self.rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0x5A3]))
        self.validation = self._validation_set()
        self.history: list[dict[str, float]] = []
        self.best_ratio = math.inf
        self.elapsed_s = 0.0

    # -- clusters -------------------------------------------------------------------------

    def cluster(self, index: int, *, seed: int | None = None,
                horizon_s: float | None = None) -> tuple[ClusterConfig, int]:
        """Training (or validation) episode ``index``: its cluster and simulator seed."""
        seed = self.config.seed if seed is None else seed
        if self.config.distribution == "scenario":
            base = self.base_cluster
            if horizon_s is not None:
                import dataclasses

                base = dataclasses.replace(base, horizon_s=min(base.horizon_s, horizon_s))
            return base, episode_seed(seed, index)
        dist = self.dist
        if horizon_s is not None:
            import dataclasses

            dist = dataclasses.replace(dist, horizon_s=horizon_s)
        return generate_scenario(self.base_cluster, seed, index, dist).cluster, \
            episode_seed(seed, index)

    def _validation_set(self) -> list[tuple[ClusterConfig, int, float, float]]:
        """Validation episodes with greedy's and residency-greedy's total delays."""
        out = []
        vseed = validation_seed(self.config.seed)
        for i in range(self.config.validation_clusters):
            config, ep = self.cluster(i, seed=vseed, horizon_s=self.config.validation_horizon_s)
            means = [self._total_delay(config, ep, policy)
                     for policy in (GreedyPolicy(), ResidencyGreedyPolicy())]
            out.append((config, ep, means[0], means[1]))
        return out

    @staticmethod
    def _total_delay(config: ClusterConfig, ep: int, policy: SchedulingPolicy) -> float:
        """Total delay of one validation episode, s (pooled over clusters by the ratio).

        Played on the reference :class:`ClusterSimulator`, as the training lanes are, so a
        run (and its selection) stays reproducible whichever simulator
        ``Scenario.make_simulator`` builds.
        """

        def make_sim(num_envs: int) -> ClusterSimulator:
            return ClusterSimulator(config, num_envs=num_envs)

        delays = run_policy(make_sim, policy, [ep], policy_seed=0)
        return float(np.sum(delays[0]))

    def teacher_validation_ratio(self) -> float:
        """Residency-greedy's pooled delay ratio to greedy on the validation clusters."""
        return sum(r for *_, r in self.validation) / sum(g for _, _, g, _ in self.validation)

    def validate(self) -> float:
        """Pooled delay ratio to greedy of the argmax actor on the validation clusters.

        The actor's delays summed over every validation request, divided by greedy's sum on
        the same episodes (a mean of per-cluster ratios would let a 60-request cluster weigh
        as much as a 2000-request one).
        """
        info = PolicyInfo("validation", self.actor_cfg.steps, self.actor_cfg.latent_dim,
                          "", self.config.seed, "")
        policy = ClusterCheckpointPolicy(self.actor, algo=self.config.algo, name="validation",
                                         info=info)
        total = sum(self._total_delay(config, ep, policy) for config, ep, _, _ in self.validation)
        self.actor.train()
        torch.set_num_threads(self.config.threads)
        return total / sum(greedy for _, _, greedy, _ in self.validation)

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> Path:
        """Train; return the path of ``final.pt`` (the best validated actor)."""
        from tqdm import tqdm

        cfg = self.config
        self.out_dir.mkdir(parents=True, exist_ok=True)
        lanes = ClusterLanes(self.cluster, lanes=cfg.lanes, node_slots=self.node_slots,
                             latent_dim=cfg.latent_dim, gaussian_start=cfg.algo == "d2sac",
                             seed=cfg.seed)
        bc_total = cfg.bc_decisions if cfg.imitation else 0
        total = bc_total + cfg.sac_decisions
        bc_steps = max(bc_total // cfg.lanes, 1)
        bc_rate = cfg.bc_updates / bc_steps if cfg.imitation else 0.0
        decisions, steps, updates, credit, actor_fallbacks = 0, 0, 0, 0.0, 0
        next_validation = cfg.validate_every
        metrics: dict[str, list[float]] = {}
        agree: list[float] = []
        start = time.perf_counter()
        obs = lanes.observe()
        log_path = self.out_dir / "log.csv"
        with open(log_path, "w", newline="") as fh, tqdm(
                total=total, unit="dec", disable=not self.show_progress, dynamic_ncols=True,
                desc=f"{cfg.algo}{'+bc' if cfg.imitation else ''} seed {cfg.seed}") as bar:
            writer = csv.DictWriter(fh, fieldnames=LOG_FIELDS)
            writer.writeheader()

            def checkpoint_row(phase: str) -> None:
                ratio = self.validate()
                self.elapsed_s = time.perf_counter() - start
                row: dict[str, Any] = {
                    "phase": phase, "decisions": decisions, "updates": updates,
                    "train_delay_s": _mean(lanes.finished_means[-4 * cfg.lanes:]),
                    "teacher_agreement": _mean(agree),
                    **{k: _mean(metrics.get(k, [])) for k in
                       ("bc_loss", "critic_loss", "actor_loss", "alpha", "entropy")},
                    "val_ratio": ratio, "wall_s": round(self.elapsed_s, 1),
                    "actor_fallbacks": actor_fallbacks,
                    "teacher_fallbacks": lanes.teacher_fallbacks}
                writer.writerow(row)
                fh.flush()
                self.history.append({k: v for k, v in row.items() if k != "phase"})
                metrics.clear()
                agree.clear()
                if ratio < self.best_ratio:
                    self.best_ratio = ratio
                    self.save_actor(self.out_dir / "final.pt", decisions, ratio)
                bar.set_postfix(phase=phase, val=f"{ratio:.3f}", refresh=True)

            while decisions < total:
                phase = "bc" if decisions < bc_total else "sac"
                state = state_of(obs, self.device)
                with torch.no_grad():
                    noise = torch.randn(cfg.lanes, self.actor_cfg.steps, obs.mask_ES.shape[1],
                                        cfg.latent_dim, device=self.device)
                    probs, latent = self.actor(state.node, state.mask, state.task,
                                               state.glob, state.start, noise)
                lanes.remember(latent.cpu().numpy())
                probs_np = probs.cpu().numpy()
                agree.append(float(np.mean(probs_np.argmax(1) == obs.teacher_E)))
                if phase == "bc":
                    action_E = obs.teacher_E.copy()
                else:
                    action_E, fell_back = _sample(probs_np, obs, self.rng)
                    actor_fallbacks += fell_back
                delay_E, done_E = lanes.step(action_E)
                nxt = lanes.observe()
                self.replay.add(obs, action_E, -delay_E / cfg.reward_scale_s, done_E, nxt)
                obs = nxt
                decisions += cfg.lanes
                steps += 1
                bar.update(cfg.lanes)
                if steps == NORM_STEPS:
                    self._set_normalisation()
                if steps >= NORM_STEPS:
                    credit += bc_rate if phase == "bc" else cfg.updates_per_step
                    while credit >= 1.0:
                        credit -= 1.0
                        updates += 1
                        batch = self.replay.sample(cfg.batch_size, self.rng)
                        if phase == "bc":
                            out = self.imitation.update(batch.state, batch.teacher)
                        else:
                            out = self.sac.update(batch)
                        for k, v in out.items():
                            metrics.setdefault(k, []).append(v)
                if phase == "bc" and decisions >= bc_total:
                    checkpoint_row("bc")
                    self.save_actor(self.out_dir / "bc.pt", decisions, self.history[-1]
                                    ["val_ratio"])
                    next_validation = decisions + cfg.validate_every
                elif decisions >= next_validation and decisions < total:
                    checkpoint_row(phase)
                    next_validation += cfg.validate_every
            checkpoint_row("end")
        self.save_actor(self.out_dir / "last.pt", decisions, self.history[-1]["val_ratio"])
        self.elapsed_s = time.perf_counter() - start
        summary = {"config": cfg.to_dict(), "train_wall_s": round(self.elapsed_s, 1),
                   "decisions": decisions, "updates": updates,
                   "best_val_ratio": self.best_ratio,
                   "teacher_val_ratio": self.teacher_validation_ratio(),
                   "validation_seed": validation_seed(cfg.seed),
                   "actor_fallbacks": actor_fallbacks,
                   "teacher_fallbacks": lanes.teacher_fallbacks,
                   "history": self.history, "torch_threads": torch.get_num_threads()}
        (self.out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
        return self.out_dir / "final.pt"

    def _set_normalisation(self) -> None:
        """FeatureNorm of the actor and critics from the transitions collected so far."""
        stats = {"node": self.replay.node_statistics(),
                 "task": self.replay.group_statistics("task"),
                 "global": self.replay.group_statistics("glob")}
        for module in (self.actor.norm, self.sac.critic.norm, self.sac.critic_target.norm):
            for group, (mean, std) in stats.items():
                scale = np.where(std > 1e-3, std, 1.0)
                getattr(module, f"{group}_mean").copy_(torch.from_numpy(mean.astype(np.float32)))
                getattr(module, f"{group}_scale").copy_(
                    torch.from_numpy(scale.astype(np.float32)))

    def save_actor(self, path: Path, decisions: int, val_ratio: float) -> None:
        """A cluster checkpoint (``ladts export`` and ``ladts evaluate`` read it)."""
        cfg = self.config
        tag = f"{cfg.algo}{'-bc' if cfg.imitation else ''}"
        # a scenario file (--from-traces writes DIR/scenario.yaml) is named by its folder and
        # file name, so no absolute path of the training machine lands in the ONNX metadata
        # or the serving labels
        scenario = cfg.scenario
        if scenario.endswith((".yaml", ".yml")) or "/" in scenario:
            file = Path(scenario)
            scenario = f"{file.parent.name}/{file.name}" if file.parent.name else file.name
        checkpoint.save(path, {
            "format": CLUSTER_FORMAT, "config": self.actor_cfg.to_dict(),
            "actor": {k: v.cpu() for k, v in self.actor.state_dict().items()},
            "policy_version": f"{tag}-{cfg.distribution}-{scenario}-seed{cfg.seed}",
            "training_scenario": (f"random clusters over {scenario}"
                                  if cfg.distribution == "random" else scenario),
            "training_seed": cfg.seed, "algo": cfg.algo, "train_config": cfg.to_dict(),
            "training_recipe": training_recipe(cfg),
            "decisions": decisions, "val_ratio": val_ratio,
            "train_wall_s": round(self.elapsed_s, 1)})


def training_recipe(cfg: ClusterTrainConfig) -> str:
    """The command of a run and, for random clusters, the generator version it drew from."""
    if cfg.distribution == "random":
        return f"{cfg.command_line()} (training distribution {DISTRIBUTION_VERSION})"
    return cfg.command_line()


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _sample(probs_ES: np.ndarray, obs: LaneBatch,
            rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """One node per lane from the actor's probabilities, and how many lanes fell back.

    A row with no finite positive mass on the allowed nodes (NaN probabilities) plays the
    teacher's node instead; the count goes to ``log.csv``'s ``actor_fallbacks``.
    """
    out = obs.teacher_E.copy()
    fallbacks = 0
    for e, row in enumerate(probs_ES):
        p = np.where(obs.mask_ES[e], np.maximum(row, 0.0), 0.0)
        total = p.sum()
        if total > 0 and np.isfinite(total):
            out[e] = int(rng.choice(p.size, p=p / total))
        else:
            fallbacks += 1
    return out, fallbacks
