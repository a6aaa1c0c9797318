"""The cluster actor's checkpoint file and its ONNX export (the serving contract).

A cluster checkpoint is a :mod:`ladts_policy.train.checkpoint` file of format
:data:`CLUSTER_FORMAT`: the :class:`ClusterActorConfig`, the actor's ``state_dict`` (the
feature normalisation buffers included) and what the export writes into the metadata (policy
version, training scenario and seed). :func:`export_onnx` traces the whole inference path
(normalisation, the unrolled chain, the masked softmax) into one ONNX graph with dynamic
batch and node axes and the metadata of :func:`ladts_policy.policy_contract.make_metadata`,
then checks it with ``onnx.checker`` and :func:`ladts_policy.policy_contract.validate_policy`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ladts_policy.policy_contract import INPUTS, OUTPUTS, PolicyInfo, make_metadata
from ladts_policy.train.checkpoint import CheckpointError, load, save
from ladts_policy.train.cluster_networks import ClusterActorConfig, ClusterDiffusionActor

CLUSTER_FORMAT = "ladts-cluster-actor"
"""``format`` of a cluster actor checkpoint."""

OPSET = 17
"""ONNX opset of the export (what onnxruntime >= 1.17 runs; LayerNorm-free graph)."""


@dataclass(frozen=True)
class ClusterCheckpoint:
    """A cluster actor and what its export declares."""

    actor: ClusterDiffusionActor
    """The actor, in eval mode."""

    policy_version: str
    """``ladts.policy_version`` of the export."""

    training_scenario: str
    """``ladts.training_scenario`` of the export."""

    training_seed: int
    """``ladts.training_seed`` of the export."""

    training_recipe: str = ""
    """``ladts.training_recipe`` of the export: the ``ladts train`` command and training
    distribution version (``cluster_trainer.training_recipe``); empty (key left out) for a
    checkpoint that does not record it."""


def save_cluster_checkpoint(path: Path, ckpt: ClusterCheckpoint) -> None:
    """Write ``ckpt`` atomically to ``path``."""
    save(path, {
        "format": CLUSTER_FORMAT,
        "config": ckpt.actor.cfg.to_dict(),
        "actor": ckpt.actor.state_dict(),
        "policy_version": ckpt.policy_version,
        "training_scenario": ckpt.training_scenario,
        "training_seed": ckpt.training_seed,
        "training_recipe": ckpt.training_recipe,
    })


def load_cluster_checkpoint(path: Path) -> ClusterCheckpoint:
    """Read a cluster checkpoint.

    Raises:
        CheckpointError: missing, corrupt, of another kind, or weights that do not fit the
            saved config.
    """
    payload = load(path, CLUSTER_FORMAT)
    try:
        known = {f.name for f in dataclasses.fields(ClusterActorConfig)}
        cfg = ClusterActorConfig(**{k: v for k, v in payload["config"].items() if k in known})
        actor = ClusterDiffusionActor(cfg)
        actor.load_state_dict(payload["actor"])
        return ClusterCheckpoint(actor.eval(), str(payload["policy_version"]),
                                 str(payload["training_scenario"]),
                                 int(payload["training_seed"]),
                                 str(payload.get("training_recipe", "")))
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path}: not a usable {CLUSTER_FORMAT} file "
                              f"({type(err).__name__}: {err})") from err


def untrained_checkpoint(seed: int, cfg: ClusterActorConfig | None = None,
                         policy_version: str | None = None) -> ClusterCheckpoint:
    """A freshly initialised actor (``torch.manual_seed(seed)``): for tests and benchmarks."""
    torch.manual_seed(seed)
    actor = ClusterDiffusionActor(cfg or ClusterActorConfig()).eval()
    return ClusterCheckpoint(actor, policy_version or f"untrained-seed{seed}",
                             "none (untrained)", seed)


def example_inputs(cfg: ClusterActorConfig, *, batch: int, nodes: int,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
    """Random contract inputs (about 80 % of nodes valid), in :data:`INPUTS` order.

    Features and noise are standard normal; the latent start is uniform in (−1, 1), the range
    of the ``tanh`` latent the actor returns.
    """
    g = generator or torch.Generator().manual_seed(0)
    mask = torch.rand(batch, nodes, generator=g) < 0.8
    mask[:, 0] = True
    return (
        torch.randn(batch, nodes, cfg.node_dim, generator=g),
        mask,
        torch.randn(batch, cfg.task_dim, generator=g),
        torch.randn(batch, cfg.global_dim, generator=g),
        torch.rand(batch, nodes, cfg.latent_dim, generator=g) * 2.0 - 1.0,
        torch.randn(batch, cfg.steps, nodes, cfg.latent_dim, generator=g),
    )


def export_onnx(ckpt: ClusterCheckpoint, out: Path, *, created: str | None = None) -> PolicyInfo:
    """Export the actor to ``out`` (atomically) and return what the file declares.

    Uses the TorchScript-based exporter (``dynamo=False``; torch >= 2.9 defaults to the
    dynamo exporter, which needs ``onnxscript``): the graph is a fixed unrolled chain with no
    data-dependent control flow, which that exporter traces exactly, and no new dependency.

    Raises:
        ladts_policy.contract.ContractError: the exported file breaks the serving contract.
    """
    import onnx
    from onnx import helper

    from ladts_policy.onnx_eval import load_policy_session

    actor = ckpt.actor.eval()
    cfg = actor.cfg
    dynamic = {spec.name: {i: d for i, d in enumerate(spec.dims) if d in ("B", "N")}
               for spec in (*INPUTS, *OUTPUTS)}
    # torch < 2.5 has no ``dynamo`` argument (and only the TorchScript exporter).
    has_dynamo = "dynamo" in inspect.signature(torch.onnx.export).parameters
    legacy: dict[str, Any] = {"dynamo": False} if has_dynamo else {}
    tmp = out.with_name(out.name + ".tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            actor, example_inputs(cfg, batch=2, nodes=3), str(tmp),
            input_names=[s.name for s in INPUTS], output_names=[s.name for s in OUTPUTS],
            dynamic_axes=dynamic, opset_version=OPSET, **legacy,
        )
    model = onnx.load(str(tmp))
    meta = make_metadata(
        policy_version=ckpt.policy_version, diffusion_steps=cfg.steps,
        latent_dim=cfg.latent_dim, training_scenario=ckpt.training_scenario,
        training_seed=ckpt.training_seed,
        created=created or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    meta["ladts.actor_config"] = str(cfg.to_dict())
    if ckpt.training_recipe:
        meta["ladts.training_recipe"] = ckpt.training_recipe
    helper.set_model_props(model, meta)
    model.producer_name = "ladts export"
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(tmp))
    try:
        _, info = load_policy_session(tmp)
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out)
    return info


def torch_forward(actor: ClusterDiffusionActor, feeds: dict[str, Any]
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the actor on numpy contract feeds (the same dict onnxruntime takes)."""
    args = [torch.from_numpy(feeds[spec.name]) for spec in INPUTS]
    with torch.no_grad():
        probs, latent = actor(*args)
    return probs, latent
