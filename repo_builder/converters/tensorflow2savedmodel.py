"""Any TensorFlow source -> a SavedModel whose serving signature uses the names the user sees.

Keras 3's `tf.saved_model.save` renames tensors (`inputs`, `output_0`). We export through an explicit
`tf.function` whose input TensorSpecs carry the Keras Input names (or signature keys) and which returns a
dict keyed by the output names, so the served names are the ones in the spec and in `repo-builder inspect`.
A TF1 SavedModel (no object graph, variables restored by its own ops) is copied as it is: a TF2 function
around it loses the variables' initialisation, while tf2onnx and Triton's TensorFlow backend take the folder.
A tensor of unknown rank is exported with the shape the spec gives it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, ClassVar

from repo_builder import deps
from repo_builder.converters.base import Context, Converted, Format
from repo_builder.errors import ConversionError
from repo_builder.inspect.tensors import Loaded
from repo_builder.spec.models import ModelSpec
from repo_builder.triton.platforms import artifact_name


class TensorFlow2SavedModel:
    name: ClassVar[str] = "tensorflow2savedmodel"
    source: ClassVar[Format] = "tensorflow"
    target: ClassVar[Format] = "savedmodel"
    deferrable: ClassVar[bool] = False

    def available(self) -> str | None:
        return None if deps.is_available("tensorflow") else "TensorFlow is missing: " + deps.install_hint("tensorflow")

    def convert(self, model: ModelSpec, src: Path, out: Path, ctx: Context) -> Converted:
        tf = deps.require("tensorflow")

        from repo_builder.inspect.resolve import model_shape
        from repo_builder.inspect.sources import load_source
        from repo_builder.triton import dtypes

        loaded = ctx.loaded
        if loaded is None:
            assert model.source is not None
            loaded = ctx.loaded = load_source(model.source, ctx.spec_dir, model.signature)
        if loaded.kind == "saved_model_v1":
            return self._copy_tf1(model, loaded, out, ctx)
        in_names = [t.name for t in loaded.inputs]
        out_names = [t.name for t in loaded.outputs]
        given = {t.name: t for t in model.inputs or []}
        specs = [
            tf.TensorSpec(
                shape=list(t.shape if t.shape is not None else model_shape(given[t.name], model.max_batch_size)),
                dtype=tf.as_dtype(dtypes.to_tensorflow(t.dtype)),
                name=t.name,
            )
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
        target = out / artifact_name(self.target)
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
        return Converted(target, "savedmodel", files={target.name: target})

    def _copy_tf1(self, model: ModelSpec, loaded: Loaded, out: Path, ctx: Context) -> Converted:
        from repo_builder.inspect.sources import read_signature

        assert model.source is not None
        original = ctx.spec_dir / model.source.ref
        got_in, got_out = read_signature(original, model.signature)
        have = {t.name for t in [*got_in, *got_out]}
        served = [t.name for t in [*loaded.inputs, *loaded.outputs]]
        if not set(served) <= have:
            raise ConversionError(
                f"model {model.name}: a TF1 SavedModel is served as it is, with its signature's names "
                f"{sorted(have)}; the spec renames them to {sorted(set(served) - have)}. Use the signature's "
                "names in the spec (see `repo-builder inspect`)"
            )
        target = out / artifact_name(self.target)
        shutil.copytree(original, target)
        ctx.log.info("TF1 SavedModel %s: copied as it is (a TF2 re-export would lose its variables)", original)
        note = "TF1 SavedModel: served and converted as it is"
        return Converted(target, "savedmodel", notes=[note], files={target.name: target})
