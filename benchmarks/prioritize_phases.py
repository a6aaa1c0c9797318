"""CPU time of each step of one prioritize at N nodes, in process (no HTTP).

Builds the offline state of a scenario cycled to N nodes (as ``ladts bench extender``), and
for each pod of the scenario's mix answers ``filter`` through ``Extender.handle``, then runs
the steps of ``Extender.prioritize`` one by one with the extender's own methods (parse,
snapshot, feature encoding, scoring, score mapping, the answer and the kept decision, the
JSON answer), timing each with ``time.thread_time``. The offline cluster advances 0.25 s every
110 decisions. Every other decision is answered by ``Extender.handle("prioritize")`` itself
and timed whole (``handle``), so the steps' total can be checked against the real call.
Prints p50 / mean / p99 per step in ms; exits 1 if an answer is not 200.

    python benchmarks/prioritize_phases.py --policy bundled --nodes 500 --decisions 1500
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from inprocess_extender import build

from ladts_operator import jsonio
from ladts_operator.extender import (
    Decision,
    parse_extender_args,
    parse_json,
    pod_annotations,
    pod_ref,
)
from ladts_operator.scoring import score_array
from ladts_policy.features import encode

STEPS = ("parse", "snapshot", "encode", "score", "map", "answer", "json", "total", "handle",
         "filter")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="bundled", help="bundled, a file, or none")
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--decisions", type=int, default=1500)
    parser.add_argument("--scenario", default="k8s-edge")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    setup = build(args.scenario, args.policy, args.nodes, args.seed)
    rt, cluster, bodies = setup.rt, setup.cluster, setup.bodies
    ex = rt.extender
    times: dict[str, list[float]] = {step: [] for step in STEPS}
    clock = time.time()
    cpu = time.thread_time
    for i in range(args.decisions):
        if i % 110 == 0:
            clock += 0.25
            cluster.advance(clock)
        body = bodies[i % len(bodies)]
        t0 = cpu()
        jsonio.dumps(ex.handle("filter", body).body)
        times["filter"].append(cpu() - t0)
        if i % 2:
            t0 = cpu()
            reply = ex.handle("prioritize", body)
            jsonio.dumps(reply.body)
            times["handle"].append(cpu() - t0)
            if reply.status != 200:
                print(f"prioritize answered {reply.status}: invalid run", file=sys.stderr)
                return 1
            continue
        start = t0 = cpu()
        parsed = parse_extender_args(parse_json(body, ex.max_body_bytes))
        work = ex._work(pod_annotations(parsed.pod))
        now = ex.clock()
        t1 = cpu()
        snapshot, task = ex.snapshot(parsed, work, now=now)
        t2 = cpu()
        features = encode(snapshot, task, node_slots=snapshot.num_nodes)
        t3 = cpu()
        ex.decision_count += 1
        scored = ex._score(snapshot, task, features, parsed.names)
        t4 = cpu()
        scores_N = score_array(scored.preference_N, features.node_mask_S)
        scores = scores_N.tolist()
        t5 = cpu()
        ref = pod_ref(parsed.pod)
        decision = Decision(ref["uid"], f"{ref['namespace']}/{ref['name']}", now,
                            ex._names_tuple(parsed.names), scores_N, scored, pod_obj=parsed.pod)
        decision.features = {"node_rows": features.node_rows_SF, "task": features.task_T,
                              "global": features.global_G, "mask": features.node_mask_S,
                              "est_delay_s": snapshot.est_delay_s_N}
        ex._remember(decision)
        answer = [{"Host": n, "Score": s} for n, s in zip(parsed.names, scores, strict=True)]
        t6 = cpu()
        jsonio.dumps(answer)
        t7 = cpu()
        for step, value in zip(STEPS[:8], (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4,
                                           t6 - t5, t7 - t6, t7 - start), strict=True):
            times[step].append(value)
    print(f"{args.nodes} nodes, {ex.scorer.name}, {args.decisions} decisions, CPU per step "
          f"(p50 / mean / p99 ms)")
    for step, values in times.items():
        v = 1e3 * np.asarray(values)
        print(f"  {step:>9}: {np.percentile(v, 50):.3f} / {v.mean():.3f} / "
              f"{np.percentile(v, 99):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
