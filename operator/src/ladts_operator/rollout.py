"""``ladts rollout`` / ``ladts rollback``: gate a new ONNX policy, then swap it into the ConfigMap.

The policy ConfigMap (the chart's ``serve.policy.configMapName``) holds the running policy
under ``binaryData[key]`` (``policy.onnx``). A rollout:

1. checks the candidate against the serving contract
   (``ladts_policy.onnx_eval.check_policy_file`` -> ``policy_contract.validate_policy``);
2. evaluates it against the running policy (the ConfigMap's, or the heuristic ``baseline``
   when the ConfigMap has none yet) with ``ladts_policy.evaluate`` on a scenario (a calibrated
   file from ``ladts calibrate`` or a preset), on held-out seeds, both policies on the same
   episodes; the figure is the mean over episodes of the paired ratio
   ``candidate delay / running delay`` with a Student-t 95% interval;
3. refuses the candidate when that mean ratio exceeds ``1 + tolerance`` (unless forced);
4. writes the candidate under ``key`` and the running policy under :func:`previous_key`, with
   annotations naming both versions, in one update guarded by the object's resourceVersion
   (a concurrent change fails instead of being overwritten).

A rollback swaps ``key`` and the previous key back (a second rollback rolls forward again).
The extender reloads the file when the kubelet has updated the mounted ConfigMap
(``ladts_operator/onnx_policy.py``; docs/deploy.md gives the times).
"""

from __future__ import annotations

import base64
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ladts_policy.onnx_eval import PolicyFileError, check_policy_file

ANNOTATION_VERSION = "ladts.io/policy-version"
ANNOTATION_PREVIOUS = "ladts.io/previous-policy-version"
ANNOTATION_UPDATED = "ladts.io/policy-updated"
ANNOTATION_GATE = "ladts.io/policy-gate"

CONFIGMAP_LIMIT_BYTES = 1024 * 1024
"""The apiserver's size limit of one ConfigMap (both policy versions must fit)."""


class RolloutError(RuntimeError):
    """A rollout or rollback cannot proceed (the message says why and what to do)."""


@dataclass(frozen=True)
class PolicyRef:
    """Where the running policy lives."""

    namespace: str
    """Namespace of the ConfigMap (the chart's release namespace)."""

    name: str
    """ConfigMap name (the chart's ``serve.policy.configMapName``)."""

    key: str = "policy.onnx"
    """Key of the running policy (the chart's ``serve.policy.key``)."""

    @property
    def previous_key(self) -> str:
        """Key the previous version is kept under."""
        return f"{self.key}.previous"

    def __str__(self) -> str:
        return f"ConfigMap {self.namespace}/{self.name}"


@dataclass(frozen=True)
class GateResult:
    """The comparison of a candidate with the running policy."""

    running: str
    """What runs now: a policy version, or the heuristic's name."""

    candidate: str
    """The candidate's policy version."""

    scenario: str
    """Scenario evaluated on."""

    seeds: list[int]
    """Held-out seeds."""

    running_mean_s: float
    """Running policy's mean service delay over episodes, s."""

    candidate_mean_s: float
    """Candidate's mean service delay over episodes, s."""

    ratio_mean: float
    """Mean over episodes of candidate / running per-episode mean delay."""

    ratio_ci95: tuple[float, float]
    """Student-t 95% interval of that mean (NaN with one episode)."""

    episodes: int
    """Paired episodes."""

    tolerance: float
    """Accepted when ``ratio_mean <= 1 + tolerance``."""

    @property
    def accepted(self) -> bool:
        """Whether the candidate is no worse than the running policy (within tolerance)."""
        return self.ratio_mean <= 1.0 + self.tolerance

    def summary(self) -> str:
        """The figures, one paragraph."""
        lo, hi = self.ratio_ci95
        verdict = "accepted" if self.accepted else "REFUSED (worse than the running policy)"
        return (f"scenario {self.scenario}, held-out seeds {self.seeds[0]}..{self.seeds[-1]}, "
                f"{self.episodes} paired episodes\n"
                f"  running   {self.running:<28} mean delay {self.running_mean_s:.3f} s\n"
                f"  candidate {self.candidate:<28} mean delay {self.candidate_mean_s:.3f} s\n"
                f"  paired ratio candidate/running {self.ratio_mean:.4f} "
                f"(95% CI [{lo:.4f}, {hi:.4f}]), tolerance {1 + self.tolerance:.3f}: {verdict}")

    def annotation(self) -> str:
        """The gate's figures as a one-line annotation value."""
        return (f"ratio={self.ratio_mean:.4f} ci95=[{self.ratio_ci95[0]:.4f},"
                f"{self.ratio_ci95[1]:.4f}] vs={self.running} scenario={self.scenario} "
                f"seeds={self.seeds[0]}..{self.seeds[-1]}")


def paired_ratio(candidate_K: Sequence[float], running_K: Sequence[float]
                 ) -> tuple[float, tuple[float, float]]:
    """Candidate/running ratio of paired per-episode means and its 95% interval.

    The one estimator of ``ladts evaluate`` (``ladts_policy.evaluate.paired_ratio``), so the
    gate and the evaluation report the same figure; NaN bounds with a single episode.
    """
    import numpy as np

    from ladts_policy.evaluate import paired_ratio as ratio_of_means

    if len(candidate_K) != len(running_K) or not candidate_K:
        raise RolloutError(f"episodes do not pair: {len(candidate_K)} vs {len(running_K)}")
    ratio, ci = ratio_of_means(np.asarray(candidate_K, dtype=float),
                               np.asarray(running_K, dtype=float))
    return ratio, ci if ci is not None else (math.nan, math.nan)


GATE_POLICY_SEED = 20_260_000
"""Seed of the policies' own randomness in the gate, the same for both (paired comparison)."""


def evaluate_gate(candidate: Path, running: bytes | None, *, scenario: str,
                  seeds: Sequence[int], episodes: int = 1, tolerance: float = 0.02,
                  baseline: str = "residency-greedy", show_progress: bool = False
                  ) -> GateResult:
    """Evaluate ``candidate`` against the running policy bytes (or ``baseline``)."""
    from ladts_policy.evaluate import evaluate

    cand_info = check_policy_file(candidate)
    with tempfile.TemporaryDirectory(prefix="ladts-rollout-") as tmp:
        if running is not None:
            running_path = Path(tmp) / "running.onnx"
            running_path.write_bytes(running)
            try:
                running_label = check_policy_file(running_path).policy_version
            except PolicyFileError as exc:
                raise RolloutError(f"the running policy does not load ({exc}); roll out with "
                                   "--force to replace it without comparison") from None
            running_name = str(running_path)
        else:
            running_name = running_label = baseline
        # Common random numbers: both draw the same policy noise, so the ratio measures the
        # policies (and not where the running bytes were written to).
        report = evaluate(scenario, policies=[running_name, str(candidate)], seeds=seeds,
                          episodes=episodes, show_progress=show_progress,
                          common_policy_seed=GATE_POLICY_SEED)
    run_res, cand_res = report.policies[running_name], report.policies[str(candidate)]
    ratio, ci = paired_ratio(cand_res.episode_means_s, run_res.episode_means_s)
    return GateResult(
        running=running_label, candidate=cand_info.policy_version, scenario=scenario,
        seeds=[int(s) for s in seeds], running_mean_s=run_res.mean_delay_s,
        candidate_mean_s=cand_res.mean_delay_s, ratio_mean=ratio, ratio_ci95=ci,
        episodes=len(cand_res.episode_means_s), tolerance=tolerance)


# --- the ConfigMap -------------------------------------------------------------------------


def _api_error(exc: Any, ref: PolicyRef, verb: str) -> RolloutError:
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", "") or ""
    if status == 404:
        return RolloutError(
            f"{ref} not found. Create it (kubectl -n {ref.namespace} create configmap "
            f"{ref.name} --from-file={ref.key}=policy.onnx) and point the chart at it "
            f"(serve.policy.configMapName={ref.name}), or pass --namespace/--configmap")
    if status in (401, 403):
        return RolloutError(
            f"forbidden to {verb} {ref} ({status} {reason}): the identity of your kubeconfig "
            f"needs get and update on configmaps in namespace {ref.namespace} "
            "(the chart's own ServiceAccounts have no such right, on purpose)")
    if status == 409:
        return RolloutError(f"{ref} changed while this command ran (409 Conflict): run it again")
    if status == 422 or status == 413:
        return RolloutError(f"the apiserver rejected the update of {ref} ({status} {reason}): "
                            "both policy versions must fit in one ConfigMap (1 MiB)")
    return RolloutError(f"cannot {verb} {ref}: {status} {reason}")


def read_configmap(core_v1: Any, ref: PolicyRef) -> Any:
    """The ConfigMap object (raises RolloutError on 404/403/...)."""
    from kubernetes.client.exceptions import ApiException

    try:
        return core_v1.read_namespaced_config_map(ref.name, ref.namespace)
    except ApiException as exc:
        raise _api_error(exc, ref, "get") from None


def stored_policy(cm: Any, key: str) -> bytes | None:
    """The bytes of ``key`` in ``binaryData`` (or ``data``), None when absent."""
    binary = cm.binary_data or {}
    if key in binary:
        return base64.b64decode(binary[key])
    data = cm.data or {}
    if key in data:
        return str(data[key]).encode()
    return None


def _replace(core_v1: Any, ref: PolicyRef, cm: Any, current: bytes, previous: bytes | None,
             annotations: dict[str, str]) -> Any:
    from kubernetes.client.exceptions import ApiException

    size = len(current) + len(previous or b"")
    if size > CONFIGMAP_LIMIT_BYTES - 16 * 1024:
        raise RolloutError(f"the two policy versions take {size} bytes; a ConfigMap holds at "
                           "most 1 MiB (keep policies under ~500 KB each)")
    binary = dict(cm.binary_data or {})
    data = dict(cm.data or {})
    data.pop(ref.key, None)
    data.pop(ref.previous_key, None)
    binary[ref.key] = base64.b64encode(current).decode()
    if previous is None:
        binary.pop(ref.previous_key, None)
    else:
        binary[ref.previous_key] = base64.b64encode(previous).decode()
    cm.binary_data = binary
    cm.data = data or None
    meta = cm.metadata
    meta.annotations = {**(meta.annotations or {}), **annotations}
    try:
        # The read's resourceVersion rides along: a concurrent change gets 409, not lost.
        return core_v1.replace_namespaced_config_map(ref.name, ref.namespace, cm)
    except ApiException as exc:
        raise _api_error(exc, ref, "update") from None


def _version_of(blob: bytes | None) -> str:
    if blob is None:
        return "none"
    with tempfile.TemporaryDirectory(prefix="ladts-rollout-") as tmp:
        path = Path(tmp) / "p.onnx"
        path.write_bytes(blob)
        try:
            return check_policy_file(path).policy_version
        except PolicyFileError:
            return "unloadable"


def write_rollout(core_v1: Any, ref: PolicyRef, cm: Any, candidate: bytes, running: bytes | None,
                  gate: GateResult | None) -> Any:
    """Put ``candidate`` under the key and ``running`` under the previous key."""
    annotations = {
        ANNOTATION_VERSION: _version_of(candidate),
        ANNOTATION_PREVIOUS: _version_of(running),
        ANNOTATION_UPDATED: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        ANNOTATION_GATE: gate.annotation() if gate is not None else "skipped (--force)",
    }
    return _replace(core_v1, ref, cm, candidate, running, annotations)


def rollback(core_v1: Any, ref: PolicyRef) -> tuple[str, str]:
    """Swap the running and previous versions; return (restored, replaced) versions.

    Raises:
        RolloutError: no ConfigMap, no previous version, or the update was refused.
    """
    cm = read_configmap(core_v1, ref)
    previous = stored_policy(cm, ref.previous_key)
    if previous is None:
        raise RolloutError(f"{ref} has no previous version (key {ref.previous_key}): "
                           "nothing to roll back to")
    current = stored_policy(cm, ref.key)
    restored, replaced = _version_of(previous), _version_of(current)
    annotations = {
        ANNOTATION_VERSION: restored,
        ANNOTATION_PREVIOUS: replaced,
        ANNOTATION_UPDATED: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        ANNOTATION_GATE: "rollback",
    }
    _replace(core_v1, ref, cm, previous, current, annotations)
    return restored, replaced
