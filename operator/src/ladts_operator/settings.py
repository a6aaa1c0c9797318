"""Typed settings of ``ladts serve``, from flags, ``LADTS_*`` environment and a YAML file.

Precedence, highest first: command-line flag, environment variable, settings file
(``--config FILE``, keys are the field names), the default below. Every field becomes the
flag ``--field-name`` and the variable ``LADTS_FIELD_NAME``; ``ladts serve --help`` prints each
field's docstring, read from this file's source so help and code cannot drift.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import os
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ladts_policy import bundled

ENV_PREFIX = "LADTS_"
"""Prefix of the environment variables."""


class SettingsError(ValueError):
    """A setting has a bad value; the message names the setting and its source."""


@dataclass(frozen=True)
class ServeSettings:
    """Everything ``ladts serve`` can be told."""

    kubeconfig: str | None = None
    """Path of a kubeconfig; unset: in-cluster config, else ~/.kube/config (kopf's login)."""

    namespace: str | None = None
    """Watch AIGC pods in this namespace only; unset: all namespaces (cluster-wide RBAC)."""

    host: str = "0.0.0.0"
    """Address the extender HTTP server listens on."""

    port: int = 8888
    """Port of the extender HTTP server (urlPrefix of the scheduler's extender entry)."""

    policy: str | None = "bundled"
    """ONNX policy file (a ConfigMap mount works: it is reloaded when the file or its
    symlink changes); 'bundled' (the default): the LAD-TS policy shipped in the package,
    ladts_policy/bundled/lad-ts.onnx; 'none' (or null): serve the heuristic scorer. A policy
    that does not load (a missing bundled file included) is logged and the heuristic served."""

    heuristic: str = "residency-greedy"
    """Heuristic of ladts_policy.baselines served when no policy is loaded (and named by
    'scorer: heuristic'): residency-greedy (the serving fallback: greedy that credits a cold
    start's warming and charges evictions), greedy, least-queue, spread, ... (ladts evaluate
    --help lists them)."""

    profiles: str | None = None
    """GPU profiles YAML (the format of ladts_policy/scenarios/gpu-profiles.yaml); unset: the
    shipped profiles."""

    prometheus_url: str | None = None
    """Base URL of Prometheus; unset: no metrics, nodes are scored from API state alone."""

    prometheus_token_file: str | None = None
    """File holding a bearer token for Prometheus (e.g. a projected service-account token)."""

    prometheus_ca_file: str | None = None
    """CA bundle to verify Prometheus' TLS certificate; unset: the system's."""

    prometheus_timeout_s: float = 5.0
    """Timeout of one Prometheus query, seconds."""

    prometheus_interval_s: float = 15.0
    """Seconds between two polls of Prometheus (its default scrape interval)."""

    metrics_ttl_s: float = 120.0
    """A node's last good metric is used for this long (s); after that the node is scored
    from API state alone and the fallback is counted."""

    require_fresh_metrics: bool = False
    """Filter out nodes whose metrics are older than metrics_ttl_s ('stale metrics') instead
    of scoring them from API state; only sensible with a reliable Prometheus."""

    residency_query: str | None = None
    """PromQL instant query for the models each node's model server has loaded: one series
    per (node, model), value > 0 when loaded, the model named by label residency_model_label,
    series mapped to nodes like the other metrics (Hostname/hostname, node, instance); e.g.
    'ladts_model_loaded'. A fresh answer (within metrics_ttl_s) replaces the resident set
    learned from completions and the node annotation. Unset: no residency from Prometheus."""

    residency_model_label: str = "model"
    """Label of residency_query's series that holds the model name."""

    policy_threads: int = 1
    """onnxruntime intra-op threads (1 keeps latency steady beside kube-scheduler)."""

    policy_poll_s: float = 2.0
    """How often the policy file is checked for a change, seconds."""

    noise_seed: int = 0
    """Base seed of the per-decision policy noise; decision k uses noise_seed + k, recorded
    in the trace so a decision can be replayed."""

    trace_path: str | None = None
    """JSONL trace of decisions and completions (what 'ladts train --from-traces' reads);
    unset: no trace."""

    trace_max_bytes: int = 64 * 1024 * 1024
    """Size at which the trace file is rotated, bytes."""

    trace_backups: int = 3
    """Rotated trace files kept (trace.1 ... trace.N)."""

    debug_decisions: int = 50
    """Decisions kept for GET /debug/state."""

    max_body_bytes: int = 1024 * 1024
    """Largest request body accepted, bytes (HAMi uses 1 MiB); larger gets 413."""

    overrun_grace_s: float = 1.0
    """A pod still running past its predicted finish is assumed to finish this long after
    now (ladts_policy/node_replay.py)."""

    completed_retention_s: float = 600.0
    """Finished pods are remembered this long (s) to learn residency and service times."""

    gc_freeze_s: float = 300.0
    """Once the state has synced, and then every this many seconds, collect garbage and
    freeze what survives out of the collector's automatic passes (gc.freeze), so those
    passes scan only what came after and stay short; every 12th time the frozen objects are
    collected too (ladts_operator/gc_policy.py); 0: freeze once after the sync only."""

    offline: str | None = None
    """Serve over a simulated cluster of this scenario (preset name or file) instead of a
    real one: no kubeconfig, no Prometheus."""

    offline_seed: int = 0
    """Seed of the offline cluster's pre-loaded queues."""

    write_decision: bool = True
    """On bind, write the annotation ladts.io/decision and an Event on the pod."""

    log_level: str = "INFO"
    """Python logging level."""

    def __post_init__(self) -> None:
        positive = (
            "prometheus_timeout_s", "prometheus_interval_s", "metrics_ttl_s", "policy_poll_s",
            "trace_max_bytes", "max_body_bytes", "policy_threads", "debug_decisions",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not 0 < self.port < 65536:
            raise SettingsError(f"port must be in 1..65535, got {self.port}")
        if self.gc_freeze_s < 0:
            raise SettingsError(f"gc_freeze_s must be >= 0, got {self.gc_freeze_s!r}")
        if self.trace_backups < 0 or self.overrun_grace_s < 0:
            raise SettingsError("trace_backups and overrun_grace_s must be >= 0")

    @property
    def policy_path(self) -> Path | None:
        """The policy file, None when no policy is configured.

        'bundled' is the package's file whether or not it exists (a missing one fails to
        load like any other policy file, so the heuristic is served and the error shown).
        """
        if self.policy is None or self.policy.strip().lower() in ("", "none"):
            return None
        if self.uses_bundled_policy:
            return bundled.bundled_policy_file()
        return Path(self.policy)

    @property
    def uses_bundled_policy(self) -> bool:
        """Whether the policy setting selects the bundled policy."""
        return self.policy is not None and bundled.is_bundled_name(self.policy)


@cache
def field_docs() -> dict[str, str]:
    """The docstring under each field of :class:`ServeSettings`, from this module's source."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(ServeSettings)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for stmt, nxt in itertools.pairwise(body):
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs


def _kind(f: dataclasses.Field[Any]) -> str:
    """``bool``, ``int``, ``float`` or ``str`` for a field's annotation."""
    text = str(f.type)
    for kind in ("bool", "int", "float"):
        if text.startswith(kind):
            return kind
    return "str"


def _convert(name: str, kind: str, raw: Any, origin: str) -> Any:
    if raw is None:
        return None
    try:
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind == "int":
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(raw)
        if kind == "float":
            if isinstance(raw, bool):
                raise ValueError(raw)
            return float(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{origin}: {name} must be {kind}, got {raw!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--config`` and one flag per setting (default None: unset on the command line)."""
    parser.add_argument(
        "--config", metavar="FILE",
        help="YAML settings file (keys: the setting names with underscores); env: LADTS_CONFIG",
    )
    docs = field_docs()
    for f in fields(ServeSettings):
        flag = "--" + f.name.replace("_", "-")
        env = ENV_PREFIX + f.name.upper()
        help_text = f"{docs[f.name]} [env {env}; default {f.default!r}]"
        kind = _kind(f)
        if kind == "bool":
            parser.add_argument(flag, dest=f.name, default=None,
                                action=argparse.BooleanOptionalAction, help=help_text)
        else:
            parser.add_argument(flag, dest=f.name, default=None, metavar=kind.upper(),
                                help=help_text)


def load_settings(
    args: argparse.Namespace | None = None, env: Mapping[str, str] | None = None
) -> ServeSettings:
    """Merge file, environment and flags over the defaults (see the module docstring).

    Raises:
        SettingsError: a bad value, an unknown key in the file, or an unreadable file.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    config_file = getattr(args, "config", None) or env.get(ENV_PREFIX + "CONFIG")
    kinds = {f.name: _kind(f) for f in fields(ServeSettings)}
    if config_file:
        try:
            data = yaml.safe_load(Path(config_file).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise SettingsError(f"settings file {config_file}: {exc}") from None
        if not isinstance(data, dict):
            raise SettingsError(f"settings file {config_file}: expected a mapping")
        unknown = sorted(set(data) - set(kinds))
        if unknown:
            raise SettingsError(f"settings file {config_file}: unknown settings {unknown}")
        for name, raw in data.items():
            values[name] = _convert(name, kinds[name], raw, f"settings file {config_file}")
    for name, kind in kinds.items():
        var = ENV_PREFIX + name.upper()
        if var in env:
            values[name] = _convert(name, kind, env[var], f"environment {var}")
    if args is not None:
        for name, kind in kinds.items():
            raw = getattr(args, name, None)
            if raw is not None:
                values[name] = _convert(name, kind, raw, f"--{name.replace('_', '-')}")
    return ServeSettings(**values)
