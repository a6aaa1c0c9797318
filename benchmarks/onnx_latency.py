"""onnxruntime decision latency of a cluster LAD-TS policy at several node counts.

One decision is what the extender's scorer does per request (``ladts_operator.onnx_policy``):
draw the ``[1, K, N, L]`` noise and run the session on one state, on a single thread. The
policy is ``--policy FILE`` or, by default, an untrained seeded cluster actor exported with
``ladts_policy.train.cluster_export`` (needs torch; the graph, hence the cost, is the same
as a trained one of the same config). Prints p50/p99 per node count beside the targets of
issue 10 (p99 <= 1 ms at 20 nodes, <= 5 ms at 500); exits non-zero when a run is invalid
(non-finite probabilities, rows not summing to 1, probability on a masked node). Example::

    python benchmarks/onnx_latency.py --nodes 20,100,500 --calls 2000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ladts_policy.contract import SPEC
from ladts_policy.onnx_eval import load_policy_session

TARGET_P99_MS = {20: 1.0, 500: 5.0}
"""p99 targets in milliseconds (issue 10)."""


def export_untrained(seed: int, folder: Path) -> Path:
    """An untrained seeded cluster actor as an ONNX file in ``folder``."""
    from ladts_policy.train.cluster_export import export_onnx, untrained_checkpoint

    out = folder / "untrained.onnx"
    export_onnx(untrained_checkpoint(seed), out, created="1970-01-01T00:00:00Z")
    return out


def measure(path: Path, nodes: int, calls: int, warmup: int, seed: int) -> np.ndarray:
    """Latencies in ms of ``calls`` decisions at ``nodes`` nodes (after ``warmup`` calls).

    Raises:
        SystemExit: the policy's output is invalid.
    """
    session, info = load_policy_session(path, threads=1)
    rng = np.random.default_rng(seed)
    dims = SPEC.dims
    mask_1N = rng.random((1, nodes)) < 0.9
    mask_1N[0, 0] = True
    feeds = {
        "node_features": rng.random((1, nodes, dims["node"]), dtype=np.float32),
        "node_mask": mask_1N,
        "task_features": rng.random((1, dims["task"]), dtype=np.float32),
        "global_features": rng.random((1, dims["global"]), dtype=np.float32),
        "latent_start": np.zeros((1, nodes, info.latent_dim), np.float32),
    }
    shape = (1, info.diffusion_steps, nodes, info.latent_dim)
    times_ms = np.empty(calls)
    for i in range(warmup + calls):
        start = time.perf_counter()
        feeds["noise"] = rng.standard_normal(shape, dtype=np.float32)
        probs, latent = session.run(["action_probs", "latent"], feeds)
        elapsed = time.perf_counter() - start
        if i >= warmup:
            times_ms[i - warmup] = elapsed * 1e3
        feeds["latent_start"] = latent  # the warm start, as the scorer feeds it back
    if not (np.all(np.isfinite(probs)) and abs(float(probs.sum()) - 1.0) < 1e-4
            and np.all(probs[~mask_1N] == 0.0)):
        raise SystemExit(f"invalid policy output at {nodes} nodes")
    return times_ms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path, default=None,
                        help="ONNX policy file (default: an untrained seeded export; torch)")
    parser.add_argument("--nodes", default="20,100,500", help="comma-separated node counts")
    parser.add_argument("--calls", type=int, default=2000, help="timed decisions per size")
    parser.add_argument("--warmup", type=int, default=20, help="untimed decisions first")
    parser.add_argument("--seed", type=int, default=0, help="actor init and input seed")
    args = parser.parse_args(argv)
    if args.calls < 1:
        parser.error("--calls must be >= 1")
    sizes = [int(n) for n in args.nodes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        path = args.policy or export_untrained(args.seed, Path(tmp))
        print(f"policy {path.name}, 1 thread, {args.calls} decisions per size "
              f"(noise draw + session.run)")
        print(f"{'nodes':>6} {'p50 ms':>8} {'p99 ms':>8} {'target p99':>11}")
        for nodes in sizes:
            t = measure(path, nodes, args.calls, args.warmup, args.seed)
            target = TARGET_P99_MS.get(nodes)
            p50, p99 = np.percentile(t, [50, 99])
            verdict = "" if target is None else (
                f"<= {target:g} ms {'met' if p99 <= target else 'MISSED'}")
            print(f"{nodes:>6} {p50:>8.3f} {p99:>8.3f} {verdict:>11}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
