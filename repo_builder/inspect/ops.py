"""Which of a model's TensorFlow ops tf2onnx cannot convert: `inspect` suggests a target that runs it."""

from __future__ import annotations

from repo_builder import deps
from repo_builder.inspect.tensors import Loaded
from repo_builder.triton import dtypes

#: ops of a serving graph that tf2onnx's loader resolves itself (function calls, variables, plumbing)
_LOADER_OPS = frozenset(
    {
        "StatefulPartitionedCall", "PartitionedCall", "ReadVariableOp", "VarHandleOp", "AssignVariableOp",
        "VariableV2", "Assign", "NoOp", "Placeholder", "Const", "Identity", "IdentityN",
    }
)  # fmt: skip


def unconvertible_ops(loaded: Loaded, opset: int = 17) -> list[str]:
    """TensorFlow ops of the model's serving graph that tf2onnx has no conversion for at `opset`, or [] when
    that cannot be told cheaply (tf2onnx missing, a shape left open). The build's own check is the conversion."""
    if not deps.is_available("tf2onnx") or any(t.shape is None for t in loaded.inputs):
        return []
    try:
        tf = deps.require("tensorflow")
        import tf2onnx.custom_opsets  # the rest of the conversion's handlers (lookup tables, string case)
        import tf2onnx.onnx_opset  # noqa: F401 - registers the handlers
        from tf2onnx.handler import tf_op

        from repo_builder.converters.savedmodel2onnx import CUSTOM_OP_HANDLERS

        if loaded.kind == "saved_model_v1":
            graph_def = tf.compat.v1.graph_util.extract_sub_graph(
                loaded.trackable.graph.as_graph_def(), sorted({f.split(":")[0] for f in loaded.fetches})
            )
        else:
            specs = {
                t.name: tf.TensorSpec(t.shape, tf.as_dtype(dtypes.to_tensorflow(t.dtype)), name=t.name)
                for t in loaded.inputs
            }
            graph_def = tf.function(loaded.call).get_concrete_function(specs).graph.as_graph_def()
        ops = {n.op for n in graph_def.node} | {n.op for f in graph_def.library.function for n in f.node_def}
        known = set(tf_op.create_mapping(opset, [])) | set(CUSTOM_OP_HANDLERS) | _LOADER_OPS
        return sorted(ops - known)
    except Exception:  # a hint only: the conversion itself says what fails
        return []
