"""``ladts train``: train LAD-TS or a DRL baseline on a scenario (needs the ``train`` extra).

The options are generated from :class:`ladts_policy.train.config.TrainConfig` (its field
docstrings are the help texts), so the command line and the saved config cannot drift.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per training setting, plus the run's output folder."""
    from ladts_policy.train.config import ALGORITHMS, STATES, TrainConfig, field_docs

    docs = field_docs(TrainConfig)
    choices = {"algo": ALGORITHMS, "state": STATES, "device": ("auto", "cpu", "cuda")}
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        default = field.default
        help_text = docs.get(field.name, "")
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", default=default, help=help_text)
            continue
        parser.add_argument(flag, type=type(default), default=default,
                            choices=choices.get(field.name), metavar=None,
                            help=f"{help_text} (default: %(default)s)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="run folder: log.csv, checkpoint.pt, final.pt (the trained policy)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in DIR from its checkpoint.pt")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    """Train and write ``DIR/final.pt``."""
    from ladts_policy.train.config import TrainConfig

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**values)
    try:
        from ladts_policy.train.trainer import Trainer
    except ImportError as err:
        raise ValueError(f"training needs torch: pip install 'ladts[train]' ({err})") from err
    trainer = Trainer(config, args.out, resume=args.resume, show_progress=not args.no_progress)
    path = trainer.run()
    print(f"trained {config.algo} for {trainer.episodes_done} episodes in "
          f"{trainer.elapsed_s:.1f} s; policy: {path}")
    return 0
