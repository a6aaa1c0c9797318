"""A digest of the extender's answers over a scripted offline history, to compare two trees.

An optimisation of the request path must not change an answer. This drives the extender in
process (no HTTP) over offline ``k8s-edge`` states with a scripted clock: for each of several
scorers (heuristics on the fast ranking path and on the general one, and an ONNX policy of the
contract's shape) it advances the offline cluster, sends filter and prioritize for a pod of
the scenario's mix and binds half of them to the chosen node. It prints the number of
decisions, a SHA-256 digest of every filter answer and every score, and one of what each
decision leaves behind (its ``/debug/state`` entry with features, and the bind's
``ladts.io/decision`` annotation). Run it on two trees
(``PYTHONPATH=<tree>/policy/src:<tree>/operator/src``) and compare the digests.

    python benchmarks/score_digest.py [--decisions 400]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

from ladts_operator import jsonio
from ladts_operator.extender import BindArgs
from ladts_operator.offline import OfflineCluster, pod_object, populate, scaled_nodes
from ladts_operator.runtime import build_runtime
from ladts_operator.settings import ServeSettings
from ladts_operator.untrained_policy import write_untrained_policy
from ladts_policy.sim.config.scenario import load_scenario

CASES = (("residency-greedy", 60, None), ("greedy", 120, None), ("spread", 40, None),
         ("least-queue", 40, None), ("residency-greedy", 80, "untrained"),
         ("residency-greedy", 100, "bundled"))
"""(heuristic, nodes, policy: None, the untrained ONNX policy or the bundled one)."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=400, help="per case")
    args = parser.parse_args()
    config = load_scenario("k8s-edge").cluster
    out: list[Any] = []
    kept: list[bytes] = []  # what a decision leaves behind: /debug/state and bind annotation
    with tempfile.TemporaryDirectory() as tmp:
        policy = str(write_untrained_policy(Path(tmp) / "untrained.onnx"))
        for heuristic, count, onnx in CASES:
            clock = {"t": 1_700_000_000.0}
            served = {"untrained": policy, "bundled": "bundled", None: None}[onnx]
            rt = build_runtime(ServeSettings(heuristic=heuristic, policy=served),
                               profiles=config.gpu_profiles)
            rt.state.clock = rt.extender.clock = lambda clock=clock: clock["t"]
            nodes = populate(rt.state, config, seed=5, now=clock["t"],
                             nodes=scaled_nodes(config, count))
            cluster = OfflineCluster(rt.state, config, seed=5)
            names = [n.name for n in nodes]
            rng = random.Random(9)
            for i in range(args.decisions):
                clock["t"] += rng.uniform(0.0, 1.0)
                cluster.advance(clock["t"])
                pod = pod_object(config, rng, i)
                body = json.dumps({"Pod": pod, "NodeNames": names}).encode()
                answer = rt.extender.handle("filter", body).body
                scores = rt.extender.handle("prioritize", body).body
                out.append((heuristic, count, onnx, i, answer["NodeNames"],
                            sorted(answer["FailedAndUnresolvableNodes"].items()),
                            [h["Score"] for h in scores]))
                kept.append(jsonio.dumps(rt.extender.debug_state(1)["decisions"]))
                if rng.random() < 0.5:
                    chosen = max(scores, key=lambda h: h["Score"])["Host"]
                    bind = BindArgs(pod["metadata"]["name"], "offline", pod["metadata"]["uid"],
                                    chosen)
                    kept.append(rt.extender.decision_annotation(bind, now=clock["t"]).encode())
                    rt.extender.bound(bind, pod, now=clock["t"])
    digest = hashlib.sha256(json.dumps(out).encode()).hexdigest()[:16]
    nonzero = sum(1 for o in out for s in o[-1] if s)
    records = hashlib.sha256(b"".join(kept)).hexdigest()[:16]
    print(f"{len(out)} decisions, {nonzero} non-zero scores, digest {digest}, "
          f"records {records}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
