"""KubeSchedulerConfiguration files for the e2e kube-scheduler."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

API_VERSION = "kubescheduler.config.k8s.io/v1"
KIND = "KubeSchedulerConfiguration"
DEFAULT_PROFILES = ("default-scheduler", "ladts-scheduler")


def default_scheduler_config(
    profiles: Sequence[str] = DEFAULT_PROFILES,
    extenders: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Return a configuration with one profile per scheduler name and optional extenders.

    Note that extenders are global to a kube-scheduler process: every profile calls them
    (unless ``managedResources`` narrows which pods they see).
    """
    config: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "profiles": [{"schedulerName": name} for name in profiles],
    }
    if extenders:
        config["extenders"] = [dict(e) for e in extenders]
    return config


def adapt_scheduler_config(
    source: Mapping[str, Any],
    kubeconfig: Path,
    extra_extenders: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Point a configuration (e.g. the chart's) at the test apiserver.

    Only ``clientConnection.kubeconfig`` and ``leaderElection`` are replaced, as kwokctl does;
    ``extra_extenders`` are appended to any extenders already present.
    """
    if source.get("apiVersion") != API_VERSION or source.get("kind") != KIND:
        raise ValueError(
            f"expected {API_VERSION} {KIND}, got {source.get('apiVersion')} {source.get('kind')}"
        )
    config = dict(source)
    connection = dict(config.get("clientConnection") or {})
    connection["kubeconfig"] = str(kubeconfig)
    config["clientConnection"] = connection
    config["leaderElection"] = {"leaderElect": False}
    if extra_extenders:
        config["extenders"] = [*(config.get("extenders") or []), *map(dict, extra_extenders)]
    return config


def load_scheduler_config(path: Path) -> dict[str, Any]:
    """Load a KubeSchedulerConfiguration from a YAML file (first document with that kind)."""
    for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        if isinstance(document, dict) and document.get("kind") == KIND:
            return document
    raise ValueError(f"no {KIND} document in {path}")


def write_scheduler_config(path: Path, config: Mapping[str, Any]) -> Path:
    """Write a configuration as YAML and return its path."""
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
    return path
