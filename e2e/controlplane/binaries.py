"""Locate the control-plane binaries built by ``e2e/controlplane/build.sh``."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

VERSIONS_FILE = Path(__file__).with_name("versions.env")
BUILD_SCRIPT = Path(__file__).with_name("build.sh")

#: component name -> (versions.env key, binaries the component ships)
COMPONENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "kubernetes": ("LADTS_K8S_VERSION", ("kube-apiserver", "kube-scheduler")),
    "kine": ("LADTS_KINE_VERSION", ("kine",)),
    "kwok": ("LADTS_KWOK_VERSION", ("kwok", "stages-fast.yaml")),
    "helm": ("LADTS_HELM_VERSION", ("helm",)),
    "prometheus": ("LADTS_PROMETHEUS_DEB_VERSION", ("prometheus", "promtool")),
}


def cache_dir() -> Path:
    """Return the binary cache folder (``$LADTS_E2E_CACHE`` or ``~/.cache/ladts-e2e``)."""
    configured = os.environ.get("LADTS_E2E_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "ladts-e2e"


def pinned_versions() -> dict[str, str]:
    """Read ``versions.env``; environment variables of the same name take precedence."""
    versions: dict[str, str] = {}
    for raw in VERSIONS_FILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        versions[key] = os.environ.get(key, value)
    return versions


def _component_dir(component: str, version: str, cache: Path) -> Path | None:
    """Return the cache folder of one component, or None when it does not exist.

    Prometheus comes from Debian, whose security updates replace the pinned package version;
    when the pinned folder is missing the newest ``prometheus-*`` folder is used.
    """
    exact = cache / f"{component}-{version}"
    if exact.is_dir():
        return exact
    if component == "prometheus":
        candidates = sorted(p for p in cache.glob("prometheus-*") if ".tmp." not in p.name)
        if candidates:
            return candidates[-1]
    return None


@dataclass(frozen=True)
class Binaries:
    """Paths of the available binaries, plus what is missing and why."""

    paths: dict[str, Path] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    cache: Path = field(default_factory=cache_dir)

    def get(self, name: str) -> Path:
        """Return the path of one binary (``kube-apiserver``, ``kine``, ...); KeyError if absent."""
        return self.paths[name]

    def missing_of(self, names: tuple[str, ...]) -> list[str]:
        """Return the subset of ``names`` that is not available."""
        return [n for n in names if n not in self.paths]


def find_binaries() -> Binaries:
    """Resolve every component's files in the cache (no building, no network)."""
    cache = cache_dir()
    versions = pinned_versions()
    paths: dict[str, Path] = {}
    missing: dict[str, str] = {}
    for component, (key, files) in COMPONENTS.items():
        version = versions.get(key, "")
        folder = _component_dir(component, version, cache)
        for name in files:
            candidate = folder / name if folder else None
            if candidate is not None and candidate.exists():
                paths[name] = candidate
            elif component == "prometheus" and shutil.which(name):
                paths[name] = Path(str(shutil.which(name)))
            else:
                missing[name] = f"{component}-{version} not found in {cache}"
    return Binaries(paths=paths, missing=missing, cache=cache)
