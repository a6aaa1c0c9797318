"""The ONNX policy scorer: an onnxruntime session, checked on load, reloaded on change.

- Load: the file's metadata and signature must satisfy ``ladts_policy.policy_contract``
  (feature-spec version and hash, input/output names, dtypes, fixed and dynamic dims).
- Hot reload: :meth:`OnnxScorer.maybe_reload` compares the file's resolved path, inode, size
  and mtime with the loaded one, so a mounted ConfigMap's symlink swap (``..data`` pointing
  to a new directory) counts as a change. A file that fails to load or validate keeps the
  running policy; the error is logged, counted and shown in /debug/state.
- Noise: decision ``k`` draws its noise from ``numpy.random.default_rng(noise_seed + k)``
  (:func:`draw_noise`); the seed goes into the decision's trace record, so a decision can
  be replayed exactly.
- Warm start: the latent the policy returns is kept per task class (model, steps bucket) and
  node name and fed back as ``latent_start`` for the next decision of that class (zeros for
  nodes never seen). It is a warm start only; after a restart it starts from zeros.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ladts_operator.scoring import Scored
from ladts_policy.features import ClusterSnapshot, EncodedFeatures, TaskSpec
from ladts_policy.onnx_eval import PolicyFileError, load_policy_session, steps_bucket
from ladts_policy.policy_contract import PolicyInfo

log = logging.getLogger(__name__)

class PolicyLoadError(RuntimeError):
    """A policy file cannot be served (unreadable, not ONNX, or off-contract)."""


@dataclass(frozen=True)
class FileStamp:
    """What identifies one version of the policy file."""

    resolved: str
    """The path after following every symlink (changes on a ConfigMap swap)."""

    inode: int
    """Inode of the resolved file."""

    size: int
    """Size in bytes."""

    mtime_ns: int
    """Modification time, ns."""


def draw_noise(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """float32 ``shape``: the standard normal draws of the decision seeded ``seed``."""
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def stamp(path: Path) -> FileStamp:
    """Identify the current version of ``path`` (raises ``OSError`` if unreadable)."""
    resolved = path.resolve(strict=True)
    st = os.stat(resolved)
    return FileStamp(str(resolved), st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass
class _Loaded:
    session: Any
    info: PolicyInfo
    stamp: FileStamp


def load_session(path: Path, *, threads: int) -> tuple[Any, PolicyInfo]:
    """Open and validate a policy file (``ladts_policy.onnx_eval.load_policy_session``).

    Raises:
        PolicyLoadError: with the reason.
    """
    try:
        return load_policy_session(path, threads=threads)
    except PolicyFileError as exc:
        raise PolicyLoadError(str(exc)) from None


class OnnxScorer:
    """Scores decisions with an ONNX policy (see the module docstring)."""

    name = "onnx"

    def __init__(self, path: Path, *, threads: int = 1, noise_seed: int = 0) -> None:
        """Load ``path`` (raises :class:`PolicyLoadError` when the first load fails)."""
        self.path = path
        self.threads = threads
        self.noise_seed = noise_seed
        self.load_failures = 0
        self.last_error: str | None = None
        self._lock = threading.Lock()
        # Warm-start latents per task class: rows of one array per class, by node slot.
        self._latents: dict[tuple[str, int], np.ndarray] = {}
        self._slot: dict[str, int] = {}
        self._last_names: list[str] | None = None
        self._last_slots = np.zeros(0, dtype=np.int64)
        self._loaded = self._load()

    def _load(self) -> _Loaded:
        try:
            file_stamp = stamp(self.path)
        except OSError as exc:
            raise PolicyLoadError(f"{self.path}: {exc}") from None
        session, info = load_session(Path(file_stamp.resolved), threads=self.threads)
        return _Loaded(session, info, file_stamp)

    @property
    def info(self) -> PolicyInfo:
        """The running policy's declared info."""
        return self._loaded.info

    @property
    def version(self) -> str:
        """The running policy's version."""
        return self._loaded.info.policy_version

    def maybe_reload(self) -> bool:
        """Reload when the file changed; return True if a new policy now runs.

        A broken new file keeps the running policy (counted in ``load_failures``).
        """
        try:
            current = stamp(self.path)
        except OSError as exc:
            return self._failed(f"{self.path}: {exc}", None)
        if current == self._loaded.stamp:
            return False
        try:
            loaded = self._load()
        except PolicyLoadError as exc:
            return self._failed(str(exc), current)
        with self._lock:
            self._loaded = loaded
            self._latents.clear()
        self.last_error = None
        log.info("policy reloaded: %s version %s", loaded.stamp.resolved, self.version)
        return True

    def _slots(self, names: list[str]) -> np.ndarray:
        """int64 [N]: each node's row in the latent arrays (the last list is remembered)."""
        if self._last_names is not None and names == self._last_names:
            return self._last_slots
        slot = self._slot
        for name in names:
            if name not in slot:
                slot[name] = len(slot)
        self._last_names = list(names)
        self._last_slots = np.fromiter((slot[n] for n in names), dtype=np.int64,
                                       count=len(names))
        return self._last_slots

    def _memory(self, key: tuple[str, int], lat: int) -> np.ndarray:
        """The task class's latents [slots, L], grown with zeros for new nodes."""
        memory = self._latents.get(key)
        rows = max(len(self._slot), 1)
        if memory is None or memory.shape[1] != lat:
            memory = np.zeros((rows, lat), dtype=np.float32)
        elif memory.shape[0] < rows:
            memory = np.concatenate(
                [memory, np.zeros((max(rows, 2 * memory.shape[0]) - memory.shape[0], lat),
                                  dtype=np.float32)])
        self._latents[key] = memory
        return memory

    def _failed(self, message: str, current: FileStamp | None) -> bool:
        if message != self.last_error:
            self.load_failures += 1
            log.error("policy reload failed, keeping version %s: %s", self.version, message)
            if current is not None:
                # Do not retry the same broken file on every poll; a new version will differ.
                self._loaded = _Loaded(self._loaded.session, self._loaded.info, current)
        self.last_error = message
        return False

    def score(
        self,
        snapshot: ClusterSnapshot,
        task: TaskSpec,
        features: EncodedFeatures,
        decision: int,
        node_names: list[str] | None = None,
    ) -> Scored:
        """Run the policy on one decision (``N`` = the snapshot's nodes, no padding)."""
        n = snapshot.num_nodes
        loaded = self._loaded
        k, lat = loaded.info.diffusion_steps, loaded.info.latent_dim
        seed = self.noise_seed + decision
        noise = draw_noise(seed, (1, k, n, lat))
        names = node_names or [str(i) for i in range(n)]
        key = (task.model, steps_bucket(task.steps))
        slots_N = self._slots(names)
        memory = self._memory(key, lat)
        latent_start = memory[slots_N][None]
        feeds = {
            "node_features": features.node_rows_SF[None, :n],
            "node_mask": features.node_mask_S[None, :n],
            "task_features": features.task_T[None],
            "global_features": features.global_G[None],
            "latent_start": latent_start,
            "noise": noise,
        }
        probs, latent = loaded.session.run(["action_probs", "latent"], feeds)
        probs_N = np.asarray(probs[0], dtype=float)
        if not np.all(np.isfinite(probs_N)):
            raise FloatingPointError("policy returned non-finite probabilities")
        memory[slots_N] = latent[0]
        mask = features.node_mask_S[:n]
        chosen = int(np.argmax(np.where(mask, probs_N, -np.inf))) if mask.any() else None
        return Scored(probs_N, chosen, self.name, self.version, seed=seed)
