"""A cluster checkpoint as an evaluation policy (``ladts evaluate --policies runs/x/final.pt``).

It decides exactly as :class:`ladts_policy.onnx_eval.OnnxEvalPolicy` does (same snapshot ->
encode -> mask path, same noise generator, same latent memory per environment and task
class, argmax) with the torch actor in place of the onnxruntime session, so a checkpoint and
its export are scored alike (their outputs agree to 1e-5, ``tests/policy/test_cluster_export.py``).
A D2SAC checkpoint starts every chain from ``N(0, I)`` as it was trained (its ONNX export
would be fed the latent memory instead: evaluate D2SAC from its checkpoint).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ladts_policy.onnx_eval import OnnxEvalPolicy
from ladts_policy.policy_contract import INPUTS, PolicyInfo
from ladts_policy.train import checkpoint
from ladts_policy.train.cluster_export import CLUSTER_FORMAT, load_cluster_checkpoint
from ladts_policy.train.cluster_networks import ClusterDiffusionActor


def is_cluster_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a cluster actor checkpoint (format ``ladts-cluster-actor``)."""
    try:
        checkpoint.load(path, CLUSTER_FORMAT)
    except checkpoint.CheckpointError:
        return False
    return True


class _TorchSession:
    """The two calls of an onnxruntime session the evaluator makes, run by the torch actor."""

    def __init__(self, actor: ClusterDiffusionActor, gaussian_start: bool, seed: int) -> None:
        self.actor = actor
        self.gaussian_start = gaussian_start
        self.rng = np.random.default_rng(seed)

    def run(self, names: list[str], feeds: dict[str, Any]) -> list[np.ndarray]:
        if self.gaussian_start:
            feeds = {**feeds, "latent_start": self.rng.standard_normal(
                feeds["latent_start"].shape, dtype=np.float32)}
        args = [torch.from_numpy(np.ascontiguousarray(feeds[s.name])) for s in INPUTS]
        with torch.no_grad():
            probs, latent = self.actor(*args)
        out = {"action_probs": probs.numpy(), "latent": latent.numpy()}
        return [out[n] for n in names]


class ClusterCheckpointPolicy(OnnxEvalPolicy):
    """Argmax decisions of a cluster actor (module docstring).

    Built from a file by :func:`load_checkpoint_policy`.
    """

    def __init__(self, actor: ClusterDiffusionActor, *, algo: str, name: str,
                 info: PolicyInfo) -> None:
        torch.set_num_threads(1)
        self.path = Path(name)
        self.name = name
        self.info = info
        self.session = _TorchSession(actor.eval(), algo == "d2sac", 0)
        self.rng = np.random.default_rng(0)
        self.source = None
        self._latents = []

    def reset(self, *, num_envs: int, num_nodes: int, seed: int) -> None:
        """Re-seed the noise (and the D2SAC start) and clear the latent memory."""
        super().reset(num_envs=num_envs, num_nodes=num_nodes, seed=seed)
        self.session.rng = np.random.default_rng(seed + 1)


def load_checkpoint_policy(path: Path) -> ClusterCheckpointPolicy:
    """The evaluation policy of a cluster checkpoint file (raises CheckpointError)."""
    ckpt = load_cluster_checkpoint(path)
    payload = checkpoint.load(path, CLUSTER_FORMAT)
    cfg = ckpt.actor.cfg
    info = PolicyInfo(ckpt.policy_version, cfg.steps, cfg.latent_dim,
                      ckpt.training_scenario, ckpt.training_seed, "")
    return ClusterCheckpointPolicy(ckpt.actor, algo=str(payload.get("algo", "lad-ts")),
                                   name=str(path), info=info)
