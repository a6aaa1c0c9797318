"""A small untrained policy of the serving contract's shape, built with ``onnx.helper``.

Used by the tests of the ONNX scorer, of the evaluation policy (``ladts_policy.onnx_eval``) and of
``ladts rollout``, and by ``ladts bench extender``, until a trained export exists
(``ladts_policy.policy_contract`` is what a real export must satisfy). It is not a
trained policy: its logits are a fixed linear map of the node rows (shorter estimated delay
and a resident model score higher) plus a little of the noise and of the warm-start latent,
so every input takes part and the outputs have the contract's shapes and semantics
(masked probabilities that sum to 1, a latent per node). Needs ``onnx`` (a dev dependency).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ladts_policy.contract import NODE_FEATURES, SPEC
from ladts_policy.policy_contract import make_metadata

OPSET = 17
"""ONNX opset of the graph (ReduceMean's axes are still an attribute there)."""


def build_untrained_policy(
    *,
    latent_dim: int = 4,
    diffusion_steps: int = 5,
    policy_version: str = "untrained-0",
    extra_metadata: dict[str, str] | None = None,
    weights: dict[str, float] | None = None,
) -> Any:
    """Return an ``onnx.ModelProto`` that satisfies the serving contract.

    ``weights`` replaces the logit weights of named node features (default: ``est_delay_s``
    -4, ``resident`` 0.5, ``queue_len`` -0.5); e.g. ``{"est_delay_s": 4.0}`` builds a policy
    that prefers the slowest node, a deliberately worse candidate for the rollout gate's tests.
    """
    import onnx
    from onnx import TensorProto, helper

    dims = SPEC.dims
    logit_w = [0.0] * dims["node"]
    names = [d.name for d in NODE_FEATURES]
    logit_w[names.index("est_delay_s")] = -4.0
    logit_w[names.index("resident")] = 0.5
    logit_w[names.index("queue_len")] = -0.5
    for feature, value in (weights or {}).items():
        logit_w[names.index(feature)] = value
    f32, b = TensorProto.FLOAT, TensorProto.BOOL
    inputs = [
        helper.make_tensor_value_info("node_features", f32, ["B", "N", dims["node"]]),
        helper.make_tensor_value_info("node_mask", b, ["B", "N"]),
        helper.make_tensor_value_info("task_features", f32, ["B", dims["task"]]),
        helper.make_tensor_value_info("global_features", f32, ["B", dims["global"]]),
        helper.make_tensor_value_info("latent_start", f32, ["B", "N", latent_dim]),
        helper.make_tensor_value_info("noise", f32, ["B", diffusion_steps, "N", latent_dim]),
    ]
    outputs = [
        helper.make_tensor_value_info("action_probs", f32, ["B", "N"]),
        helper.make_tensor_value_info("latent", f32, ["B", "N", latent_dim]),
    ]
    init = [
        helper.make_tensor("w", f32, [dims["node"], 1], logit_w),
        helper.make_tensor("squeeze_axes", TensorProto.INT64, [1], [2]),
        helper.make_tensor("noise_scale", f32, [], [0.05]),
        helper.make_tensor("ctx_scale", f32, [], [0.01]),
        helper.make_tensor("half", f32, [], [0.5]),
        helper.make_tensor("neg_big", f32, [], [-1e9]),
    ]
    node = helper.make_node
    nodes = [
        node("MatMul", ["node_features", "w"], ["lin3"]),
        node("Squeeze", ["lin3", "squeeze_axes"], ["lin"]),
        node("ReduceMean", ["noise"], ["noise_bn"], axes=[1, 3], keepdims=0),
        node("Mul", ["noise_bn", "noise_scale"], ["noise_term"]),
        node("ReduceMean", ["latent_start"], ["lat_bn"], axes=[2], keepdims=0),
        node("ReduceMean", ["task_features"], ["task_b1"], axes=[1], keepdims=1),
        node("ReduceMean", ["global_features"], ["glob_b1"], axes=[1], keepdims=1),
        node("Add", ["task_b1", "glob_b1"], ["ctx_b1"]),
        node("Mul", ["ctx_b1", "ctx_scale"], ["ctx_term"]),
        node("Add", ["lin", "noise_term"], ["l1"]),
        node("Add", ["l1", "lat_bn"], ["l2"]),
        node("Add", ["l2", "ctx_term"], ["logits"]),
        node("Where", ["node_mask", "logits", "neg_big"], ["masked"]),
        node("Softmax", ["masked"], ["soft"], axis=-1),
        node("Cast", ["node_mask"], ["mask_f"], to=f32),
        node("Mul", ["soft", "mask_f"], ["action_probs"]),
        node("ReduceMean", ["noise"], ["noise_bnl"], axes=[1], keepdims=0),
        node("Mul", ["latent_start", "half"], ["lat_half"]),
        node("Add", ["lat_half", "noise_bnl"], ["latent"]),
    ]
    graph = helper.make_graph(nodes, "ladts-untrained", inputs, outputs, init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    meta = make_metadata(
        policy_version=policy_version,
        diffusion_steps=diffusion_steps,
        latent_dim=latent_dim,
        training_scenario="none (untrained)",
        training_seed=0,
        created="1970-01-01T00:00:00Z",
    )
    meta.update(extra_metadata or {})
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    return model


def write_untrained_policy(path: Path, **kwargs: Any) -> Path:
    """Write :func:`build_untrained_policy` to ``path`` (atomically) and return it."""
    import onnx

    model = build_untrained_policy(**kwargs)
    tmp = path.with_name(path.name + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(path)
    return path
