"""The training loop: lockstep rounds of episodes, per-slot updates, logs and checkpoints.

A round plays ``lanes`` training episodes at once. In each slot every agent acts on all its
tasks of every lane (sampled actions, as published), the transitions go to its replay ring,
and then every agent takes ``lanes`` gradient steps: one per slot per episode, the
published rate. The transition of an agent's last task in a slot completes at the next slot
(its next state is the agent's first task there); the last slot's final transitions are
dropped (the episode has no next decision).
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ladts_policy.evaluate import episode_seed
from ladts_policy.sim.dynamics.paper import PaperConfig
from ladts_policy.train import checkpoint
from ladts_policy.train.algorithms import Algorithm, make_algorithm
from ladts_policy.train.config import TrainConfig
from ladts_policy.train.paper_features import state_width
from ladts_policy.train.paper_rollout import PaperSlotRollout, SlotObservation
from ladts_policy.train.policies import AgentPolicy

LOG_FIELDS = ("episode", "lane", "mean_delay_s", "tasks", "updates", "alpha", "entropy",
              "critic_loss", "actor_loss", "wall_s")
"""Columns of ``DIR/log.csv`` (one row per training episode)."""

# Resuming may change only how the run is executed, not what it computes.
_RESUME_MAY_CHANGE = ("episodes", "device", "checkpoint_every")


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else the CPU; ``cuda`` without CUDA is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available (use cpu or auto)")
    return torch.device(name)


def paper_config_for(scenario: str) -> PaperConfig:
    """The paper simulator settings of a scenario; other kinds cannot be trained on here."""
    from ladts_policy.sim.config.scenario import load_scenario

    spec = load_scenario(scenario)
    if spec.kind != "paper":
        raise ValueError(
            f"scenario {scenario!r} is of kind {spec.kind!r}: the per-station agents train on "
            "the 'paper' kind only (its fixed 2 + B state); the cluster policy comes later")
    paper = spec.config
    if not isinstance(paper, PaperConfig):
        raise ValueError(f"scenario {scenario!r} has no paper settings")
    return paper


@dataclass
class RoundStats:
    """Sums over one lockstep round."""

    delay_sum_E: np.ndarray
    tasks_E: np.ndarray
    updates: int = 0
    metrics_sum: dict[str, float] | None = None

    def add_metrics(self, metrics: dict[str, float]) -> None:
        """Accumulate one update's diagnostics."""
        self.updates += 1
        if self.metrics_sum is None:
            self.metrics_sum = dict.fromkeys(metrics, 0.0)
        for k, v in metrics.items():
            self.metrics_sum[k] += v

    def metric(self, name: str) -> float:
        """Mean of a diagnostic over the round's updates (NaN if none)."""
        if not self.metrics_sum or name not in self.metrics_sum or not self.updates:
            return float("nan")
        return self.metrics_sum[name] / self.updates


class Trainer:
    """Trains one algorithm on the ``paper`` preset; see the module docstring."""

    def __init__(self, config: TrainConfig, out_dir: Path, *, resume: bool = False,
                 show_progress: bool = True) -> None:
        self.out_dir = out_dir
        self.show_progress = show_progress
        self.paper = paper_config_for(config.scenario)
        self.device = resolve_device(config.device)
        torch.set_num_threads(config.threads)
        self.episodes_done = 0
        self.elapsed_s = 0.0
        ckpt_path = out_dir / "checkpoint.pt"
        saved: dict[str, Any] | None = None
        if resume:
            saved = checkpoint.load(ckpt_path, checkpoint.TRAIN_FORMAT)
            config = self._resumed_config(saved, config)
        elif ckpt_path.exists():
            raise ValueError(f"{ckpt_path} exists: pass --resume to continue that run, or "
                             "choose another --out")
        self.config = config
        torch.manual_seed(config.seed)
        b = self.paper.num_nodes
        self.state_dim = state_width(b, config.state)
        self.policy = AgentPolicy(config, b, self.state_dim, b).to(self.device)
        self.algo: Algorithm = make_algorithm(self.policy, config)
        from ladts_policy.train.buffer import AgentReplay

        self.buffer = AgentReplay(b, config.buffer_size, self.state_dim, b, self.device)
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0x1A7E]))
        shape = (config.lanes, self.paper.num_slots - 1, b, self.paper.max_tasks, b)
        self.latent_LTBKN = rng.standard_normal(shape, dtype=np.float32)
        if saved is not None:
            self._restore(saved)

    # -- public ---------------------------------------------------------------------------

    def run(self) -> Path:
        """Train to ``config.episodes`` episodes; return the path of ``final.pt``."""
        from tqdm import tqdm

        cfg = self.config
        self.out_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.out_dir / "log.csv"
        new_log = self.episodes_done == 0 or not log_path.exists()
        tb = _tensorboard(self.out_dir)
        rounds = 0
        with open(log_path, "w" if new_log else "a", newline="") as fh, tqdm(
                total=cfg.episodes, initial=self.episodes_done, unit="ep",
                disable=not self.show_progress, dynamic_ncols=True,
                desc=f"{cfg.algo} seed {cfg.seed}") as bar:
            writer = csv.DictWriter(fh, fieldnames=LOG_FIELDS)
            if new_log:
                writer.writeheader()
            while self.episodes_done < cfg.episodes:
                lanes = min(cfg.lanes, cfg.episodes - self.episodes_done)
                start = time.perf_counter()
                stats = self._play_round(lanes, bar)
                self.elapsed_s += time.perf_counter() - start
                for lane in range(lanes):
                    row = self._log_row(self.episodes_done + lane, lane, stats)
                    writer.writerow(row)
                    if tb is not None:
                        tb.add_scalar("delay/train_mean_s", row["mean_delay_s"], row["episode"])
                fh.flush()
                self.episodes_done += lanes
                bar.update(lanes)
                rounds += 1
                if rounds % cfg.checkpoint_every == 0 or self.episodes_done >= cfg.episodes:
                    self.save_checkpoint()
        if tb is not None:
            tb.close()
        return self.save_final()

    def save_checkpoint(self) -> Path:
        """Write ``DIR/checkpoint.pt`` (resumable state at a round boundary)."""
        path = self.out_dir / "checkpoint.pt"
        checkpoint.save(path, {
            "format": checkpoint.TRAIN_FORMAT, "config": self.config.to_dict(),
            "episodes_done": self.episodes_done, "elapsed_s": self.elapsed_s,
            "policy": self.policy.state_dict(), "algorithm": self.algo.state_dict(),
            "buffer": self.buffer.state_dict(), "latent": torch.from_numpy(self.latent_LTBKN),
            "torch_rng": torch.get_rng_state()})
        return path

    def save_final(self) -> Path:
        """Write ``DIR/final.pt``: the policy and lane 0's latent memory (what acts)."""
        path = self.out_dir / "final.pt"
        checkpoint.save(path, policy_payload(self.config, self.policy, self.latent_LTBKN[0],
                                             self.state_dim, self.episodes_done,
                                             self.elapsed_s))
        return path

    # -- internals ------------------------------------------------------------------------

    def _resumed_config(self, saved: dict[str, Any], asked: TrainConfig) -> TrainConfig:
        try:
            stored = TrainConfig.from_dict(dict(saved["config"]))
        except (KeyError, TypeError, ValueError) as err:
            raise checkpoint.CheckpointError(f"checkpoint has no valid config: {err}") from err
        clash = [name for name, value in asked.to_dict().items()
                 if name not in _RESUME_MAY_CHANGE and stored.to_dict()[name] != value]
        if clash:
            raise ValueError(f"--resume: the checkpoint was trained with different {clash}; "
                             "only " + ", ".join(_RESUME_MAY_CHANGE) + " may change")
        return TrainConfig.from_dict({**stored.to_dict(),
                                      **{k: getattr(asked, k) for k in _RESUME_MAY_CHANGE}})

    def _restore(self, saved: dict[str, Any]) -> None:
        try:
            self.policy.load_state_dict(saved["policy"])
            self.algo.load_state_dict(saved["algorithm"])
            self.buffer.load_state_dict(saved["buffer"])
            self.latent_LTBKN = saved["latent"].numpy().copy()
            torch.set_rng_state(saved["torch_rng"])
            self.episodes_done = int(saved["episodes_done"])
            self.elapsed_s = float(saved.get("elapsed_s", 0.0))
        except (KeyError, RuntimeError, TypeError, ValueError) as err:
            raise checkpoint.CheckpointError(f"checkpoint does not match this run: {err}") from err

    def _play_round(self, lanes: int, bar: Any) -> RoundStats:
        cfg = self.config
        dev = self.device
        env = PaperSlotRollout(self.paper, lanes, scale_s=cfg.state_scale_s, state=cfg.state)
        env.reset([episode_seed(cfg.seed, self.episodes_done + j) for j in range(lanes)])
        stats = RoundStats(np.zeros(lanes), np.zeros(lanes, dtype=np.int64))
        b, k, f, n = env.agents, env.max_tasks, env.state_dim, env.num_actions
        pending: tuple[torch.Tensor, ...] | None = None
        epsilon = cfg.dqn_epsilon if cfg.algo == "dqn" else 0.0
        while (obs := env.observe()) is not None:
            state_BEKF = torch.from_numpy(obs.state_EBKF.transpose(1, 0, 2, 3).copy()).to(dev)
            stored_EBKN = self.latent_LTBKN[:lanes, obs.slot]
            stored_BEKN = torch.from_numpy(stored_EBKN.transpose(1, 0, 2, 3).copy()).to(dev)
            if cfg.state == "extended":
                action_BEK, probs_BEKN = self._act_in_order(env, obs, state_BEKF, stored_BEKN,
                                                            epsilon)
                probs_BMN = probs_BEKN.reshape(b, lanes * k, n)
            else:
                action_BM, probs_BMN = self.policy.act(
                    state_BEKF.reshape(b, lanes * k, f), stored_BEKN.reshape(b, lanes * k, n),
                    greedy=False, epsilon=epsilon)
                action_BEK = action_BM.reshape(b, lanes, k)
            if self.policy.uses_latent:
                probs_EBKN = probs_BMN.reshape(b, lanes, k, n).permute(1, 0, 2, 3).cpu().numpy()
                np.copyto(stored_EBKN, probs_EBKN, where=obs.mask_EBK[..., None])
            delay_EBK = env.step(action_BEK.permute(1, 0, 2).cpu().numpy())
            mask_EBK = obs.mask_EBK
            stats.delay_sum_E += np.where(mask_EBK, delay_EBK, 0.0).sum(axis=(1, 2))
            stats.tasks_E += mask_EBK.sum(axis=(1, 2))
            reward_BEK = torch.from_numpy(
                -np.nan_to_num(delay_EBK.transpose(1, 0, 2))).float().to(dev)
            mask_BEK = torch.from_numpy(mask_EBK.transpose(1, 0, 2).copy()).to(dev)
            pending = self._store(state_BEKF, action_BEK, stored_BEKN, reward_BEK, mask_BEK,
                                  pending)
            for _ in range(lanes):
                if self.buffer.ready(cfg.min_buffer):
                    stats.add_metrics(self.algo.update(self.buffer.sample(cfg.batch_size)))
            done_tasks = max(int(stats.tasks_E.sum()), 1)
            bar.set_postfix(delay=f"{stats.delay_sum_E.sum() / done_tasks:.3f}s",
                            slot=obs.slot, refresh=False)
        return stats

    def _act_in_order(self, env: PaperSlotRollout, obs: SlotObservation,
                      state_BEKF: torch.Tensor, stored_BEKN: torch.Tensor, epsilon: float
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Extended state: decide the slot task by task, each decision seeing ``Q̃``.

        ``Q̃`` is the work already sent this slot; the order is the published one (BS
        0..B−1, each in task order). Fills the ``Q̃`` block of ``state_BEKF`` in place;
        returns actions [B, E, K] and action probabilities [B, E, K, N]. Every agent's
        network runs on every row and the deciding agent's row is kept (tiny networks: one
        call is cheaper than slicing).
        """
        b, e, k, _ = state_BEKF.shape
        n = stored_BEKN.shape[-1]
        work_K = env.constants.workload_K
        in_slot_EN = np.zeros((e, n))
        action_BEK = torch.zeros(b, e, k, dtype=torch.int64, device=state_BEKF.device)
        probs_BEKN = torch.zeros(b, e, k, n, device=state_BEKF.device)
        lanes_E = np.arange(e)
        for bs in range(b):
            count_E = obs.mask_EBK[:, bs].sum(axis=1)
            for pos in range(int(count_E.max())):
                live_E = pos < count_E
                feats = torch.from_numpy(env.in_slot_features(in_slot_EN)).to(state_BEKF.device)
                state_BEKF[bs, :, pos, -n:] = torch.where(
                    torch.from_numpy(live_E)[:, None].to(feats.device), feats, 0.0)
                rows_AEF = state_BEKF[bs, :, pos][None].expand(b, e, -1)
                act_AE, probs_AEN = self.policy.act(
                    rows_AEF, stored_BEKN[bs, :, pos][None].expand(b, e, -1).contiguous(),
                    greedy=False, epsilon=epsilon)
                action_BEK[bs, :, pos] = act_AE[bs]
                probs_BEKN[bs, :, pos] = probs_AEN[bs]
                chosen_E = act_AE[bs].cpu().numpy()
                in_slot_EN[lanes_E[live_E], chosen_E[live_E]] += work_K[pos]
        return action_BEK, probs_BEKN

    def _store(self, state_BEKF: torch.Tensor, action_BEK: torch.Tensor,
               start_BEKN: torch.Tensor, reward_BEK: torch.Tensor, mask_BEK: torch.Tensor,
               pending: tuple[torch.Tensor, ...] | None) -> tuple[torch.Tensor, ...]:
        """Add the slot's complete transitions; return its last tasks (completed next slot)."""
        b, e, k, _ = state_BEKF.shape
        agent_BEK = torch.arange(b, device=state_BEKF.device)[:, None, None].expand(b, e, k)
        # Within the slot: task k's next state is task k + 1 of the same agent and lane.
        inner_BEK = mask_BEK.clone()
        inner_BEK[..., :-1] &= mask_BEK[..., 1:]
        inner_BEK[..., -1] = False
        nxt_state = torch.roll(state_BEKF, -1, dims=2)
        nxt_start = torch.roll(start_BEKN, -1, dims=2)
        rows = {"state": state_BEKF[inner_BEK], "action": action_BEK[inner_BEK],
                "start": start_BEKN[inner_BEK], "reward": reward_BEK[inner_BEK],
                "next_state": nxt_state[inner_BEK], "next_start": nxt_start[inner_BEK]}
        agent_R = agent_BEK[inner_BEK]
        if pending is not None:
            p_state, p_action, p_start, p_reward = pending
            rows = {"state": torch.cat([p_state.reshape(b * e, -1), rows["state"]]),
                    "action": torch.cat([p_action.reshape(-1), rows["action"]]),
                    "start": torch.cat([p_start.reshape(b * e, -1), rows["start"]]),
                    "reward": torch.cat([p_reward.reshape(-1), rows["reward"]]),
                    "next_state": torch.cat([state_BEKF[:, :, 0].reshape(b * e, -1),
                                             rows["next_state"]]),
                    "next_start": torch.cat([start_BEKN[:, :, 0].reshape(b * e, -1),
                                             rows["next_start"]])}
            agent_R = torch.cat([agent_BEK[:, :, 0].reshape(-1), agent_R])
        self.buffer.add(agent_R, rows)
        last_BE = mask_BEK.sum(-1) - 1  # every BS has at least one task per slot
        idx = last_BE[..., None]
        return (state_BEKF.gather(2, idx[..., None].expand(b, e, 1, state_BEKF.shape[-1]))[:, :, 0],
                action_BEK.gather(2, idx)[:, :, 0],
                start_BEKN.gather(2, idx[..., None].expand(b, e, 1, start_BEKN.shape[-1]))[:, :, 0],
                reward_BEK.gather(2, idx)[:, :, 0])

    def _log_row(self, episode: int, lane: int, stats: RoundStats) -> dict[str, Any]:
        tasks = int(stats.tasks_E[lane])
        return {"episode": episode, "lane": lane,
                "mean_delay_s": round(float(stats.delay_sum_E[lane]) / max(tasks, 1), 6),
                "tasks": tasks, "updates": stats.updates,
                "alpha": round(stats.metric("alpha"), 6),
                "entropy": round(stats.metric("entropy"), 6),
                "critic_loss": round(stats.metric("critic_loss"), 6),
                "actor_loss": round(stats.metric("actor_loss"), 6),
                "wall_s": round(self.elapsed_s, 3)}


def policy_payload(config: TrainConfig, policy: AgentPolicy, latent_TBKN: np.ndarray,
                   state_dim: int, episodes: int, elapsed_s: float) -> dict[str, Any]:
    """The content of ``final.pt``."""
    return {"format": checkpoint.POLICY_FORMAT, "config": config.to_dict(),
            "state_dim": state_dim, "num_nodes": policy.agents,
            "policy": {k: v.cpu() for k, v in policy.state_dict().items()},
            "latent": torch.from_numpy(np.ascontiguousarray(latent_TBKN)),
            "episodes": episodes, "train_wall_s": elapsed_s}


def _tensorboard(out_dir: Path) -> Any:
    """A TensorBoard writer when ``tensorboard`` is installed, else ``None``."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(out_dir / "tb"))
