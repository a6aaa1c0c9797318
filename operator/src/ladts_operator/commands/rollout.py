"""``ladts rollout NEW.onnx``: gate a candidate policy against the running one, then swap it in.

Exit status: 0 rolled out (or ``--dry-run`` accepted), 3 refused by the gate (the figures are
printed; ``--force`` overrides), 1 any other error (contract, ConfigMap, RBAC). See
``ladts_operator/rollout.py`` and docs/deploy.md, "Retrain and roll out".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_REFUSED = 3
"""Exit status when the gate refuses the candidate."""


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the policy ConfigMap is and how to reach the apiserver (shared with rollback)."""
    parser.add_argument("--namespace", "-n", default="ladts-system",
                        help="namespace of the policy ConfigMap (default: %(default)s)")
    parser.add_argument("--configmap", default="ladts-policy",
                        help="policy ConfigMap, the chart's serve.policy.configMapName "
                             "(default: %(default)s)")
    parser.add_argument("--key", default="policy.onnx",
                        help="key of the policy in it, the chart's serve.policy.key "
                             "(default: %(default)s); the previous version is kept under "
                             "KEY.previous")
    parser.add_argument("--kubeconfig", default=None,
                        help="kubeconfig file (default: in-cluster, then ~/.kube/config)")
    parser.add_argument("--context", default=None, help="kubeconfig context")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the rollout options."""
    from ladts_policy.commands.arg_types import seed_list
    from ladts_policy.evaluate import DEFAULT_EVAL_SEEDS

    parser.add_argument("candidate", type=Path, metavar="NEW.onnx", help="candidate policy")
    parser.add_argument("--scenario", default="k8s-edge",
                        help="scenario to compare on: a file from `ladts calibrate` or a preset "
                             "(default: %(default)s)")
    parser.add_argument("--seeds", type=seed_list, default=list(DEFAULT_EVAL_SEEDS),
                        help="held-out seeds, list or range (default: %(default)s)")
    parser.add_argument("--episodes", type=int, default=1,
                        help="episodes per seed (default: %(default)s)")
    parser.add_argument("--tolerance", type=float, default=0.02,
                        help="refuse when the mean paired delay ratio candidate/running exceeds "
                             "1 + TOLERANCE (default: %(default)s)")
    parser.add_argument("--baseline", default="residency-greedy",
                        help="heuristic the extender serves while the ConfigMap holds no policy "
                             "(the chart's serve.heuristic; default: %(default)s)")
    parser.add_argument("--force", action="store_true",
                        help="roll out even when the gate refuses (the figures are still shown)")
    parser.add_argument("--dry-run", action="store_true",
                        help="check and evaluate only; do not touch the ConfigMap")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    add_target_arguments(parser)


def core_v1_from(args: argparse.Namespace) -> Any:
    """A CoreV1Api from ``--kubeconfig``/``--context``, in-cluster config, or ~/.kube/config."""
    from kubernetes import client, config

    if args.kubeconfig or args.context:
        api = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=args.kubeconfig, context=args.context)
        return client.CoreV1Api(api)
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.CoreV1Api()


def rollout_main(args: argparse.Namespace, core_v1: Any) -> int:
    """The command's work with a given client (the e2e tests call it with theirs)."""
    from ladts_operator.rollout import (
        PolicyRef,
        RolloutError,
        evaluate_gate,
        read_configmap,
        stored_policy,
        write_rollout,
    )
    from ladts_policy.onnx_eval import PolicyFileError, check_policy_file

    ref = PolicyRef(args.namespace, args.configmap, args.key)
    try:
        info = check_policy_file(args.candidate)
        print(f"{args.candidate}: on contract, version {info.policy_version}")
        cm = read_configmap(core_v1, ref)
        running = stored_policy(cm, ref.key)
        candidate = args.candidate.read_bytes()
        if running == candidate and not args.force:
            print(f"{ref} already runs this file; nothing to do")
            return 0
        gate = evaluate_gate(args.candidate, running, scenario=args.scenario, seeds=args.seeds,
                             episodes=args.episodes, tolerance=args.tolerance,
                             baseline=args.baseline, show_progress=args.progress)
        print(gate.summary())
        if not gate.accepted and not args.force:
            print(f"ladts rollout: refused; {ref} unchanged (--force overrides)",
                  file=sys.stderr)
            return EXIT_REFUSED
        if args.dry_run:
            print("dry run: ConfigMap unchanged")
            return 0
        write_rollout(core_v1, ref, cm, candidate, running, gate)
    except (RolloutError, PolicyFileError) as exc:
        print(f"ladts rollout: error: {exc}", file=sys.stderr)
        return 1
    kept = "the previous version kept" if running is not None else "no previous version"
    print(f"rolled out {info.policy_version} to {ref} key {ref.key} ({kept} under "
          f"{ref.previous_key}); the extender reloads it once the kubelet updates the mount")
    return 0


def run(args: argparse.Namespace) -> int:
    """Check, evaluate, gate and write."""
    from ladts_policy.onnx_eval import PolicyFileError, check_policy_file

    try:  # the contract check needs no cluster: fail before asking for credentials
        check_policy_file(args.candidate)
    except PolicyFileError as exc:
        print(f"ladts rollout: error: {exc}", file=sys.stderr)
        return 1
    return rollout_main(args, core_v1_from(args))
