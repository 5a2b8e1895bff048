"""ONNX -> TensorRT plan with the TensorRT 10 Python API, or a trtexec recipe built at deployment.

Plans are tied to the TensorRT version and GPU that build them, so a recipe is always made for
where model.plan goes: `<model>/<version>/{model.onnx, build_plan.sh}` (the tensorrt backend loads only
model.plan), paths relative to the repository root (it works with the repository mounted at /models).
The converter writes the recipe under its own `out` folder and returns the files by version
(`Converted.version_files`); the build places them in the repository.
Where TensorRT is importable the plan is also built here: explicit batch, one optimization profile
(min/opt/max from max_batch_size and the dynamic dims), FP16 or calibrated INT8, a workspace limit and a
timing cache.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path
from typing import Any, ClassVar

from repo_builder.converters.base import Context, Converted, Format
from repo_builder.errors import ConversionError
from repo_builder.repository.layout import (
    CALIBRATION_CACHE_NAME,
    ONNX_NAME,
    RECIPE_NAME,
    TIMING_CACHE_NAME,
    version_dir,
)
from repo_builder.repository.manifest import ModelStatus
from repo_builder.spec.models import ModelSpec, TensorRTBuild
from repo_builder.triton.platforms import artifact_name

#: min/opt/max of a variable (non-batch) dim when the spec's `tensorrt.shapes` does not give it
DEFAULT_VARIABLE = (1, 16, 128)

Shape = tuple[int, ...]


def profile_shapes(model: ModelSpec) -> dict[str, tuple[Shape, Shape, Shape]]:
    """Per input: (min, opt, max) full shapes, batch dim included when max_batch_size > 0."""
    settings = model.tensorrt or TensorRTBuild()
    mbs = model.max_batch_size
    opt_batch = settings.opt_batch_size or max(1, mbs // 2)
    found: dict[str, tuple[Shape, Shape, Shape]] = {}
    for t in model.inputs or []:
        dims = list(t.reshape) if t.reshape is not None else list(t.dims)
        given = settings.shapes.get(t.name)
        if given:
            lo, mid, hi = (list(given["min"]), list(given["opt"]), list(given["max"]))
        else:
            lo = [DEFAULT_VARIABLE[0] if d == -1 else d for d in dims]
            mid = [DEFAULT_VARIABLE[1] if d == -1 else d for d in dims]
            hi = [DEFAULT_VARIABLE[2] if d == -1 else d for d in dims]
        if mbs > 0:
            lo, mid, hi = [1, *lo], [min(opt_batch, mbs), *mid], [mbs, *hi]
        found[t.name] = (tuple(lo), tuple(mid), tuple(hi))
    return found


def _shapes_arg(shapes: dict[str, tuple[Shape, Shape, Shape]], which: int) -> str:
    return ",".join(f"{name}:{'x'.join(str(d) for d in s[which])}" for name, s in shapes.items())


def trtexec_args(model: ModelSpec, version: int, calibration_cache: bool = False) -> list[str]:
    """The trtexec command (paths relative to the repository root)."""
    settings = model.tensorrt or TensorRTBuild()
    base = f"{model.name}/{version}"
    shapes = profile_shapes(model)
    args = ["trtexec", f"--onnx={base}/{ONNX_NAME}", f"--saveEngine={base}/{artifact_name('plan')}"]
    if shapes:
        args += [
            f"--minShapes={_shapes_arg(shapes, 0)}",
            f"--optShapes={_shapes_arg(shapes, 1)}",
            f"--maxShapes={_shapes_arg(shapes, 2)}",
        ]
    if model.precision == "fp16":
        args.append("--fp16")
    elif model.precision == "int8":
        args += ["--int8", "--fp16"]
        if calibration_cache:
            args.append(f"--calib={base}/{CALIBRATION_CACHE_NAME}")
    args.append(f"--memPoolSize=workspace:{settings.workspace_mib}M")
    if settings.timing_cache:
        args.append(f"--timingCacheFile={base}/{TIMING_CACHE_NAME}")
    return args


#: trtexec in nvcr.io/nvidia/tensorrt images when it is not on PATH
TRTEXEC_FALLBACK = "/usr/src/tensorrt/bin/trtexec"


def recipe_script(model: ModelSpec, version: int, calibration_cache: bool = False) -> str:
    args = trtexec_args(model, version, calibration_cache)
    int8_note = ""
    if model.precision == "int8" and not calibration_cache:
        int8_note = (
            "# WARNING: no calibration cache was produced at build time (TensorRT was not available), so "
            "trtexec\n"
            "# uses placeholder INT8 ranges: accuracy is not representative until the plan is calibrated.\n"
        )
    return (
        "#!/bin/sh\n"
        f"# Builds {model.name}/{version}/{artifact_name('plan')} with trtexec, written by repo-builder.\n"
        "# Run it on the target GPU, in the TensorRT of the Triton release that serves the plan\n"
        "# (nvcr.io/nvidia/tensorrt:<yy.mm>-py3 for nvcr.io/nvidia/tritonserver:<yy.mm>-py3).\n"
        "# Paths are relative to the repository root; the script changes to it first.\n"
        f"{int8_note}"
        "set -eu\n"
        'cd "$(dirname "$0")/../.."\n'
        "# trtexec: $TRTEXEC, else the one on PATH, else where NVIDIA's TensorRT images keep it\n"
        f'TRTEXEC="${{TRTEXEC:-$(command -v trtexec || echo {TRTEXEC_FALLBACK})}}"\n'
        + " \\\n  ".join(['"$TRTEXEC"', *(shlex.quote(a) for a in args[1:])])
        + "\n"
    )


def write_recipe(root: Path, model: ModelSpec, version: int, onnx_path: Path, calibration_cache: bool = False) -> Path:
    """The recipe of one version in the repository layout under `root`: `<root>/<model>/<version>/` gets
    build_plan.sh and the ONNX it builds from. Returns the script."""
    folder = version_dir(root, model.name, version)
    folder.mkdir(parents=True, exist_ok=True)
    if onnx_path.resolve() != (folder / ONNX_NAME).resolve():
        shutil.copy2(onnx_path, folder / ONNX_NAME)
    script = folder / RECIPE_NAME
    script.write_text(recipe_script(model, version, calibration_cache))
    script.chmod(0o755)
    return script


def capability_message(error: str | None) -> str | None:
    if error is None:
        return None
    return (
        f"TensorRT's Python API is not usable here ({error}); the plan is built at deployment on the "
        "target GPU "
        "with trtexec from the recipe <model>/<version>/build_plan.sh (install TensorRT 10 with "
        "`pip install 'repo-builder[tensorrt]'` on a GPU host to build it now)"
    )


class Onnx2Plan:
    name: ClassVar[str] = "onnx2plan"
    source: ClassVar[Format] = "onnx"
    target: ClassVar[Format] = "plan"
    deferrable: ClassVar[bool] = True

    def available(self) -> str | None:
        try:
            import tensorrt as trt

            trt.Builder(trt.Logger(trt.Logger.ERROR))
        except Exception as e:
            return capability_message(f"{type(e).__name__}: {e}".strip()[:300])
        return None

    def convert(self, model: ModelSpec, src: Path, out: Path, ctx: Context) -> Converted:
        problem = self.available()
        plan = out / artifact_name(self.target)
        caches = out / "cache"
        built = False
        if problem is None:
            built = True
            build_plan(model, src, plan, caches, ctx)
        root = out / "recipe"
        recipes: dict[int, str] = {}
        version_files: dict[int, dict[str, Path]] = {}
        for v in model.versions:
            script = write_recipe(root, model, v, src, calibration_cache=built and model.precision == "int8")
            recipes[v] = script.relative_to(root).as_posix()
            version_files[v] = {p.name: p for p in (script.parent / ONNX_NAME, script)}
            ctx.log.info("recipe %s:\n%s", recipes[v], script.read_text())
        if caches.is_dir():  # beside the first version's ONNX, where build_plan reads them
            version_files[model.versions[0]].update({p.name: p for p in sorted(caches.iterdir())})
        manifest: dict[str, Any] = {"recipe": recipes[model.versions[0]], "recipes": recipes}
        if built:
            return Converted(plan, "plan", files={plan.name: plan}, version_files=version_files, manifest=manifest)
        ctx.log.warning("%s", problem)
        return Converted(
            src,
            "plan",
            status=ModelStatus.RECIPE,
            manifest=manifest,
            version_files=version_files,
            notes=["plan is built at deployment (no TensorRT here): " + recipes[model.versions[0]]],
        )


def build_plan(model: ModelSpec, onnx_path: Path, plan: Path, cache_dir: Path, ctx: Context) -> None:
    """TensorRT 10 Python API. Runs only where TensorRT and a GPU exist (`Onnx2Plan.available()` said so)."""
    from repo_builder import deps

    trt = deps.require("tensorrt")

    settings = model.tensorrt or TensorRTBuild()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ConversionError(f"model {model.name}: TensorRT cannot parse {onnx_path}:\n  " + "\n  ".join(errors))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_mib << 20)
    profile = builder.create_optimization_profile()
    for name, (lo, mid, hi) in profile_shapes(model).items():
        profile.set_shape(name, lo, mid, hi)
    config.add_optimization_profile(profile)
    if model.precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if model.precision == "int8":
        assert model.calibration is not None
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = _calibrator(
            trt, model, ctx.spec_dir / model.calibration.data, cache_dir / CALIBRATION_CACHE_NAME
        )
        config.set_calibration_profile(profile)
    cache_file = cache_dir / TIMING_CACHE_NAME
    if settings.timing_cache:
        cache = config.create_timing_cache(cache_file.read_bytes() if cache_file.is_file() else b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
    ctx.log.info("building TensorRT plan: precision %s, profile %s", model.precision, profile_shapes(model))
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ConversionError(f"model {model.name}: TensorRT could not build the plan (see the log above)")
    plan.parent.mkdir(parents=True, exist_ok=True)
    plan.write_bytes(bytes(serialized))
    if settings.timing_cache:
        cache_dir.mkdir(parents=True, exist_ok=True)
        cache_file.write_bytes(bytes(config.get_timing_cache().serialize()))


def _calibrator(trt: Any, model: ModelSpec, data_path: Path, cache: Path) -> Any:
    """IInt8EntropyCalibrator2 over the spec's calibration .npz (device memory through cuda-python)."""
    import numpy as np
    from cuda import cudart  # type: ignore[import-not-found]  # cuda-python, wherever TensorRT runs

    assert model.calibration is not None
    data = np.load(data_path)
    names = [t.name for t in model.inputs or []]
    size = model.calibration.batch_size
    rows = min(len(data[names[0]]), size * model.calibration.max_batches)

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            super().__init__()
            self.index = 0
            self.buffers = {n: cudart.cudaMalloc(data[n][:size].nbytes)[1] for n in names}

        def get_batch_size(self) -> int:
            return size

        def get_batch(self, names_: list[str]) -> list[int] | None:
            if self.index + size > rows:
                return None
            for n in names:
                chunk = np.ascontiguousarray(data[n][self.index : self.index + size])
                cudart.cudaMemcpy(
                    self.buffers[n],
                    chunk.ctypes.data,
                    chunk.nbytes,
                    cudart.cudaMemcpyKind.cudaMemcpyHostToDevice,
                )
            self.index += size
            return [int(self.buffers[n]) for n in names_]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, blob: Any) -> None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_bytes(bytes(blob))

    return Calibrator()
