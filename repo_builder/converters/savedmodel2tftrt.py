"""SavedModel -> TF-TRT SavedModel with TrtGraphConverterV2, here or at deployment.

The conversion is a generated Python script, the recipe (`templates/build_tftrt.py.j2`): the spec's
precision, segment size, workspace, cached engines, profile strategy, INT8 calibration data, and
`converter.build()` over inputs up to max_batch_size, so the engines exist before the first request.
TensorFlow 2.18 and newer wheels have no TensorRT, so where TF-TRT is missing (here, usually) the build
writes `<model>/<version>/{build_tftrt.py, tftrt_source.savedmodel/, calibration.npz}` and the
deployment runs the recipe in NVIDIA's TensorFlow container of the server's release, which writes
model.savedmodel beside them (deferrable, like onnx2plan's trtexec recipe). Where TF-TRT is available
the same recipe runs here. `converter.summary()` and the share of ops converted go to the build log; a
conversion that converted nothing is reported loudly.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from repo_builder import deps
from repo_builder.converters.base import Context, Converted, Format
from repo_builder.errors import ConversionError, MissingDependencyError
from repo_builder.repository.layout import CALIBRATION_DATA_NAME, TFTRT_RECIPE_NAME, TFTRT_SOURCE_NAME
from repo_builder.repository.manifest import ModelStatus
from repo_builder.spec.models import ModelSpec, TFTRTBuild
from repo_builder.triton.platforms import artifact_name

NO_TFTRT = (
    "target tftrt needs TensorFlow built with TensorRT (TF-TRT), and this TensorFlow{version} is not: TensorFlow "
    "2.18 and newer wheels are built without TensorRT. The build writes the SavedModel and the TF-TRT recipe "
    "instead, and the compose file's tftrt-builder converts it on the GPU host in the NGC TensorFlow container "
    "of the server's release (nvcr.io/nvidia/tensorflow:<yy.mm>-tf2-py3). Converting at build time needs "
    "TensorFlow <= 2.17 with TensorRT on an NVIDIA GPU host, in an environment of its own (this project pins a "
    "newer TensorFlow). Other targets: savedmodel (add optimization: {{tensorrt: true}} for online TF-TRT inside "
    "Triton's TensorFlow backend), onnx (optionally with the ONNX Runtime TensorRT accelerator), tensorrt (ONNX "
    "plus a trtexec recipe built at deployment) and python."
)
#: why a tftrt model is left to the deployment (the build log and the manifest's notes)
DEFERRED = (
    "TF-TRT is converted at deployment: TensorFlow{version} has no TensorRT, so the recipe {recipe} runs in "
    "nvcr.io/nvidia/tensorflow:<yy.mm>-tf2-py3 on the target GPU before Triton starts"
)


def capability_message(tf_version: str | None, tensorrt_build: bool) -> str | None:
    """None when TF-TRT can run, else what works instead (pure: tested without TensorFlow)."""
    if tensorrt_build:
        return None
    return NO_TFTRT.format(version=f" ({tf_version})" if tf_version else "")


def converter_kwargs(model: ModelSpec, src: Path) -> dict[str, Any]:
    """Arguments of TrtGraphConverterV2 (names as in TensorFlow's trt_convert.py: the keyword arguments,
    not the deprecated conversion_params); precision as a string."""
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


def recipe_script(model: ModelSpec, version: int) -> str:
    """The TF-TRT recipe of one version (templates/build_tftrt.py.j2): a Python script that reads the
    files next to it and writes model.savedmodel there."""
    from repo_builder.render.config import render_template
    from repo_builder.triton import dtypes

    kwargs = converter_kwargs(model, Path(TFTRT_SOURCE_NAME))
    del kwargs["input_saved_model_dir"]  # the script's own folder decides it
    int8 = model.precision == "int8"
    calibration = model.calibration
    return render_template(
        "build_tftrt.py.j2",
        model=model.name,
        version=version,
        script_file=TFTRT_RECIPE_NAME,
        source_file=TFTRT_SOURCE_NAME,
        calibration_file=CALIBRATION_DATA_NAME,
        source_name=repr(TFTRT_SOURCE_NAME),
        calibration_name=repr(CALIBRATION_DATA_NAME),
        calibration=int8 and calibration is not None,
        converter_args=[(repr(k), repr(v)) for k, v in kwargs.items()],
        inputs=[(repr(t.name), repr(dtypes.to_numpy(t.dtype))) for t in model.inputs or []],
        build_shapes=[[(repr(n), repr(s)) for n, s in shapes.items()] for shapes in build_shapes(model)],
        calibration_batch_size=calibration.batch_size if calibration else 8,
        calibration_max_batches=calibration.max_batches if calibration else 16,
    )


def load_recipe(path: Path) -> ModuleType:
    """A recipe script as a module (its functions run here: the local conversion, and the tests)."""
    name = f"_repo_builder_tftrt_recipe_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class SavedModel2TFTRT:
    name: ClassVar[str] = "savedmodel2tftrt"
    source: ClassVar[Format] = "savedmodel"
    target: ClassVar[Format] = "tftrt"
    #: without TF-TRT here, convert() writes the recipe that the deployment runs
    deferrable: ClassVar[bool] = True

    def available(self) -> str | None:
        if not deps.is_available("tensorflow"):
            return "TensorFlow is missing: " + deps.install_hint("tensorflow")
        tf = deps.require("tensorflow")

        return capability_message(tf.__version__, bool(tf.sysconfig.get_build_info().get("is_tensorrt_build")))

    def convert(self, model: ModelSpec, src: Path, out: Path, ctx: Context) -> Converted:
        problem = self.available()
        if not deps.is_available("tensorflow"):  # only a missing TensorRT is left to the deployment
            raise MissingDependencyError(f"model {model.name}: {problem}")
        recipe_dir = out / "recipe"
        recipe_dir.mkdir(parents=True, exist_ok=True)
        calibration: Path | None = None
        if model.precision == "int8" and model.calibration is not None:
            calibration = recipe_dir / CALIBRATION_DATA_NAME  # a copy: placing the artifacts moves it
            shutil.copy2(ctx.spec_dir / model.calibration.data, calibration)
        scripts: dict[int, Path] = {}
        for v in model.versions:
            scripts[v] = recipe_dir / str(v) / TFTRT_RECIPE_NAME
            scripts[v].parent.mkdir(parents=True, exist_ok=True)
            scripts[v].write_text(recipe_script(model, v))
            scripts[v].chmod(0o755)
        first = model.versions[0]
        ctx.log.info("TF-TRT recipe %s/%d/%s:\n%s", model.name, first, TFTRT_RECIPE_NAME, scripts[first].read_text())
        if problem is None:
            return self._convert_here(model, src, out, ctx, scripts[first], calibration)
        recipes = {v: f"{model.name}/{v}/{TFTRT_RECIPE_NAME}" for v in model.versions}
        ctx.log.warning("%s", problem)
        tf = deps.require("tensorflow")
        note = DEFERRED.format(version=f" {tf.__version__}", recipe=recipes[first])
        ctx.log.info("%s", note)
        files: dict[str, Path] = {TFTRT_SOURCE_NAME: src}
        if calibration is not None:
            files[CALIBRATION_DATA_NAME] = calibration
        return Converted(
            src,
            "tftrt",
            status=ModelStatus.RECIPE,
            notes=[
                note,
                "verified the SavedModel TF-TRT converts; check the TF-TRT model itself through Triton with "
                "`repo-builder validate`",
            ],
            files=files,
            version_files={v: {TFTRT_RECIPE_NAME: path} for v, path in scripts.items()},
            manifest={"recipe": recipes[first], "recipes": recipes},
        )

    def _convert_here(
        self, model: ModelSpec, src: Path, out: Path, ctx: Context, script: Path, calibration: Path | None
    ) -> Converted:
        """TF-TRT is available: run the recipe's conversion in this process."""
        recipe = load_recipe(script)
        target = out / artifact_name(self.target)
        ctx.log.info("TrtGraphConverterV2(%s)", recipe.converter_kwargs(src))
        try:
            summary = recipe.convert(src, target, calibration)
        except SystemExit as e:  # the recipe's own checks
            raise ConversionError(f"model {model.name}: TF-TRT conversion failed: {e}") from e
        except Exception as e:
            raise ConversionError(f"model {model.name}: TF-TRT conversion failed: {type(e).__name__}: {e}") from e
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
            files={target.name: target},
            manifest={"tftrt_ops_converted": list(share) if share else None},
        )
