"""SavedModel -> ONNX with tf2onnx, checked with onnx.checker. ONNX I/O names = the signature keys."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from repo_builder import deps
from repo_builder.converters.base import Context, Converted, Format
from repo_builder.errors import ConversionError
from repo_builder.spec.models import ModelSpec

#: what the conversion imports (all installed by the same extra)
_NEEDS = ("tensorflow", "tf2onnx", "onnx")


def cli_line(saved_model: Path, output: Path, opset: int, signature: str) -> str:
    """The tf2onnx command line that does the same conversion (for the log)."""
    return (
        f"python -m tf2onnx.convert --saved-model {saved_model} --output {output} --opset {opset} "
        f"--signature_def {signature} --tag serve"
    )


class SavedModel2Onnx:
    name: ClassVar[str] = "savedmodel2onnx"
    source: ClassVar[Format] = "savedmodel"
    target: ClassVar[Format] = "onnx"
    deferrable: ClassVar[bool] = False

    def available(self) -> str | None:
        missing = [m for m in _NEEDS if not deps.is_available(m)]
        return f"{', '.join(missing)} missing: {deps.install_hint(missing[0])}" if missing else None

    def convert(self, model: ModelSpec, src: Path, out: Path, ctx: Context) -> Converted:
        deps.require("tensorflow")
        onnx = deps.require("onnx")
        tf2onnx = deps.require("tf2onnx")
        tf_loader = deps.require("tf2onnx.tf_loader")

        target = out / "model.onnx"
        ctx.log.info("equivalent command: %s", cli_line(src, target, model.opset, model.signature))
        try:
            graph_def, inputs, outputs, rename = tf_loader.from_saved_model(
                str(src), None, None, tag="serve", signatures=[model.signature], return_tensors_to_rename=True
            )
            model_proto, _ = tf2onnx.convert.from_graph_def(
                graph_def,
                name=model.name,
                input_names=inputs,
                output_names=outputs,
                opset=model.opset,
                tensors_to_rename=rename,
                output_path=str(target),
            )
        except Exception as e:
            raise ConversionError(
                f"model {model.name}: tf2onnx failed (opset {model.opset}): {type(e).__name__}: {e}\n"
                f"Reproduce with: {cli_line(src, target, model.opset, model.signature)}"
            ) from e
        try:
            onnx.checker.check_model(str(target))
        except Exception as e:
            raise ConversionError(f"model {model.name}: onnx.checker rejects {target}: {e}") from e
        names_in = [i.name for i in model_proto.graph.input]
        names_out = [o.name for o in model_proto.graph.output]
        ctx.log.info("ONNX opset %d inputs %s outputs %s", model.opset, names_in, names_out)
        expected_in = sorted(t.name for t in model.inputs or [])
        expected_out = sorted(t.name for t in model.outputs or [])
        if sorted(names_in) != expected_in or sorted(names_out) != expected_out:
            raise ConversionError(
                f"model {model.name}: the ONNX tensors are named {names_in} -> {names_out}, "
                f"expected {expected_in} -> {expected_out}"
            )
        return Converted(target, "onnx", files={"model.onnx": target})
