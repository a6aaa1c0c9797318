"""An ONNX policy file as an evaluation policy: ``ladts evaluate --policies greedy,policy.onnx``.

The file must satisfy :mod:`ladts_policy.policy_contract` (checked on load by
:func:`load_policy_session`, which the operator's scorer, ``ladts_operator/onnx_policy.py``,
uses too). Each decision goes the way the operator's does: the simulator's
``ClusterSimulator.snapshot`` -> :func:`ladts_policy.features.encode` -> the graph, so a
policy is evaluated on the same feature path it serves through. Differences from serving,
all deliberate:

- Batched: the active environments of a step are one batch (``B`` = active envs, ``N`` = the
  scenario's node slots; absent nodes are zero rows, masked).
- The mask fed to the graph is the feature mask (present, ready, fits) and the simulator's
  (exclusive mode also needs a free GPU slot); the action is the argmax of the probabilities
  over it (evaluation is greedy, as serving is).
- Noise: one generator per evaluation batch, seeded by ``reset(seed=...)``, so a run is
  reproducible; the operator instead seeds per decision (``noise_seed + k``).
- Warm start: the returned latent is kept per environment and task class
  (:func:`steps_bucket`), as the operator keeps it per task class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ladts_policy.contract import ContractError
from ladts_policy.features import ClusterSnapshot, TaskSpec, encode
from ladts_policy.policy_contract import PolicyInfo, validate_policy
from ladts_policy.sim.base import DecisionView

_DTYPES = {"tensor(float)": "float32", "tensor(bool)": "bool"}


class PolicyFileError(ValueError):
    """A policy file cannot be used (unreadable, not ONNX, or off-contract)."""


def steps_bucket(steps: int) -> int:
    """Task-class bucket of a step count (powers of two: 1, 2-3, 4-7, ...)."""
    return max(int(steps), 1).bit_length()


def load_policy_session(path: Path, *, threads: int = 1) -> tuple[Any, PolicyInfo]:
    """Open an ONNX policy with onnxruntime and check it against the serving contract.

    Raises:
        PolicyFileError: ``"<path>: not a loadable ONNX model: ..."`` or
            ``"<path>: off-contract policy: ..."``.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types
        raise PolicyFileError(f"{path}: not a loadable ONNX model: {exc}") from None
    meta = dict(session.get_modelmeta().custom_metadata_map)
    inputs = [(i.name, _DTYPES.get(i.type, i.type), list(i.shape)) for i in session.get_inputs()]
    outputs = [(o.name, _DTYPES.get(o.type, o.type), list(o.shape))
               for o in session.get_outputs()]
    try:
        info = validate_policy(meta, inputs, outputs)
    except ContractError as exc:
        raise PolicyFileError(f"{path}: off-contract policy: {exc}") from None
    return session, info


def check_policy_file(path: Path) -> PolicyInfo:
    """Load and validate a policy file; return what it declares (raises PolicyFileError)."""
    if not path.is_file():
        raise PolicyFileError(f"{path}: no such policy file")
    return load_policy_session(path)[1]


class SnapshotSource(Protocol):
    """What the policy needs of the simulator: one environment's snapshot and task."""

    def snapshot(self, env: int) -> tuple[ClusterSnapshot, TaskSpec]:
        """The cluster state and pending task of environment ``env``."""
        ...


def is_policy_file(name: str) -> bool:
    """Whether an ``--policies`` entry names an ONNX file rather than a heuristic."""
    return name.endswith(".onnx")


class OnnxEvalPolicy:
    """A :class:`~ladts_policy.baselines.SchedulingPolicy` running an ONNX policy file."""

    def __init__(self, path: Path, *, name: str | None = None, threads: int = 1) -> None:
        """Load and validate ``path`` (raises :class:`PolicyFileError`)."""
        if not path.is_file():
            raise PolicyFileError(f"{path}: no such policy file")
        self.path = path
        self.name = name or str(path)
        self.session, self.info = load_policy_session(path, threads=threads)
        self.rng = np.random.default_rng(0)
        self.source: SnapshotSource | None = None
        self._latents: list[dict[tuple[str, int], np.ndarray]] = []

    @property
    def version(self) -> str:
        """The policy's declared version."""
        return self.info.policy_version

    def attach(self, simulator: object) -> None:
        """Take the simulator whose snapshots the next episodes are decided on.

        Raises:
            ValueError: the simulator has no per-environment snapshot (the ``paper`` kind).
        """
        if not callable(getattr(simulator, "snapshot", None)):
            raise ValueError(f"policy {self.name}: ONNX policies need a k8s-edge scenario "
                             "(a simulator with cluster snapshots)")
        self.source = simulator  # type: ignore[assignment]

    def reset(self, *, num_envs: int, num_nodes: int, seed: int) -> None:
        """Re-seed the noise generator and clear the warm-start latents."""
        self.rng = np.random.default_rng(seed)
        self._latents = [{} for _ in range(num_envs)]

    def act(self, view: DecisionView) -> np.ndarray:
        """Argmax of the policy's probabilities over each active environment's mask."""
        if self.source is None:
            raise RuntimeError(f"policy {self.name}: attach(simulator) before act()")
        envs = np.flatnonzero(view.active_E)
        n = view.num_nodes
        lat, k = self.info.latent_dim, self.info.diffusion_steps
        b = len(envs)
        node_BNF, mask_BN, task_BT, glob_BG = [], [], [], []
        start_BNL = np.zeros((b, n, lat), dtype=np.float32)
        keys: list[tuple[str, int]] = []
        for i, e in enumerate(envs):
            snap, task = self.source.snapshot(int(e))
            feats = encode(snap, task, node_slots=n)
            node_BNF.append(feats.node_rows_SF)
            mask_BN.append(feats.node_mask_S & view.node_mask_EN[e])
            task_BT.append(feats.task_T)
            glob_BG.append(feats.global_G)
            key = (task.model, steps_bucket(task.steps))
            keys.append(key)
            memory = self._latents[e].get(key) if e < len(self._latents) else None
            if memory is not None and memory.shape == (n, lat):
                start_BNL[i] = memory
        mask = np.stack(mask_BN)
        feeds = {
            "node_features": np.stack(node_BNF).astype(np.float32),
            "node_mask": mask,
            "task_features": np.stack(task_BT).astype(np.float32),
            "global_features": np.stack(glob_BG).astype(np.float32),
            "latent_start": start_BNL,
            "noise": self.rng.standard_normal((b, k, n, lat), dtype=np.float32),
        }
        probs, latent = self.session.run(["action_probs", "latent"], feeds)
        probs_BN = np.asarray(probs, dtype=float)
        if not np.all(np.isfinite(probs_BN)):
            raise FloatingPointError(f"policy {self.name} returned non-finite probabilities")
        for i, e in enumerate(envs):
            if e < len(self._latents):
                self._latents[e][keys[i]] = np.asarray(latent[i], dtype=np.float32)
        actions_E = np.zeros(view.num_envs, dtype=np.int64)
        # Allowed nodes only; a row whose mask is empty would be inactive in the simulator.
        actions_E[envs] = np.argmax(np.where(mask, probs_BN, -np.inf), axis=1)
        return actions_E
