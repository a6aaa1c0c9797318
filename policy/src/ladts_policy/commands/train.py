"""``ladts train``: train LAD-TS or a DRL baseline on a scenario (needs the ``train`` extra).

Two trainers behind one command, chosen by the scenario's kind: the per-station agents of
the paper (``paper`` kind, :class:`ladts_policy.train.config.TrainConfig`) and the
node-count-agnostic cluster policy (``k8s-edge`` kind,
:class:`ladts_policy.train.cluster_config.ClusterTrainConfig`). The options are generated from
both dataclasses (their field docstrings are the help texts), so the command line and the
saved configs cannot drift; an option both have shows both defaults and is left to each
trainer's own default when not given.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per training setting of either trainer, plus the run's output folder."""
    from ladts_policy.train.cluster_config import (
        CLUSTER_ALGORITHMS,
        DISTRIBUTIONS,
        IMITATION_TEACHERS,
        ClusterTrainConfig,
    )
    from ladts_policy.train.config import ALGORITHMS, STATES, TrainConfig, field_docs

    paper_docs, cluster_docs = field_docs(TrainConfig), field_docs(ClusterTrainConfig)
    paper_fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    cluster_fields = {f.name: f for f in dataclasses.fields(ClusterTrainConfig)}
    choices = {"algo": ALGORITHMS, "state": STATES, "device": ("auto", "cpu", "cuda"),
               "imitate": IMITATION_TEACHERS, "distribution": DISTRIBUTIONS}
    groups = {
        "both": parser.add_argument_group(
            "settings of both trainers (a paper-kind scenario trains the per-station agents; "
            "a k8s-edge scenario the cluster policy, algo " + "|".join(CLUSTER_ALGORITHMS)
            + ")"),
        "paper": parser.add_argument_group("paper-kind scenarios only"),
        "cluster": parser.add_argument_group("k8s-edge scenarios only (the cluster policy)"),
    }
    names = list(paper_fields) + [n for n in cluster_fields if n not in paper_fields]
    for name in names:
        flag = "--" + name.replace("_", "-")
        in_paper, in_cluster = name in paper_fields, name in cluster_fields
        field = paper_fields[name] if in_paper else cluster_fields[name]
        default = field.default
        if in_paper and in_cluster:
            c_default = cluster_fields[name].default
            help_text = (f"paper: {paper_docs.get(name, '')} (default: {default}) | cluster: "
                         f"{cluster_docs.get(name, '')} (default: {c_default})")
            group = groups["both"]
            if name == "scenario":
                help_text = ("preset or YAML file; its kind picks the trainer (default: paper). "
                             "cluster: " + cluster_docs.get(name, ""))
        else:
            docs = paper_docs if in_paper else cluster_docs
            help_text = f"{docs.get(name, '')} (default: {default})"
            group = groups["paper" if in_paper else "cluster"]
        if isinstance(default, bool):
            group.add_argument(flag, action="store_true", default=None, help=help_text)
            continue
        group.add_argument(flag, type=type(default), default=None, choices=choices.get(name),
                           help=help_text.replace("%", "%%"))
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="run folder: log.csv, the checkpoints, final.pt (the trained "
                             "policy; for the cluster policy the best validated actor, "
                             "exportable with `ladts export`)")
    parser.add_argument("--resume", action="store_true",
                        help="paper kind: continue the run in DIR from its checkpoint.pt")
    parser.add_argument("--from-traces", type=Path, nargs="+", default=None,
                        metavar="TRACES.jsonl",
                        help="train the cluster policy on the scenario `ladts calibrate` makes "
                             "of these trace files of `ladts serve --trace` (written as "
                             "DIR/scenario.yaml; --scenario, default k8s-edge, gives what the "
                             "trace does not measure; --distribution defaults to scenario: "
                             "the calibrated cluster itself)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _values(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The options given on the command line that ``cls`` has (the rest keep its defaults)."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
            if getattr(args, f.name, None) is not None}


def _is_cluster(scenario: str | None) -> bool:
    if scenario is None:
        return False
    from ladts_policy.sim.config.scenario import load_scenario

    return load_scenario(scenario).kind == "k8s-edge"


def run(args: argparse.Namespace) -> int:
    """Train and write ``DIR/final.pt``."""
    from ladts_policy.train.cluster_config import ClusterTrainConfig
    from ladts_policy.train.config import TrainConfig

    if args.from_traces:
        from ladts_policy.train.from_traces import calibrated_scenario

        if (args.out / "final.pt").exists():
            raise ValueError(f"{args.out / 'final.pt'} exists: choose another --out")
        path = calibrated_scenario(args.from_traces, args.out, base=args.scenario or "k8s-edge")
        print(f"calibrated {', '.join(map(str, args.from_traces))} -> {path}")
        args.scenario = str(path)
        if args.distribution is None:
            args.distribution = "scenario"
        return _run_cluster(args)
    if _is_cluster(args.scenario):
        return _run_cluster(args)
    cluster_only = {f.name for f in dataclasses.fields(ClusterTrainConfig)} - {
        f.name for f in dataclasses.fields(TrainConfig)}
    given = sorted(n for n in cluster_only if getattr(args, n, None) is not None)
    if given:
        raise ValueError(f"options {given} apply to k8s-edge scenarios only")
    config = TrainConfig(**_values(args, TrainConfig))
    try:
        from ladts_policy.train.trainer import Trainer
    except ImportError as err:
        raise ValueError(f"training needs torch: pip install 'ladts[train]' ({err})") from err
    trainer = Trainer(config, args.out, resume=args.resume, show_progress=not args.no_progress)
    path = trainer.run()
    print(f"trained {config.algo} for {trainer.episodes_done} episodes in "
          f"{trainer.elapsed_s:.1f} s; policy: {path}")
    return 0


def _run_cluster(args: argparse.Namespace) -> int:
    from ladts_policy.train.cluster_config import ClusterTrainConfig
    from ladts_policy.train.config import TrainConfig

    cluster_names = {f.name for f in dataclasses.fields(ClusterTrainConfig)}
    paper_only = sorted(f.name for f in dataclasses.fields(TrainConfig)
                        if f.name not in cluster_names and getattr(args, f.name) is not None)
    if paper_only or args.resume:
        raise ValueError(f"options {paper_only + (['resume'] if args.resume else [])} apply "
                         "to paper-kind scenarios only")
    values = _values(args, ClusterTrainConfig)
    if values.get("device") == "auto":
        import torch

        values["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    config = ClusterTrainConfig(**values)
    try:
        from ladts_policy.train.cluster_trainer import ClusterTrainer
    except ImportError as err:
        raise ValueError(f"training needs torch: pip install 'ladts[train]' ({err})") from err
    trainer = ClusterTrainer(config, args.out, show_progress=not args.no_progress)
    path = trainer.run()
    print(f"trained the cluster {config.algo} policy in {trainer.elapsed_s:.1f} s (best "
          f"validation ratio to greedy {trainer.best_ratio:.3f}); policy: {path}")
    return 0
