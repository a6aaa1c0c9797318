"""Scenario files and presets: load, validate, and build a simulator.

A scenario is a YAML document::

    kind: k8s-edge            # or: paper
    name: my-cluster
    description: free text
    cluster: {...}            # kind k8s-edge: see docs/scenarios.md
    paper: {...}              # kind paper: ladts_policy.sim.dynamics.paper.PaperConfig.from_mapping

``load_scenario("k8s-edge")`` loads the preset shipped as
``ladts_policy/scenarios/k8s-edge.yaml``; any other argument is read as a file path.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ladts_policy.sim.base import VecSimulator
from ladts_policy.sim.config.cluster_config import ClusterConfig
from ladts_policy.sim.config.cluster_schema import BUILTIN_PROFILES, parse_cluster, read_yaml
from ladts_policy.sim.config.errors import ScenarioError
from ladts_policy.sim.config.schema_fields import Fields

KINDS = ("paper", "k8s-edge")
"""Scenario kinds this version understands."""

_PRESET_PACKAGE = "ladts_policy.scenarios"


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: which simulator to build and its configuration."""

    kind: str
    """``paper`` (the DEdgeAI simulator) or ``k8s-edge`` (the Kubernetes edge cluster)."""

    name: str
    """Short name, used in run names and reports."""

    description: str
    """Free text describing the scenario."""

    config: Any
    """``PaperConfig`` for ``paper``, :class:`ClusterConfig` for ``k8s-edge``."""

    def make_simulator(self, num_envs: int, *, reference: bool = False) -> VecSimulator:
        """Build a vectorised simulator stepping ``num_envs`` environments in lockstep.

        ``k8s-edge``: the compiled ``VecClusterSimulator`` where it applies, else (or with
        ``reference``) the reference ``ClusterSimulator``; both give the same episodes.
        """
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if self.kind == "k8s-edge":
            from ladts_policy.sim.dynamics.cluster_vec import make_cluster_simulator

            return make_cluster_simulator(self.config, num_envs=num_envs, reference=reference)
        paper = importlib.import_module("ladts_policy.sim.dynamics.paper")
        simulator: VecSimulator = paper.PaperSimulator(self.config, num_envs=num_envs)
        return simulator

    @property
    def cluster(self) -> ClusterConfig:
        """The cluster configuration; raises ``TypeError`` for other kinds."""
        if not isinstance(self.config, ClusterConfig):
            raise TypeError(f"scenario {self.name!r} is of kind {self.kind!r}, not k8s-edge")
        return self.config


def list_presets() -> list[str]:
    """Names of the scenario presets shipped with the package, sorted."""
    root = resources.files(_PRESET_PACKAGE)
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in root.iterdir()
        if entry.name.endswith(".yaml") and entry.name != BUILTIN_PROFILES
    )


def load_scenario(name_or_path: str) -> Scenario:
    """Load a preset by name, or else a scenario file by path.

    Raises:
        ScenarioError: the file is missing or malformed; the message names the field.
    """
    if name_or_path in list_presets():
        entry = resources.files(_PRESET_PACKAGE).joinpath(f"{name_or_path}.yaml")
        # Presets resolve relative files (e.g. gpu_profiles) next to themselves.
        with resources.as_file(entry) as file:
            return parse_scenario(file.read_text(), origin=name_or_path, base_dir=file.parent)
    path = Path(name_or_path)
    if not path.is_file():
        presets = ", ".join(list_presets())
        raise ScenarioError(
            f"{name_or_path}: neither a preset ({presets}) nor a readable scenario file"
        )
    return parse_scenario(path.read_text(), origin=str(path), base_dir=path.parent)


def parse_scenario(
    text: str, *, origin: str = "<string>", base_dir: Path | None = None
) -> Scenario:
    """Parse scenario YAML text; ``origin`` prefixes error messages."""
    try:
        return scenario_from_mapping(read_yaml(text, origin), base_dir=base_dir)
    except ScenarioError as exc:
        message = str(exc)
        if not message.startswith(origin):
            message = f"{origin}: {message}"
        raise ScenarioError(message) from None


def scenario_from_mapping(data: Any, *, base_dir: Path | None = None) -> Scenario:
    """Validate an already parsed scenario document."""
    doc = Fields(data, "")
    kind = doc.choice("kind", KINDS)
    name = doc.string("name")
    description = doc.string("description", "")
    config: Any
    if kind == "k8s-edge":
        config = parse_cluster(doc.sub("cluster"), base_dir)
    else:
        config = _paper_config(doc.sub("paper", {}))
    doc.done()
    return Scenario(kind=kind, name=name, description=description, config=config)


def _paper_config(f: Fields) -> Any:
    """Dispatch the ``paper`` mapping to the paper simulator's own parser (imported lazily)."""
    paper = importlib.import_module("ladts_policy.sim.dynamics.paper")
    try:
        return paper.PaperConfig.from_mapping(dict(f.raw))
    except ScenarioError as exc:
        message = str(exc)
        if not message.startswith("paper"):
            message = f"paper.{message}"
        raise ScenarioError(message) from None
