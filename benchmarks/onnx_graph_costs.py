"""What the bundled policy's onnxruntime graph costs, and what session options or rewrites change.

Three measurements of CPU time per ``session.run`` (``time.process_time``, all threads; rounds of
``--calls`` calls, the variants interleaved in each round, min and median over the rounds):

- ``options``: at ``--nodes`` (default 500) the serving session (one intra-op thread, as
  ``ladts_policy.onnx_eval.load_policy_session``) against ``ORT_SEQUENTIAL``, no spinning, no
  CPU arena, no memory pattern, IOBinding with preallocated outputs, and two intra-op
  threads; every variant's outputs are compared with the serving session's.
- ``scaling``: the serving session at 20, 100, 500 and 1 000 nodes, beside the actor's
  multiply-adds per decision (from ``ClusterActorConfig``: the graph is linear in N).
- ``bias``: the graph with its ``MatMul`` + bias ``Add`` pairs rewritten as ``Reshape`` +
  ``Gemm`` + ``Reshape`` where the ``MatMul`` output has no other use (outputs compared),
  and, for timing only, with the bias adds removed (wrong outputs: an upper bound of what
  fusing them could save).

Exits 1 if a variant that should compute the same outputs differs by more than 1e-6.

    python benchmarks/onnx_graph_costs.py [--policy FILE] [--nodes 500] [--rounds 6]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from ladts_policy.bundled import bundled_policy_path
from ladts_policy.contract import SPEC

OUTPUTS = ["action_probs", "latent"]


def session(model: str | bytes, *, threads: int = 1, **options: Any) -> Any:
    """An onnxruntime CPU session with the serving defaults, plus ``options``."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    for key, value in options.items():
        if key == "config":
            for entry, setting in value:
                opts.add_session_config_entry(entry, setting)
        else:
            setattr(opts, key, value)
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def feeds_for(nodes: int, seed: int = 0) -> dict[str, np.ndarray]:
    """One decision's inputs at ``nodes`` nodes (90 % valid)."""
    rng = np.random.default_rng(seed)
    dims = SPEC.dims
    mask = rng.random((1, nodes)) < 0.9
    mask[0, 0] = True
    return {
        "node_features": rng.random((1, nodes, dims["node"]), dtype=np.float32),
        "node_mask": mask,
        "task_features": rng.random((1, dims["task"]), dtype=np.float32),
        "global_features": rng.random((1, dims["global"]), dtype=np.float32),
        "latent_start": rng.standard_normal((1, nodes, 4)).astype(np.float32),
        "noise": rng.standard_normal((1, 5, nodes, 4), dtype=np.float32),
    }


def io_bound(sess: Any, feeds: dict[str, np.ndarray]) -> Callable[[], list[np.ndarray]]:
    """A call running ``sess`` through one IOBinding with preallocated outputs."""
    nodes = feeds["node_mask"].shape[1]
    probs = np.empty((1, nodes), np.float32)
    latent = np.empty((1, nodes, 4), np.float32)
    binding = sess.io_binding()
    for name, value in feeds.items():
        binding.bind_cpu_input(name, value)
    binding.bind_output("action_probs", "cpu", 0, np.float32, probs.shape, probs.ctypes.data)
    binding.bind_output("latent", "cpu", 0, np.float32, latent.shape, latent.ctypes.data)

    def call() -> list[np.ndarray]:
        sess.run_with_iobinding(binding)
        return [probs, latent]

    return call


def rewrite_bias(model: onnx.ModelProto, *, drop: bool) -> tuple[onnx.ModelProto, int]:
    """``MatMul`` + bias ``Add`` pairs as ``Gemm`` (or, ``drop``, without the ``Add``)."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    nodes: list[onnx.NodeProto] = []
    renamed: dict[str, str] = {}
    done = 0
    extra = [numpy_helper.from_array(np.array([0], np.int64), "bias_rw_zero"),
             numpy_helper.from_array(np.array([-1], np.int64), "bias_rw_minus1")]
    for node in graph.node:
        pair = None
        if node.op_type == "Add" and len(node.input) == 2:
            for bias, product in (node.input, node.input[::-1]):
                mm = producer.get(product)
                if (mm is not None and mm.op_type == "MatMul" and bias in inits
                        and len(inits[bias].dims) == 1 and uses.get(product) == 1
                        and mm.input[1] in inits and len(inits[mm.input[1]].dims) == 2):
                    pair = (bias, product, mm)
                    break
        if pair is None:
            nodes.append(node)
            continue
        bias, product, mm = pair
        done += 1
        if drop:
            renamed[node.output[0]] = product
            nodes.append(node)  # removed below, once every rename is known
            continue
        x, w = mm.input
        k, h = inits[w].dims
        p = f"bias_rw{done}"
        extra += [numpy_helper.from_array(np.array([-1, k], np.int64), p + "_k"),
                  numpy_helper.from_array(np.array([h], np.int64), p + "_h")]
        nodes += [
            helper.make_node("Shape", [x], [p + "_shape"]),
            helper.make_node("Slice", [p + "_shape", "bias_rw_zero", "bias_rw_minus1"],
                             [p + "_lead"]),
            helper.make_node("Concat", [p + "_lead", p + "_h"], [p + "_out_shape"], axis=0),
            helper.make_node("Reshape", [x, p + "_k"], [p + "_x2"]),
            helper.make_node("Gemm", [p + "_x2", w, bias], [p + "_y2"]),
            helper.make_node("Reshape", [p + "_y2", p + "_out_shape"], [node.output[0]]),
        ]
        mm.op_type = "Identity-removed"  # marks the fused MatMul
    kept = [n for n in nodes if n.op_type != "Identity-removed"
            and not (drop and n.output and n.output[0] in renamed)]
    for node in kept:
        for i, name in enumerate(node.input):
            while name in renamed:
                name = renamed[name]
            node.input[i] = name
    for out in graph.output:
        if out.name in renamed:
            raise SystemExit(f"cannot drop the bias feeding output {out.name}")
    graph.initializer.extend(extra)
    # Topological order (the rewrite appended nodes out of place).
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    ordered: list[onnx.NodeProto] = []
    pending = kept
    while pending:
        rest = []
        for n in pending:
            if all(i in ready for i in n.input):
                ordered.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise SystemExit("bias rewrite left a node without its inputs")
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)
    return model, done


def cpu_ms(calls: dict[str, Callable[[], Any]], rounds: int, n: int) -> dict[str, list[float]]:
    """CPU ms per call of each variant, one entry per round (variants interleaved)."""
    out: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            for _ in range(10):
                call()
            start = time.process_time()
            for _ in range(n):
                call()
            out[name].append(1e3 * (time.process_time() - start) / n)
    return out


def report(results: dict[str, list[float]]) -> None:
    """Print min and median per variant."""
    for name, values in results.items():
        print(f"  {name:<34} min {min(values):.3f}  median {np.median(values):.3f} ms")


def macs_per_node(hidden: int = 64, latent: int = 4, steps: int = 5, heads: int = 4) -> int:
    """Multiply-adds per node of ``ClusterDiffusionActor``.

    The layers of ``ladts_policy/train/cluster_networks.py``: node MLP, pooling key and
    value, the context layer, ``steps`` denoiser passes, the logit.
    """
    f = SPEC.dims["node"]
    node_mlp = f * hidden + hidden * hidden
    pooling = hidden * heads + hidden * hidden
    context = 2 * hidden * hidden
    step = latent * hidden + hidden * hidden + hidden * latent
    return node_mlp + pooling + context + steps * step + latent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path, default=None, help="default: the bundled file")
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=100, help="calls per round and variant")
    args = parser.parse_args()
    path = str(args.policy or bundled_policy_path())
    feeds = feeds_for(args.nodes)
    base = session(path)
    want = base.run(OUTPUTS, feeds)
    variants: dict[str, Any] = {
        "serving session (1 thread)": base,
        "ORT_SEQUENTIAL": session(path, execution_mode=ort.ExecutionMode.ORT_SEQUENTIAL),
        "no spinning": session(path, config=[("session.intra_op.allow_spinning", "0")]),
        "no CPU arena": session(path, enable_cpu_mem_arena=False),
        "no memory pattern": session(path, enable_mem_pattern=False),
        "2 intra-op threads": session(path, threads=2),
    }
    calls: dict[str, Callable[[], Any]] = {
        name: (lambda s=s: s.run(OUTPUTS, feeds)) for name, s in variants.items()}
    calls["IOBinding, preallocated outputs"] = io_bound(base, feeds)
    valid = True
    for name, call in calls.items():
        diff = max(float(np.abs(a - b).max()) for a, b in zip(want, call(), strict=True))
        valid &= diff <= 1e-6
        print(f"  {name:<34} max |output - serving| {diff:.1e}")
    print(f"options at {args.nodes} nodes, CPU per call over {args.rounds} rounds:")
    report(cpu_ms(calls, args.rounds, args.calls))

    per_node = macs_per_node()
    print(f"scaling ({per_node} multiply-adds per node):")
    sized = {n: feeds_for(n) for n in (20, 100, 500, 1000)}
    scale = {f"{n} nodes ({2 * per_node * n / 1e6:.1f} MFLOP)":
             (lambda f=f: base.run(OUTPUTS, f)) for n, f in sized.items()}
    report(cpu_ms(scale, max(args.rounds // 2, 1), args.calls))

    gemm, fused = rewrite_bias(onnx.load(path), drop=False)
    dropped, removed = rewrite_bias(onnx.load(path), drop=True)
    gemm_session = session(gemm.SerializeToString())
    diff = max(float(np.abs(a - b).max())
               for a, b in zip(want, gemm_session.run(OUTPUTS, feeds), strict=True))
    valid &= diff <= 1e-6
    print(f"bias adds at {args.nodes} nodes: {fused} rewritten as Gemm (max |output - serving| "
          f"{diff:.1e}); {removed} removed for timing only (wrong outputs)")
    no_bias = session(dropped.SerializeToString())
    report(cpu_ms({"serving session": lambda: base.run(OUTPUTS, feeds),
                   f"{fused} pairs as Gemm": lambda: gemm_session.run(OUTPUTS, feeds),
                   f"{removed} bias adds removed (timing only)":
                       lambda: no_bias.run(OUTPUTS, feeds)}, args.rounds, args.calls))
    if not valid:
        print("a variant changed the outputs: invalid run", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
