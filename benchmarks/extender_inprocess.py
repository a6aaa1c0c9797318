"""In-process cost of one filter and one prioritize call (no HTTP), per node count.

Builds the offline state of a scenario cycled to N nodes (as ``ladts bench extender``) and
calls ``Extender.handle`` directly, so the figure is the extender's own work without the
HTTP server, JSON transport or a client sharing the CPU. Prints mean and p99 per verb.

    python benchmarks/extender_inprocess.py --nodes 20,100,500 --calls 200
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time

from ladts_operator.offline import pod_object, populate, scaled_nodes
from ladts_operator.runtime import build_runtime
from ladts_operator.settings import ServeSettings
from ladts_policy.sim.scenario import load_scenario


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="20,100,500")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--scenario", default="k8s-edge")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = load_scenario(args.scenario).cluster
    print(f"{'nodes':>6} {'filter mean':>12} {'p99':>8} {'prioritize mean':>16} {'p99':>8}")
    for count in (int(x) for x in args.nodes.split(",")):
        rt = build_runtime(ServeSettings(), profiles=config.gpu_profiles)
        nodes = scaled_nodes(config, count)
        populate(rt.state, config, seed=args.seed, nodes=nodes)
        names = [n.name for n in nodes]
        rng = random.Random(args.seed + 1)
        bodies = [json.dumps({"Pod": pod_object(config, rng, i), "NodeNames": names}).encode()
                  for i in range(args.calls)]
        times: dict[str, list[float]] = {"filter": [], "prioritize": []}
        for body in bodies:
            for verb in times:
                t0 = time.perf_counter()
                reply = rt.extender.handle(verb, body)
                times[verb].append(time.perf_counter() - t0)
                if reply.status != 200:
                    print(f"{verb} answered {reply.status}: invalid run", file=sys.stderr)
                    return 1
        row = []
        for values in times.values():
            q = statistics.quantiles(values, n=100, method="inclusive")
            row += [1e3 * statistics.fmean(values), 1e3 * q[98]]
        print(f"{count:>6} {row[0]:>10.2f}ms {row[1]:>6.2f}ms {row[2]:>14.2f}ms {row[3]:>6.2f}ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
