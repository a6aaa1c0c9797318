"""Garbage-collector passes during extender decisions at N nodes, in process (no HTTP).

Builds the offline state of a scenario cycled to N nodes (as ``ladts bench extender``), then
answers filter + prioritize for the scenario's pods, advancing the offline cluster every 110
decisions by 0.25 s of scripted time (about the rate of the HTTP benchmark), and times every
pass of Python's cyclic collector with ``gc.callbacks``. Prints the objects the collector
tracks, passes per 1 000 decisions per generation and the CPU time of a pass (median and
max, ``time.thread_time``: a loaded machine inflates it less than wall time), and the CPU
time of a decision. Run it on two trees (``PYTHONPATH=<tree>/policy/src:<tree>/operator/src``)
to compare them; exits 1 if an answer is not 200.

    python benchmarks/gc_pauses.py --policy bundled --nodes 500 --decisions 3000 [--freeze]
        [--threshold0 700]

``--freeze``: ``gc.collect(); gc.freeze()`` after the state is built, as ``ladts serve``
does once synced (``ladts_operator/gc_policy.py``).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from typing import Any

import numpy as np
from inprocess_extender import build

from ladts_operator import jsonio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="bundled", help="bundled, a file, or none")
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--decisions", type=int, default=3000)
    parser.add_argument("--scenario", default="k8s-edge")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--freeze", action="store_true", help="gc.freeze() after the state")
    parser.add_argument("--threshold0", type=int, default=None,
                        help="generation-0 threshold (default: Python's)")
    args = parser.parse_args()
    setup = build(args.scenario, args.policy, args.nodes, args.seed)
    rt, cluster, bodies = setup.rt, setup.cluster, setup.bodies
    clock = time.time()
    cluster.advance(clock)
    if args.freeze:
        gc.collect()
        gc.freeze()
    if args.threshold0 is not None:
        gc.set_threshold(args.threshold0, *gc.get_threshold()[1:])
    passes: list[tuple[int, float]] = []
    started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.thread_time()
        else:
            passes.append((int(info["generation"]), time.thread_time() - started[0]))

    gc.callbacks.append(on_gc)
    cpu_D = np.empty(args.decisions)
    for i in range(args.decisions):
        if i % 110 == 0:
            clock += 0.25
            cluster.advance(clock)
        body = bodies[i % len(bodies)]
        c0 = time.thread_time()
        for verb in ("filter", "prioritize"):
            reply = rt.extender.handle(verb, body)
            if reply.status != 200:
                print(f"{verb} answered {reply.status}: invalid run", file=sys.stderr)
                return 1
            jsonio.dumps(reply.body)
        cpu_D[i] = time.thread_time() - c0
    gc.callbacks.remove(on_gc)
    scorer = rt.extender.scorer.name
    print(f"{args.nodes} nodes, {scorer}, {args.decisions} decisions, freeze={args.freeze}, "
          f"thresholds {gc.get_threshold()}, tracked objects {len(gc.get_objects())}")
    print(f"  decision (filter + prioritize) CPU: mean {1e3 * cpu_D.mean():.3f} ms, "
          f"p99 {1e3 * np.percentile(cpu_D, 99):.3f} ms")
    for generation in range(3):
        cpu = np.array([c for g, c in passes if g == generation])
        if cpu.size:
            print(f"  generation {generation}: {1e3 * cpu.size / args.decisions:.1f} passes per "
                  f"1000 decisions, CPU per pass median {1e3 * np.median(cpu):.2f} ms, "
                  f"max {1e3 * cpu.max():.2f} ms")
        else:
            print(f"  generation {generation}: no pass")
    # What ladts serve's periodic refreeze costs once per gc_freeze_s (gc_policy.GcKeeper):
    # a collection of the unfrozen objects, and every FULL_EVERY-th time a full one.
    from ladts_operator.gc_policy import freeze

    for full in (True, False):
        start = time.thread_time()
        frozen = freeze(full=full)
        print(f"  refreeze, {'full' if full else 'unfrozen-only'} collection, {frozen} objects "
              f"frozen: CPU {1e3 * (time.thread_time() - start):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
