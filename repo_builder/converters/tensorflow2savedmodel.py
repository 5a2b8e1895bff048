"""Any TensorFlow source -> a SavedModel whose serving signature uses the names the user sees.

Keras 3's `tf.saved_model.save` renames tensors (`inputs`, `output_0`). We export through an explicit
`tf.function` whose input TensorSpecs carry the Keras Input names (or signature keys) and which returns a
dict keyed by the output names, so the served names are the ones in the spec and in `repo-builder inspect`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from repo_builder import deps
from repo_builder.converters.base import Context, Converted, Format
from repo_builder.errors import ConversionError
from repo_builder.spec.models import ModelSpec


class TensorFlow2SavedModel:
    name: ClassVar[str] = "tensorflow2savedmodel"
    source: ClassVar[Format] = "tensorflow"
    target: ClassVar[Format] = "savedmodel"
    deferrable: ClassVar[bool] = False

    def available(self) -> str | None:
        return None if deps.is_available("tensorflow") else "TensorFlow is missing: " + deps.install_hint("tensorflow")

    def convert(self, model: ModelSpec, src: Path, out: Path, ctx: Context) -> Converted:
        tf = deps.require("tensorflow")

        from repo_builder.inspect.sources import load_source
        from repo_builder.triton import dtypes

        loaded = ctx.loaded
        if loaded is None:
            assert model.source is not None
            loaded = ctx.loaded = load_source(model.source, ctx.spec_dir, model.signature)
        in_names = [t.name for t in loaded.inputs]
        out_names = [t.name for t in loaded.outputs]
        specs = [
            tf.TensorSpec(shape=list(t.shape), dtype=tf.as_dtype(dtypes.to_tensorflow(t.dtype)), name=t.name)
            for t in loaded.inputs
        ]
        call = loaded.call

        @tf.function(input_signature=specs)
        def serve(*args: Any) -> dict[str, Any]:
            result = call(dict(zip(in_names, args, strict=True)))
            return {n: tf.identity(result[n], name=n) for n in out_names}

        holder = tf.Module()
        holder.model = loaded.trackable
        holder.serve = serve
        target = out / "model.savedmodel"
        ctx.log.info("exporting SavedModel: signature %r inputs %s outputs %s", model.signature, in_names, out_names)
        try:
            tf.saved_model.save(holder, str(target), signatures={model.signature: serve.get_concrete_function()})
        except Exception as e:
            raise ConversionError(
                f"model {model.name}: exporting the SavedModel failed: {type(e).__name__}: {e}"
            ) from e
        from repo_builder.inspect.sources import read_signature

        got_in, got_out = read_signature(target, model.signature)
        ctx.log.info("exported signature inputs %s outputs %s", [t.name for t in got_in], [t.name for t in got_out])
        if sorted(t.name for t in got_in) != sorted(in_names) or sorted(t.name for t in got_out) != sorted(out_names):
            raise ConversionError(
                f"model {model.name}: the exported signature names {[t.name for t in got_in]} -> "
                f"{[t.name for t in got_out]} differ from the model's {in_names} -> {out_names}"
            )
        return Converted(target, "savedmodel", files={"model.savedmodel": target})
