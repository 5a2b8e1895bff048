"""How each kind of artifact runs for verification: the source, a SavedModel, an ONNX model, a python-backend model."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from repo_builder.deps import require
from repo_builder.errors import ConversionError
from repo_builder.repository.layout import ONNX_NAME, TFTRT_SOURCE_NAME
from repo_builder.spec.models import ModelSpec
from repo_builder.triton.platforms import PLATFORMS
from repo_builder.verify.compare import Feed, Runner, numpy_of


def savedmodel_runner(path: Path, signature: str) -> Runner:
    tf = require("tensorflow")
    from repo_builder.inspect.sources import load_saved_model
    from repo_builder.inspect.tf1 import is_tf1_saved_model

    if is_tf1_saved_model(path):  # run in a v1 Session, as Triton's TensorFlow backend runs it
        call = load_saved_model(path, signature).call
        return lambda feed: {k: numpy_of(v) for k, v in call(feed).items()}
    fn = tf.saved_model.load(str(path)).signatures[signature]

    def run(feed: Feed) -> Feed:
        result = fn(**{k: tf.constant(v) for k, v in feed.items()})
        return {k: v.numpy() for k, v in result.items()}

    return run


def onnx_runner(path: Path, model: str = "", what: str = "converted model") -> Runner:
    """Runs the ONNX model at `path` in onnxruntime on the CPU; ConversionError when onnxruntime cannot load it
    or fails running it (`model` and `what` name it in the message)."""
    ort = require("onnxruntime")
    from repo_builder.verify.strings import from_onnxruntime, to_onnxruntime

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own exception types (Fail, InvalidGraph, ...) share no useful base
        raise ConversionError(_cannot_load(path, model, what, e)) from e
    names = [o.name for o in session.get_outputs()]
    quiet = ort.RunOptions()
    quiet.log_severity_level = 4  # fatal only: a failure is raised with onnxruntime's message, not logged twice

    def run(feed: Feed) -> Feed:  # strings as onnxruntime takes and gives them: str (bytes elsewhere)
        fed = {k: to_onnxruntime(v) for k, v in feed.items()}
        try:
            got = session.run(names, fed, quiet)
        except Exception as e:  # Fail, RuntimeException, InvalidArgument, ...: no useful base either
            raise ConversionError(_cannot_run(path, model, what, feed, e)) from e
        return {k: from_onnxruntime(v) for k, v in zip(names, got, strict=True)}

    return run


def _cannot_load(path: Path, model: str, what: str, e: Exception) -> str:
    reason = " ".join(str(e).split()) or type(e).__name__
    locale = (
        " (onnxruntime's StringNormalizer, which tf.strings.upper and lower convert to, needs the en_US.UTF-8 "
        "locale: install it, e.g. `locale-gen en_US.UTF-8`)"
        if "locale" in reason
        else ""
    )
    return (
        f"{f'model {model}: ' if model else ''}the build's check could not load the {what} ({path.name}) in "
        f"onnxruntime: {reason}\n  This can be this machine's environment rather than the model{locale}; "
        "Triton's onnxruntime backend may fail to load it as well. Targets that run the model as TensorFlow: "
        "savedmodel, or python with `python_runtime: tensorflow`."
    )


def _cannot_run(path: Path, model: str, what: str, feed: Feed, e: Exception) -> str:
    reason = " ".join(str(e).split()) or type(e).__name__
    shapes = ", ".join(f"{k} {list(v.shape)} {v.dtype}" for k, v in feed.items())
    return (
        f"{f'model {model}: ' if model else ''}the build's check loaded the {what} ({path.name}) in onnxruntime, "
        f"which failed running it on the inputs {shapes}: {reason}\n  Triton's onnxruntime backend would likely "
        "fail the same way on such inputs. If the model takes only some input shapes or values, give them: fixed "
        "dims in the spec, verify: {ranges: {name: [low, high]}}, or verify: {inputs: samples.npz}. Targets that "
        "run the model as TensorFlow: savedmodel, or python with `python_runtime: tensorflow`."
    )


def python_runner(version_dir: Path) -> Runner:
    """The generated model.py itself (its TritonPythonModel, minus Triton's request plumbing).

    Each feed is also split into two requests to exercise the stacking of requests in one batch.
    """
    import numpy as np

    unique = f"_repo_builder_python_model_{abs(hash(str(version_dir)))}"
    spec = importlib.util.spec_from_file_location(unique, version_dir / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module
    spec.loader.exec_module(module)
    instance = module.TritonPythonModel()
    instance.load(version_dir)

    def run(feed: Feed) -> Feed:
        first = next(iter(feed.values()))
        if module.MAX_BATCH_SIZE > 0 and first.shape[0] >= 2:
            half = first.shape[0] // 2
            parts = instance.infer_batch(
                [{k: v[:half] for k, v in feed.items()}, {k: v[half:] for k, v in feed.items()}]
            )
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return dict(instance.infer_batch([feed])[0])

    return run


def source_runner(call: Callable[[dict[str, Any]], dict[str, Any]]) -> Runner:
    tf = require("tensorflow")

    def run(feed: Feed) -> Feed:
        return {k: numpy_of(v) for k, v in call({k: tf.constant(v) for k, v in feed.items()}).items()}

    return run


def artifact_runner(model: ModelSpec, version_dir: Path) -> tuple[Runner, str]:
    """A runner of the model's built artifact in a version folder, and what it runs: the SavedModel, the
    ONNX, the generated model.py, for a plan the ONNX it is built from (a plan needs a CUDA runtime), for a
    TF-TRT model converted at deployment the SavedModel its recipe converts."""
    if model.target in ("savedmodel", "tftrt"):
        artifact = PLATFORMS[model.target].model_file
        assert artifact is not None
        if model.target == "tftrt" and not (version_dir / artifact).exists():  # converted at deployment
            source = version_dir / TFTRT_SOURCE_NAME
            return savedmodel_runner(source, model.signature), "SavedModel TF-TRT converts at deployment"
        return savedmodel_runner(version_dir / artifact, model.signature), model.target
    if model.target == "python":
        return python_runner(version_dir), "python-backend model.py"
    if model.target == "tensorrt":
        what = "ONNX the plan is built from"
        return onnx_runner(version_dir / ONNX_NAME, model.name, what), what
    return onnx_runner(version_dir / ONNX_NAME, model.name, "converted ONNX model"), "onnx"
