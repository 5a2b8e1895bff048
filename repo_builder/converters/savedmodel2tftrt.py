"""SavedModel -> TF-TRT SavedModel with TrtGraphConverterV2 (needs TensorFlow built with TensorRT).

Engines are built ahead of time with `converter.build()` over inputs up to max_batch_size, so the first
request does not pay for them. `converter.summary()` and the share of ops converted go to the build log;
a conversion that converted nothing is reported loudly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from repo_builder import deps
from repo_builder.converters.base import Context, Converted, Format
from repo_builder.errors import ConversionError, MissingDependencyError
from repo_builder.spec.models import ModelSpec, TFTRTBuild

NO_TFTRT = (
    "target tftrt needs TensorFlow built with TensorRT (TF-TRT), and this TensorFlow{version} is not: "
    "TensorFlow "
    "2.18 and newer wheels are built without TensorRT. It works with TensorFlow <= 2.17 plus TensorRT on an "
    "NVIDIA GPU host (pip install 'tensorflow[and-cuda]==2.17.*' tensorrt), or inside an NGC TensorFlow "
    "container "
    "(nvcr.io/nvidia/tensorflow:<yy.mm>-tf2-py3). Targets that work here: savedmodel (add optimization: "
    "{{tensorrt: true}} for online TF-TRT inside Triton's TensorFlow backend), onnx (optionally with the "
    "ONNX "
    "Runtime TensorRT accelerator), tensorrt (ONNX plus a trtexec recipe built at deployment) and python."
)


def capability_message(tf_version: str | None, tensorrt_build: bool) -> str | None:
    """None when TF-TRT can run, else what works instead (pure: tested without TensorFlow)."""
    if tensorrt_build:
        return None
    return NO_TFTRT.format(version=f" ({tf_version})" if tf_version else "")


def converter_kwargs(model: ModelSpec, src: Path) -> dict[str, Any]:
    """Arguments of TrtGraphConverterV2 (names as in TensorFlow's trt_convert.py); precision as a string."""
    settings = model.tftrt or TFTRTBuild()
    dynamic = model.max_batch_size > 0 or any(-1 in t.dims for t in model.inputs or [])
    kwargs: dict[str, Any] = {
        "input_saved_model_dir": str(src),
        "input_saved_model_signature_key": model.signature,
        "precision_mode": model.precision.upper(),
        "minimum_segment_size": settings.minimum_segment_size,
        "max_workspace_size_bytes": settings.max_workspace_size_bytes,
        "maximum_cached_engines": settings.maximum_cached_engines,
        "use_dynamic_shape": dynamic,
        "allow_build_at_runtime": settings.allow_build_at_runtime,
    }
    if dynamic:
        kwargs["dynamic_shape_profile_strategy"] = settings.profile_strategy
    if model.precision == "int8":
        kwargs["use_calibration"] = True
    return kwargs


def build_shapes(model: ModelSpec, variable: int = 8) -> list[dict[str, tuple[int, ...]]]:
    """Input shapes for converter.build(): batch 1, the middle and max_batch_size.

    Variable dims become `variable`.
    """
    mbs = model.max_batch_size
    batches = sorted({1, max(1, mbs // 2), mbs}) if mbs > 0 else [0]
    found = []
    for b in batches:
        shapes = {}
        for t in model.inputs or []:
            dims = [variable if d == -1 else d for d in (t.reshape if t.reshape is not None else t.dims)]
            shapes[t.name] = tuple([b, *dims] if mbs > 0 else dims)
        found.append(shapes)
    return found


_RATIO = re.compile(r"% of OPs Converted: ([0-9.]+)% \[(\d+)/(\d+)\]")


def converted_share(summary: str) -> tuple[int, int] | None:
    """(converted, total) from converter.summary() text, or None when the line is absent."""
    m = _RATIO.search(summary)
    return (int(m.group(2)), int(m.group(3))) if m else None


class SavedModel2TFTRT:
    name: ClassVar[str] = "savedmodel2tftrt"
    source: ClassVar[Format] = "savedmodel"
    target: ClassVar[Format] = "tftrt"
    deferrable: ClassVar[bool] = False

    def available(self) -> str | None:
        if not deps.is_available("tensorflow"):
            return "TensorFlow is missing: " + deps.install_hint("tensorflow")
        tf = deps.require("tensorflow")

        return capability_message(tf.__version__, bool(tf.sysconfig.get_build_info().get("is_tensorrt_build")))

    def convert(self, model: ModelSpec, src: Path, out: Path, ctx: Context) -> Converted:
        problem = self.available()
        if problem:
            raise MissingDependencyError(f"model {model.name}: {problem}")
        import numpy as np

        from repo_builder.triton import dtypes

        trt = deps.require("tensorflow.python.compiler.tensorrt.trt_convert")
        kwargs = converter_kwargs(model, src)
        ctx.log.info("TrtGraphConverterV2(%s)", kwargs)
        converter = trt.TrtGraphConverterV2(**kwargs)
        dtype_of = {t.name: dtypes.to_numpy(t.dtype) for t in model.inputs or []}
        names = [t.name for t in model.inputs or []]

        def calibration() -> Iterator[list[Any]]:
            assert model.calibration is not None
            data = np.load(ctx.spec_dir / model.calibration.data)
            size = model.calibration.batch_size
            rows = len(data[names[0]])
            for i in range(0, min(rows, size * model.calibration.max_batches), size):
                yield [data[n][i : i + size].astype(dtype_of[n]) for n in names]

        try:
            converter.convert(calibration_input_fn=calibration if model.precision == "int8" else None)

            def build_inputs() -> Iterator[list[Any]]:
                rng = np.random.default_rng(0)
                for shapes in build_shapes(model):
                    yield [rng.random(shapes[n]).astype(dtype_of[n]) for n in names]

            converter.build(input_fn=build_inputs)
            target = out / "model.savedmodel"
            converter.save(str(target))
        except Exception as e:
            raise ConversionError(f"model {model.name}: TF-TRT conversion failed: {type(e).__name__}: {e}") from e
        lines: list[str] = []
        converter.summary(print_fn=lines.append)
        summary = "\n".join(lines)
        ctx.log.info("TF-TRT summary:\n%s", summary)
        share = converted_share(summary)
        notes = []
        if share is not None:
            done, total = share
            ctx.log.info("TF-TRT converted %d of %d ops (%.1f%%)", done, total, 100 * done / max(total, 1))
            if done == 0:
                ctx.log.warning("TF-TRT CONVERTED NOTHING: the model runs entirely in TensorFlow")
                notes.append("WARNING: TF-TRT converted no ops; the SavedModel runs without TensorRT")
            else:
                notes.append(f"TF-TRT converted {done}/{total} ops")
        return Converted(
            target,
            "tftrt",
            notes=notes,
            files={"model.savedmodel": target},
            manifest={"tftrt_ops_converted": list(share) if share else None},
        )
