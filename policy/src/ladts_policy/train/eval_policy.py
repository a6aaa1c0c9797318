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
from ladts_policy.sim.paper import PaperSimulator
from ladts_policy.train import checkpoint
from ladts_policy.train.config import TrainConfig
from ladts_policy.train.paper_features import paper_features
from ladts_policy.train.policies import AgentPolicy



class CheckpointPolicy:
    """Argmax actions of a trained per-station policy on the ``paper`` simulator."""

    def __init__(self, path: Path) -> None:
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
        self.name = str(path)
        self._sim: PaperSimulator | None = None

    def bind(self, sim: VecSimulator) -> None:
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

    @torch.no_grad()
    def act(self, view: DecisionView) -> np.ndarray:
        """The argmax server of each pending task."""
        sim = self._sim
        if sim is None:
            raise RuntimeError(f"{self.name}: bind(sim) must be called before act()")
        raw_EF = sim.paper_state()
        state_EF = paper_features(raw_EF[:, 0], raw_EF[:, 1], raw_EF[:, 2:].astype(np.float64),
                                  sim.constants, self.config.state_scale_s)
        slot_E, bs_E, pos_E = sim.decision_key()
        t = self.latent_TBKN.shape[0]
        stored_EN = self.latent_TBKN[np.minimum(slot_E, t - 1), bs_E, pos_E]
        a, e = self.num_nodes, state_EF.shape[0]
        # Every agent scores every row (tiny networks); keep each row's own agent.
        state_AEF = torch.from_numpy(state_EF)[None].expand(a, e, -1).contiguous()
        probs_AEN = self.policy.probs(state_AEF, stored_EN[None].expand(a, e, -1).contiguous())
        probs_EN = probs_AEN[torch.from_numpy(bs_E), torch.arange(e)]
        return np.asarray(probs_EN.argmax(-1).numpy(), dtype=np.int64)
