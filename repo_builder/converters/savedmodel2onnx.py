"""SavedModel -> ONNX with tf2onnx, checked with onnx.checker. ONNX I/O names = the signature keys.

tf2onnx lower-cases some tensor names (Triton's `INPUT0` comes out as `input0`): the graph's inputs and
outputs are renamed back to the signature's names with the onnx API. TensorFlow's `Erfc` (exact GELU:
DistilBERT, ViT, ConvNeXt) has no tf2onnx handler: it is converted as 1 - Erf(x). An op tf2onnx still cannot
convert is named in the error, with the targets that run the model as TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from repo_builder import deps
from repo_builder.converters.base import Context, Converted, Format
from repo_builder.errors import ConversionError
from repo_builder.spec.models import ModelSpec
from repo_builder.triton.platforms import artifact_name

#: what the conversion imports (all installed by the same extra)
_NEEDS = ("tensorflow", "tf2onnx", "onnx")

#: the targets that run a model as TensorFlow, for a model tf2onnx cannot convert
TENSORFLOW_TARGETS = "savedmodel, or python with `python_runtime: tensorflow`"


def cli_line(saved_model: Path | str, output: Path | str, opset: int, signature: str) -> str:
    """The tf2onnx command line that does the same conversion (for the log)."""
    return (
        f"python -m tf2onnx.convert --saved-model {saved_model} --output {output} --opset {opset} "
        f"--signature_def {signature} --tag serve"
    )


def reproduce_line(model: ModelSpec, spec_dir: Path) -> str:
    """A tf2onnx command on a folder that still exists after the build (the staging folder does not)."""
    if model.source is not None and model.source.kind == "saved_model":
        folder = (spec_dir / model.source.ref).resolve()
        return cli_line(folder, artifact_name("onnx"), model.opset, model.signature)
    command = cli_line(f"<model>/1/{artifact_name('savedmodel')}", artifact_name("onnx"), model.opset, model.signature)
    return f"build the model with `target: savedmodel`, then {command}"


def _erfc(ctx: Any, node: Any, name: str, args: Any) -> None:
    """tf2onnx handler: Erfc(x) = 1 - Erf(x) (ONNX has Erf since opset 9, no Erfc)."""
    import numpy as np
    from tf2onnx import utils

    dtype = ctx.get_dtype(node.output[0])
    shape = ctx.get_shape(node.output[0])
    one = ctx.make_const(utils.make_name(f"{name}_one"), np.array(1, dtype=utils.map_onnx_to_numpy_type(dtype)))
    node.type = "Erf"
    sub = ctx.insert_new_node_on_output("Sub", node.output[0], inputs=[one.output[0], node.output[0]])
    ctx.set_dtype(sub.output[0], dtype)
    ctx.set_shape(sub.output[0], shape)


#: TensorFlow ops tf2onnx has no handler for, converted here: op -> (handler, args)
CUSTOM_OP_HANDLERS: dict[str, tuple[Any, list[Any]]] = {"Erfc": (_erfc, [])}


def unconverted_ops(model_proto: Any) -> dict[str, int]:
    """Ops left in the ONNX graph that ONNX does not define (the TensorFlow ops tf2onnx could not convert)."""
    import onnx

    found: dict[str, int] = {}

    def walk(graph: Any) -> None:
        for node in graph.node:
            if not onnx.defs.has(node.op_type, node.domain or ""):
                found[node.op_type] = found.get(node.op_type, 0) + 1
            for attr in node.attribute:
                for g in [attr.g] if attr.HasField("g") else list(attr.graphs):
                    walk(g)

    walk(model_proto.graph)
    return dict(sorted(found.items()))


def _key(name: str) -> str:
    return name.removesuffix(":0").lower()


def restore_names(model_proto: Any, inputs: list[str], outputs: list[str]) -> dict[str, str]:
    """Give the graph's inputs and outputs the signature's names where tf2onnx changed their case; returns
    the renaming (ONNX name -> signature name)."""
    mapping: dict[str, str] = {}
    graph = model_proto.graph
    for values, expected in ((graph.input, inputs), (graph.output, outputs)):
        want: dict[str, list[str]] = {}
        for e in expected:
            want.setdefault(_key(e), []).append(e)
        for v in values:
            match = want.get(_key(v.name), [])
            if v.name not in expected and len(match) == 1:
                mapping[v.name] = match[0]
    if not mapping:
        return {}

    def rename(graph: Any) -> None:
        for node in graph.node:
            for i, n in enumerate(node.input):
                node.input[i] = mapping.get(n, n)
            for i, n in enumerate(node.output):
                node.output[i] = mapping.get(n, n)
            for attr in node.attribute:
                for g in [attr.g] if attr.HasField("g") else list(attr.graphs):
                    rename(g)
        for items in (graph.input, graph.output, graph.value_info, graph.initializer):
            for item in items:
                item.name = mapping.get(item.name, item.name)

    rename(graph)
    return mapping


def fill_output_shapes(model_proto: Any, model: ModelSpec) -> list[str]:
    """Give each graph output tf2onnx left without a shape (a lookup table's result) the spec's shape, the
    batch dim and -1 as symbolic dims: onnx.checker requires a shape there. Returns the outputs filled."""
    from repo_builder.inspect.resolve import model_shape

    given = {t.name: t for t in model.outputs or []}
    filled = []
    for out in model_proto.graph.output:
        tensor_type = out.type.tensor_type
        if out.name not in given or tensor_type.HasField("shape"):
            continue
        shape = tensor_type.shape  # accessing it sets the field: an empty shape is rank 0
        for i, d in enumerate(model_shape(given[out.name], model.max_batch_size)):
            if d is None:
                shape.dim.add().dim_param = f"{out.name}_dim{i}"
            else:
                shape.dim.add().dim_value = d
        filled.append(out.name)
    return filled


def _freeze_tf1(path: Path, signature: str) -> tuple[Any, list[str], list[str], dict[str, str]]:
    """A TF1 SavedModel's signature as a frozen GraphDef, loaded in a v1 Session as TF Serving does (tf2onnx's
    own loader goes through TF2's and fails on a signature that returns a variable, DT_FLOAT_REF)."""
    tf = deps.require("tensorflow")
    from repo_builder.inspect.tf1 import tf1_tags

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as session:
        meta = v1.saved_model.loader.load(session, tf1_tags(path, signature), str(path))
        sd = meta.signature_def[signature]
        outputs = [v.name for v in sd.outputs.values()]
        frozen = v1.graph_util.convert_variables_to_constants(
            session, graph.as_graph_def(), sorted({n.split(":")[0] for n in outputs})
        )
    inputs = [v.name for v in sd.inputs.values()]
    rename = {v.name: k for k, v in [*sd.inputs.items(), *sd.outputs.items()]}
    return frozen, inputs, outputs, rename


class SavedModel2Onnx:
    name: ClassVar[str] = "savedmodel2onnx"
    source: ClassVar[Format] = "savedmodel"
    target: ClassVar[Format] = "onnx"
    deferrable: ClassVar[bool] = False

    def available(self) -> str | None:
        missing = [m for m in _NEEDS if not deps.is_available(m)]
        return f"{', '.join(missing)} missing: {deps.install_hint(missing[0])}" if missing else None

    def convert(self, model: ModelSpec, src: Path, out: Path, ctx: Context) -> Converted:
        tf = deps.require("tensorflow")
        onnx = deps.require("onnx")
        tf2onnx = deps.require("tf2onnx")
        tf_loader = deps.require("tf2onnx.tf_loader")

        target = out / artifact_name(self.target)
        reproduce = reproduce_line(model, ctx.spec_dir)
        ctx.log.info("converting %s with tf2onnx; equivalent command: %s", src.name, reproduce)
        from repo_builder.inspect.tf1 import is_tf1_saved_model

        try:
            tables: dict[Any, Any] = {}
            if is_tf1_saved_model(src):
                graph_def, inputs, outputs, rename = _freeze_tf1(src, model.signature)
            else:
                graph_def, inputs, outputs, tables, rename = tf_loader.from_saved_model(
                    str(src),
                    None,
                    None,
                    tag="serve",
                    signatures=[model.signature],
                    return_initialized_tables=True,
                    return_tensors_to_rename=True,
                )
            options: dict[str, Any] = {
                "name": model.name,
                "input_names": inputs,
                "output_names": outputs,
                "opset": model.opset,
                "custom_op_handlers": CUSTOM_OP_HANDLERS,
                "tensors_to_rename": rename,
            }
            if tables:
                # lookup tables (tf.lookup, StringLookup): from_graph_def has no parameter for their contents,
                # so convert as tf2onnx's own command line does with a SavedModel (the graph is frozen already)
                with tf.device("/cpu:0"):
                    model_proto, _ = tf2onnx.convert._convert_common(
                        graph_def, continue_on_error=True, initialized_tables=tables, **options
                    )
            else:
                model_proto, _ = tf2onnx.convert.from_graph_def(graph_def, **options)
        except Exception as e:
            raise ConversionError(
                f"model {model.name}: tf2onnx failed (opset {model.opset}): {type(e).__name__}: {e}\n"
                f"Targets that run the model as TensorFlow: {TENSORFLOW_TARGETS}.\n"
                f"Reproduce with: {reproduce}"
            ) from e
        left = unconverted_ops(model_proto)
        if left:
            raise ConversionError(
                f"model {model.name}: tf2onnx cannot convert these TensorFlow ops (opset {model.opset}): "
                + ", ".join(f"{op} (x{n})" for op, n in left.items())
                + f".\nTargets that run the model as TensorFlow: {TENSORFLOW_TARGETS}.\nReproduce with: {reproduce}"
            )
        expected_in = [t.name for t in model.inputs or []]
        expected_out = [t.name for t in model.outputs or []]
        renamed = restore_names(model_proto, expected_in, expected_out)
        if renamed:
            ctx.log.info("ONNX tensors renamed to the signature's names: %s", renamed)
        filled = fill_output_shapes(model_proto, model)
        if filled:
            ctx.log.info("ONNX outputs without a shape given the spec's: %s", filled)
        onnx.save(model_proto, str(target))
        try:
            onnx.checker.check_model(str(target))
        except Exception as e:
            raise ConversionError(
                f"model {model.name}: onnx.checker rejects the converted model: {e}\nReproduce with: {reproduce}"
            ) from e
        names_in = [i.name for i in model_proto.graph.input]
        names_out = [o.name for o in model_proto.graph.output]
        ctx.log.info("ONNX opset %d inputs %s outputs %s", model.opset, names_in, names_out)
        if sorted(names_in) != sorted(expected_in) or sorted(names_out) != sorted(expected_out):
            raise ConversionError(
                f"model {model.name}: the ONNX tensors are named {names_in} -> {names_out}, "
                f"expected {sorted(expected_in)} -> {sorted(expected_out)}"
            )
        return Converted(target, "onnx", files={target.name: target})
