"""``ladts export CHECKPOINT --out policy.onnx``: the cluster actor as a serving-contract policy.

Needs the ``train`` extra (torch) and ``onnx``; both are imported only when the command runs.
The written file passes ``onnx.checker`` and ``ladts_policy.policy_contract.validate_policy``
(it is checked before it replaces ``--out``).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The checkpoint, the output file and the optional metadata overrides."""
    parser.add_argument("checkpoint", type=Path, metavar="CHECKPOINT",
                        help="a cluster actor checkpoint (format ladts-cluster-actor)")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE",
                        help="ONNX file to write (replaced atomically once it validates)")
    parser.add_argument("--policy-version", default=None,
                        help="ladts.policy_version to write (default: the checkpoint's)")
    parser.add_argument("--created", default=None, metavar="ISO8601",
                        help="ladts.created to write (default: now, UTC); fix it for "
                             "byte-reproducible files")


def run(args: argparse.Namespace) -> int:
    """Export and print what the file declares."""
    import dataclasses

    try:
        from ladts_policy.train.checkpoint import CheckpointError
        from ladts_policy.train.cluster_export import export_onnx, load_cluster_checkpoint
    except ImportError as err:
        raise ValueError(f"ladts export needs the train extra (torch) and onnx: {err}") from None
    try:
        ckpt = load_cluster_checkpoint(args.checkpoint)
    except CheckpointError as err:
        raise ValueError(str(err)) from None
    if args.policy_version:
        ckpt = dataclasses.replace(ckpt, policy_version=args.policy_version)
    info = export_onnx(ckpt, args.out, created=args.created)
    print(f"wrote {args.out}: policy {info.policy_version}, K={info.diffusion_steps} steps, "
          f"L={info.latent_dim}, trained on {info.training_scenario} (seed "
          f"{info.training_seed}), created {info.created}")
    return 0
