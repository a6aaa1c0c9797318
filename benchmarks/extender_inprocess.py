"""In-process cost of one filter and one prioritize call (no HTTP), per node count.

Builds the offline state of a scenario cycled to N nodes (as ``ladts bench extender``) and
calls ``Extender.handle`` directly, so the figure is the extender's own work without the
HTTP server, JSON transport or a client sharing the CPU. Prints mean and p99 wall time per
verb, and the mean CPU time (``time.process_time``), which other work on a shared machine
inflates much less than wall time.

    python benchmarks/extender_inprocess.py --nodes 20,100,500 --calls 200 [--trace-path F]
        [--tick]

``--tick``: pods finish with wall time between calls (``OfflineCluster.advance`` every 0.25 s,
as the server of ``ladts bench extender`` does), so queues change and overdue pods do not
pile up; the time spent advancing is not counted in the calls' figures.

CPU time is the process's (``time.process_time``), so with a trace it includes the trace
writer thread's work while the call ran.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time

from ladts_operator.offline import OfflineCluster, pod_object, populate, scaled_nodes
from ladts_operator.runtime import build_runtime
from ladts_operator.settings import ServeSettings
from ladts_policy.sim.config.scenario import load_scenario


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="20,100,500")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--scenario", default="k8s-edge")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tick", action="store_true",
                        help="advance the offline cluster with wall time between calls")
    parser.add_argument("--trace-path", default=None,
                        help="also write the decision trace here (as ladts serve --trace-path)")
    args = parser.parse_args()
    config = load_scenario(args.scenario).cluster
    print(f"{'nodes':>6} {'filter mean':>12} {'p99':>8} {'cpu':>8} "
          f"{'prioritize mean':>16} {'p99':>8} {'cpu':>8}")
    for count in (int(x) for x in args.nodes.split(",")):
        # The heuristic scorer, as measured in docs/serving.md (not the bundled policy).
        rt = build_runtime(ServeSettings(policy="none", trace_path=args.trace_path),
                           profiles=config.gpu_profiles)
        nodes = scaled_nodes(config, count)
        populate(rt.state, config, seed=args.seed, nodes=nodes)
        names = [n.name for n in nodes]
        rng = random.Random(args.seed + 1)
        bodies = [json.dumps({"Pod": pod_object(config, rng, i), "NodeNames": names}).encode()
                  for i in range(args.calls)]
        times: dict[str, list[float]] = {"filter": [], "prioritize": []}
        cpu = {"filter": 0.0, "prioritize": 0.0}
        cluster = OfflineCluster(rt.state, config, seed=args.seed) if args.tick else None
        ticked = 0.0
        for body in bodies:
            if cluster is not None and time.time() - ticked >= cluster.tick_s:
                ticked = time.time()
                cluster.advance(ticked)
            for verb in times:
                c0, t0 = time.process_time(), time.perf_counter()
                reply = rt.extender.handle(verb, body)
                times[verb].append(time.perf_counter() - t0)
                cpu[verb] += time.process_time() - c0
                if reply.status != 200:
                    print(f"{verb} answered {reply.status}: invalid run", file=sys.stderr)
                    return 1
        row = []
        for verb, values in times.items():
            q = statistics.quantiles(values, n=100, method="inclusive")
            row += [1e3 * statistics.fmean(values), 1e3 * q[98], 1e3 * cpu[verb] / len(values)]
        print(f"{count:>6} {row[0]:>10.2f}ms {row[1]:>6.2f}ms {row[2]:>6.2f}ms "
              f"{row[3]:>14.2f}ms {row[4]:>6.2f}ms {row[5]:>6.2f}ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
