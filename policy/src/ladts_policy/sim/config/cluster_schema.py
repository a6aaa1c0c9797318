"""Parse and validate the ``cluster:`` section of a ``k8s-edge`` scenario and GPU-profile files.

Every error is a :class:`~ladts_policy.sim.config.errors.ScenarioError` naming the field path, e.g.
``cluster.nodes[2].profile: unknown GPU profile 'foo'; known: a10, agx-orin-64, ...``.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ladts_policy.sim.config.cluster_config import (
    ArrivalSpec,
    ChurnSpec,
    ClusterConfig,
    DriftSpec,
    GpuProfile,
    ModelSpec,
    ModelTiming,
    NodeGroup,
    ResidencySpec,
    UncertaintySpec,
)
from ladts_policy.sim.config.errors import ScenarioError
from ladts_policy.sim.config.schema_fields import Fields

BUILTIN_PROFILES = "gpu-profiles.yaml"
"""File name of the shipped GPU profiles inside ``ladts_policy/scenarios``."""


def read_yaml(text: str, origin: str) -> Any:
    """Parse YAML text, turning syntax errors into :class:`ScenarioError`."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{origin}: not valid YAML: {exc}") from exc


def builtin_gpu_profiles() -> dict[str, GpuProfile]:
    """Load the GPU profiles shipped with the package (``scenarios/gpu-profiles.yaml``)."""
    text = resources.files("ladts_policy.scenarios").joinpath(BUILTIN_PROFILES).read_text()
    return parse_profiles_document(read_yaml(text, BUILTIN_PROFILES), BUILTIN_PROFILES)


def parse_profiles_document(data: Any, origin: str) -> dict[str, GpuProfile]:
    """Parse a GPU-profile file: a mapping with one key ``profiles`` (a list)."""
    doc = Fields(data, "")
    items = doc.items("profiles")
    doc.done()
    return _profiles_from_items(items, prefix=f"{origin}: ")


def _profiles_from_items(items: list[tuple[str, Any]], prefix: str = "") -> dict[str, GpuProfile]:
    out: dict[str, GpuProfile] = {}
    for path, item in items:
        try:
            profile = parse_profile(Fields(item, path))
        except ScenarioError as exc:
            raise ScenarioError(f"{prefix}{exc}") from None
        if profile.name in out:
            raise ScenarioError(f"{prefix}{path}.name: duplicate GPU profile {profile.name!r}")
        out[profile.name] = profile
    return out


def parse_profile(f: Fields) -> GpuProfile:
    """Parse one GPU profile mapping."""
    name = f.string("name")
    label = f.string("product_label")
    vram = f.number("vram_gib", strict=True)
    description = f.string("description", "")
    share_slowdown = f.number("share_slowdown", 1.0)
    models = f.sub("models")
    timings = {}
    for key in list(models.raw):
        tf = models.sub(str(key))
        timings[str(key)] = ModelTiming(
            s_per_step=tf.number("s_per_step", strict=True),
            overhead_s=tf.number("overhead_s"),
            memory_gib=tf.number("memory_gib", strict=True),
            load_s=tf.number("load_s"),
        )
        tf.done()
    models.done()
    f.done()
    return GpuProfile(
        name=name, product_label=label, vram_gib=vram, timings=timings, description=description,
        share_slowdown=share_slowdown,
    )


def parse_cluster(f: Fields, base_dir: Path | None) -> ClusterConfig:
    """Parse the ``cluster`` mapping; ``base_dir`` resolves a relative ``gpu_profiles`` file."""
    profiles = _parse_profile_section(f, base_dir)
    models = tuple(_parse_model(Fields(item, p)) for p, item in f.items("models"))
    if not models:
        raise ScenarioError(f"{f.path}.models: needs at least one model")
    _check_unique([m.name for m in models], f"{f.path}.models", "model")
    groups = tuple(_parse_group(Fields(item, p), profiles, models) for p, item in f.items("nodes"))
    if not groups:
        raise ScenarioError(f"{f.path}.nodes: needs at least one node group")
    _check_unique([g.name_prefix for g in groups], f"{f.path}.nodes", "name_prefix")
    config = ClusterConfig(
        horizon_s=f.number("horizon_s", strict=True),
        arrivals=_parse_arrivals(f.sub("arrivals")),
        models=models,
        gpu_profiles=profiles,
        nodes=groups,
        churn=_parse_churn(f.sub("churn", {})),
        exclusive=f.boolean("exclusive", False),
        uncertainty=_parse_uncertainty(f.sub("uncertainty", {})),
        residency=_parse_residency(f.sub("residency", {})),
        drift=_parse_drift(f.sub("drift", {})),
    )
    f.done()
    _check_models_servable(config, f.path)
    if config.drift.model and config.drift.model not in config.model_names:
        raise ScenarioError(
            f"{f.path}.drift.model: {config.drift.model!r} is not a model of the mix")
    return config


def _parse_profile_section(f: Fields, base_dir: Path | None) -> dict[str, GpuProfile]:
    profiles = builtin_gpu_profiles()
    if not f.has("gpu_profiles"):
        f.raw_value("gpu_profiles", None)
        return profiles
    value = f.raw_value("gpu_profiles")
    path = f"{f.path}.gpu_profiles"
    if isinstance(value, str):
        file = Path(value) if base_dir is None else base_dir / value
        try:
            text = file.read_text()
        except OSError as exc:
            raise ScenarioError(f"{path}: cannot read {file}: {exc.strerror}") from None
        profiles.update(parse_profiles_document(read_yaml(text, str(file)), str(file)))
    elif isinstance(value, list):
        profiles.update(_profiles_from_items(f.items("gpu_profiles")))
    else:
        raise ScenarioError(f"{path}: expected a file name or a list of profiles")
    return profiles


def _parse_model(f: Fields) -> ModelSpec:
    spec = ModelSpec(
        name=f.string("name"),
        weight=f.number("weight", strict=True),
        steps=f.integer_range("steps", minimum=1),
        input_mbit=f.number_range("input_mbit", [0.0, 0.0]),
        cpu=f.number("cpu", 1.0),
        memory_gib=f.number("memory_gib", 4.0),
    )
    f.done()
    return spec


def _parse_group(
    f: Fields, profiles: Mapping[str, GpuProfile], models: tuple[ModelSpec, ...]
) -> NodeGroup:
    profile = f.string("profile")
    if profile not in profiles:
        known = ", ".join(sorted(profiles))
        raise ScenarioError(f"{f.path}.profile: unknown GPU profile {profile!r}; known: {known}")
    group = NodeGroup(
        profile=profile,
        count=f.integer("count", minimum=1),
        name_prefix=f.string("name_prefix", profile),
        concurrency=f.integer("concurrency", 1, minimum=1),
        resident=f.strings("resident", []),
        cpu=f.number("cpu", 8.0, strict=True),
        memory_gib=f.number("memory_gib", 32.0, strict=True),
    )
    f.done()
    gpu = profiles[profile]
    names = {m.name for m in models}
    total = 0.0
    for i, model in enumerate(group.resident):
        if model not in names:
            raise ScenarioError(f"{f.path}.resident[{i}]: {model!r} is not a model of the mix")
        if not gpu.can_run(model):
            raise ScenarioError(f"{f.path}.resident[{i}]: {model!r} cannot run on {profile!r}")
        total += gpu.timings[model].memory_gib
    if total > gpu.vram_gib:
        raise ScenarioError(
            f"{f.path}.resident: {total:g} GiB of models exceed {gpu.vram_gib:g} GiB of {profile}"
        )
    return group


def _parse_arrivals(f: Fields) -> ArrivalSpec:
    spec = ArrivalSpec(
        process=f.choice("process", ("poisson", "bursty"), "poisson"),
        rate_per_s=f.number("rate_per_s", strict=True),
        burst_multiplier=f.number("burst_multiplier", 5.0, minimum=1.0),
        burst_time_fraction=f.number("burst_time_fraction", 0.2, strict=True),
        mean_burst_s=f.number("mean_burst_s", 120.0, strict=True),
    )
    if spec.burst_time_fraction >= 1.0:
        raise ScenarioError(f"{f.path}.burst_time_fraction: must be below 1")
    f.done()
    return spec


def _parse_churn(f: Fields) -> ChurnSpec:
    spec = ChurnSpec(
        enabled=f.boolean("enabled", False),
        mean_up_s=f.number("mean_up_s", 3600.0, strict=True),
        mean_down_s=f.number("mean_down_s", 600.0, strict=True),
        max_down_fraction=f.number("max_down_fraction", 0.25),
    )
    if spec.max_down_fraction > 1.0:
        raise ScenarioError(f"{f.path}.max_down_fraction: must be at most 1")
    f.done()
    return spec


def _parse_uncertainty(f: Fields) -> UncertaintySpec:
    default = UncertaintySpec()
    spec = UncertaintySpec(
        node_speed_sigma=f.number("node_speed_sigma", default.node_speed_sigma),
        request_noise_sigma=f.number("request_noise_sigma", default.request_noise_sigma),
        scrape_interval_s=f.number("scrape_interval_s", default.scrape_interval_s),
    )
    f.done()
    return spec


def _parse_residency(f: Fields) -> ResidencySpec:
    spec = ResidencySpec(
        mode=f.choice("mode", ("fixed", "random"), "fixed"),
        max_models=f.integer("max_models", 2),
    )
    f.done()
    return spec


def _parse_drift(f: Fields) -> DriftSpec:
    default = DriftSpec()
    start = f.number_range("start_fraction", list(default.start_fraction))
    spec = DriftSpec(
        enabled=f.boolean("enabled", False),
        model=f.string("model", ""),
        initial_share=f.number("initial_share", default.initial_share),
        start_fraction=(float(start[0]), float(start[1])),
        ramp_s=f.number("ramp_s", default.ramp_s),
    )
    if spec.start_fraction[1] > 1.0:
        raise ScenarioError(f"{f.path}.start_fraction: must lie in [0, 1]")
    f.done()
    return spec


def _check_unique(names: list[str], path: str, what: str) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ScenarioError(f"{path}[{i}]: duplicate {what} {name!r}")
        seen.add(name)


def _check_models_servable(config: ClusterConfig, path: str) -> None:
    for i, model in enumerate(config.models):
        if not any(config.gpu_profiles[g.profile].can_run(model.name) for g in config.nodes):
            raise ScenarioError(
                f"{path}.models[{i}]: no node group can run {model.name!r} "
                "(no timings in its GPU profile, or it does not fit the usable memory)"
            )
