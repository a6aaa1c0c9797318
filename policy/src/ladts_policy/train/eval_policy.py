"""A trained ``final.pt`` as a :class:`~ladts_policy.baselines.SchedulingPolicy`.

``ladts evaluate`` loads checkpoints through this module (imported lazily from the command
layer, so :mod:`ladts_policy.evaluate` stays torch-free). Actions are the argmax of the
policy's distribution. The paper agents read the paper state of each pending task and, for
LAD-TS, its latent action; the latent memory learnt in training is used read-only, so every
evaluation episode is scored independently of the order episodes are played in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ladts_policy.sim.base import DecisionView, VecSimulator
from ladts_policy.sim.dynamics.paper import PaperSimulator
from ladts_policy.train import checkpoint
from ladts_policy.train.config import TrainConfig
from ladts_policy.train.paper_features import paper_features
from ladts_policy.train.policies import AgentPolicy

SAMPLE_SUFFIX = "@sample"
"""Appended to a checkpoint path in ``--policies``: sample actions instead of argmax (the
published code's protocol, for comparison with its reported numbers)."""


class CheckpointPolicy:
    """Argmax (or sampled) actions of a trained per-station policy on the ``paper`` simulator."""

    def __init__(self, path: Path, *, sample: bool = False) -> None:
        self.sample = sample
        payload = checkpoint.load(path, checkpoint.POLICY_FORMAT)
        try:
            self.config = TrainConfig.from_dict(dict(payload["config"]))
            self.num_nodes = int(payload["num_nodes"])
            state_dim = int(payload["state_dim"])
            self.policy = AgentPolicy(self.config, self.num_nodes, state_dim, self.num_nodes)
            self.policy.load_state_dict(payload["policy"])
            self.latent_TBKN = payload["latent"].float()
        except (KeyError, RuntimeError, TypeError, ValueError) as err:
            raise checkpoint.CheckpointError(f"{path}: not a usable policy ({err})") from err
        self.policy.eval()
        self.name = str(path) + (SAMPLE_SUFFIX if sample else "")
        self._sim: PaperSimulator | None = None

    def attach(self, sim: VecSimulator) -> None:
        """Attach the simulator whose pending tasks this policy will read."""
        if not isinstance(sim, PaperSimulator):
            raise ValueError(f"{self.name}: trained on the 'paper' kind; cannot act on "
                             f"{type(sim).__name__}")
        t, b, k, _ = self.latent_TBKN.shape
        cfg = sim.config
        if (cfg.num_nodes, cfg.num_slots - 1, cfg.max_tasks) != (b, t, k):
            raise ValueError(f"{self.name}: trained for {b} servers, {t + 1} slots, {k} tasks; "
                             f"the scenario has {cfg.num_nodes}, {cfg.num_slots}, "
                             f"{cfg.max_tasks}")
        self._sim = sim

    def reset(self, *, num_envs: int, num_nodes: int, seed: int) -> None:
        """Seed torch (the diffusion chain's noise) for reproducible evaluations."""
        torch.manual_seed(seed)
        torch.set_num_threads(1)  # tiny networks: extra threads only add contention
        self._slot_E = np.full(num_envs, -1, dtype=np.int64)
        self._action_EBK = np.zeros((num_envs, self.num_nodes, self.latent_TBKN.shape[2]),
                                    dtype=np.int64)

    @torch.no_grad()
    def act(self, view: DecisionView) -> np.ndarray:
        """The argmax server of each pending task.

        The paper state of every task of a slot is fixed when the slot starts (backlogs at
        the slot start, the slot's drawn inputs), so the first decision of an environment in
        a slot computes the argmax of all that slot's tasks in one batched pass; the later
        decisions read them back. Same actions as one pass per task, far fewer calls.
        """
        sim = self._sim
        if sim is None:
            raise RuntimeError(f"{self.name}: attach(sim) must be called before act()")
        slot_E, bs_E, pos_E = sim.decision_key()
        if self.config.state == "extended":
            return self._act_now(sim, slot_E, bs_E, pos_E)
        stale_I = np.flatnonzero(view.active_E & (slot_E != self._slot_E))
        if stale_I.size:
            self._plan(sim, stale_I, slot_E[stale_I])
            self._slot_E[stale_I] = slot_E[stale_I]
        return np.asarray(self._action_EBK[np.arange(slot_E.size), bs_E, pos_E])

    def _act_now(self, sim: PaperSimulator, slot_E: np.ndarray, bs_E: np.ndarray,
                 pos_E: np.ndarray) -> np.ndarray:
        """Extended state: ``Q̃`` changes with every decision, so decide task by task."""
        raw_EF = sim.paper_state()
        state_EF = paper_features(raw_EF[:, 0], raw_EF[:, 1], raw_EF[:, 2:].astype(np.float64),
                                  sim.constants, self.config.state_scale_s,
                                  in_slot_MN=sim.in_slot_EN)
        t = self.latent_TBKN.shape[0]
        stored_EN = self.latent_TBKN[np.minimum(slot_E, t - 1), bs_E, pos_E]
        a, e = self.num_nodes, state_EF.shape[0]
        state_AEF = torch.from_numpy(state_EF)[None].expand(a, e, -1).contiguous()
        probs_AEN = self.policy.probs(state_AEF, stored_EN[None].expand(a, e, -1).contiguous())
        probs_EN = probs_AEN[torch.from_numpy(bs_E), torch.arange(e)]
        if self.sample:
            u = torch.rand(e, 1)
            chosen = (torch.cumsum(probs_EN, -1) < u).sum(-1).clamp_(max=a - 1)
        else:
            chosen = probs_EN.argmax(-1)
        return np.asarray(chosen.numpy(), dtype=np.int64)

    def _plan(self, sim: PaperSimulator, env_I: np.ndarray, slot_I: np.ndarray) -> None:
        """Argmax actions of every task of the current slot of environments ``env_I``."""
        _, input_EBK = sim.slot_arrivals()
        i, b, k = env_I.size, self.num_nodes, self.latent_TBKN.shape[2]
        work_IBK = np.broadcast_to(sim.constants.workload_K, (i, b, k))
        backlog_IBKN = np.broadcast_to(sim.backlog_EN[env_I][:, None, None, :], (i, b, k, b))
        state = paper_features(input_EBK[env_I].reshape(-1), work_IBK.reshape(-1),
                               backlog_IBKN.reshape(-1, b), sim.constants,
                               self.config.state_scale_s)
        state_BIKF = torch.from_numpy(state.reshape(i, b, k, -1).transpose(1, 0, 2, 3).copy())
        t = self.latent_TBKN.shape[0]
        stored_IBKN = self.latent_TBKN[torch.from_numpy(np.minimum(slot_I, t - 1))]
        stored_BIKN = stored_IBKN.permute(1, 0, 2, 3).contiguous()
        probs = self.policy.probs(state_BIKF.reshape(b, i * k, -1),
                                  stored_BIKN.reshape(b, i * k, -1))
        if self.sample:
            u = torch.rand(*probs.shape[:-1], 1)
            chosen = (torch.cumsum(probs, -1) < u).sum(-1).clamp_(max=b - 1)
        else:
            chosen = probs.argmax(-1)
        action_BIK = chosen.reshape(b, i, k).permute(1, 0, 2).numpy()
        self._action_EBK[env_I] = action_BIK
