"""Runs the source model and the converted artifact on the same generated inputs and compares them.

Inputs have the right dtypes and dims (variable dims -> a small concrete size) and several batch sizes up to
max_batch_size. Tolerances depend on precision (converters.base.tolerance). A mismatch raises
ConversionError with the max absolute and relative error of every output.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repo_builder import dtypes
from repo_builder.errors import ConversionError
from repo_builder.spec import ModelSpec, Spec

if TYPE_CHECKING:
    import numpy as np

    from repo_builder.inspect import Tensor

Feed = dict[str, "np.ndarray"]
Runner = Callable[[Feed], Feed]

#: integer inputs are drawn from [0, INT_HIGH): safe for token ids of any vocabulary of 8 or more
INT_HIGH = 8


def batch_sizes(model: ModelSpec) -> list[int]:
    """The spec's verify.batch_sizes, else 1, a middle one and max_batch_size; [0] when not batching."""
    mbs = model.max_batch_size
    if mbs == 0:
        return [0]
    if model.verify.batch_sizes:
        return sorted({min(b, mbs) for b in model.verify.batch_sizes})
    return sorted({1, max(1, mbs // 2), mbs})


def full_shape(t: Tensor, batch: int, variable: int) -> tuple[int, ...]:
    """Concrete model shape: the first dim is the batch when batch > 0, other unknown dims -> variable."""
    shape = list(t.shape)
    if batch > 0:
        shape[0] = batch
    return tuple(variable if d is None else d for d in shape)


def generate(inputs: list[Tensor], batch: int, seed: int = 0, variable: int = 8) -> Feed:
    import numpy as np

    rng = np.random.default_rng(seed)
    feed: Feed = {}
    for t in inputs:
        shape = full_shape(t, batch, variable)
        np_type = dtypes.to_numpy(t.dtype)
        kind = np.dtype(np_type).kind if np_type != "bfloat16" else "f"
        if t.dtype == "STRING":
            raise ConversionError(
                f"input {t.name!r} is a STRING tensor; generated verification inputs cannot be made for it. "
                "Set verify: false for this model."
            )
        if kind == "b":
            feed[t.name] = rng.random(shape) < 0.5
        elif kind in "iu":
            feed[t.name] = rng.integers(0, INT_HIGH, size=shape).astype(np_type)
        else:
            feed[t.name] = rng.standard_normal(shape).astype(np_type)
    return feed


@dataclass
class OutputError:
    name: str
    max_abs: float
    max_rel: float
    ok: bool


@dataclass
class Verification:
    max_error: float  # the largest absolute error over every output and batch size
    errors: dict[str, OutputError] = field(default_factory=dict)
    reference_inputs: Feed = field(default_factory=dict)
    reference_outputs: Feed = field(default_factory=dict)
    batch_sizes: list[int] = field(default_factory=list)


def compare(name: str, expected: Any, actual: Any, atol: float, rtol: float) -> OutputError:
    import numpy as np

    e = np.asarray(expected)
    a = np.asarray(actual)
    if e.shape != a.shape:
        return OutputError(name, float("inf"), float("inf"), False)
    if e.dtype.kind not in "fc":
        equal = bool(np.array_equal(e, a))
        diff = 0.0 if equal else float(np.max(np.abs(e.astype(np.float64) - a.astype(np.float64))))
        return OutputError(name, diff, 0.0 if equal else float("inf"), equal)
    e64, a64 = e.astype(np.float64), a.astype(np.float64)
    diff = np.abs(e64 - a64)
    max_abs = float(diff.max()) if diff.size else 0.0
    rel = diff / np.maximum(np.abs(e64), 1e-12)
    max_rel = float(rel.max()) if rel.size else 0.0
    ok = bool(np.all(diff <= atol + rtol * np.abs(e64))) and bool(np.all(np.isfinite(a64) == np.isfinite(e64)))
    return OutputError(name, max_abs, max_rel, ok)


def verify(
    model: ModelSpec,
    inputs: list[Tensor],
    source: Runner,
    artifact: Runner,
    tolerance: dict[str, float],
    what: str = "artifact",
) -> Verification:
    """Compare source and artifact on generated inputs for every batch size; raise on a mismatch."""
    sizes = batch_sizes(model)
    worst: dict[str, OutputError] = {}
    failures: list[str] = []
    reference_in: Feed = {}
    reference_out: Feed = {}
    for b in sizes:
        feed = generate(inputs, b, seed=b)
        expected = {k: _numpy(v) for k, v in source(feed).items()}
        actual = {k: _numpy(v) for k, v in artifact(feed).items()}
        for name, value in expected.items():
            if name not in actual:
                failures.append(f"batch {b}: output {name!r} is missing from the {what} (it has {sorted(actual)})")
                continue
            err = compare(name, value, actual[name], tolerance["atol"], tolerance["rtol"])
            prev = worst.get(name)
            if prev is None or err.max_abs > prev.max_abs or not err.ok:
                worst[name] = OutputError(
                    name,
                    max(err.max_abs, prev.max_abs if prev else 0.0),
                    max(err.max_rel, prev.max_rel if prev else 0.0),
                    err.ok and (prev.ok if prev else True),
                )
            if not err.ok:
                failures.append(
                    f"batch {b}: output {name!r} max abs error {err.max_abs:.3g}, max rel error "
                    f"{err.max_rel:.3g} "
                    f"(shapes {tuple(value.shape)} vs {tuple(actual[name].shape)})"
                )
        if b == sizes[-1]:
            reference_in, reference_out = feed, expected
    if failures:
        raise ConversionError(
            f"model {model.name}: the {what} does not match the source model (tolerance atol "
            f"{tolerance['atol']:g}, rtol {tolerance['rtol']:g}):\n  - "
            + "\n  - ".join(failures)
            + "\n  per output: "
            + ", ".join(f"{e.name}: max abs {e.max_abs:.3g} max rel {e.max_rel:.3g}" for e in worst.values())
        )
    max_error = max((e.max_abs for e in worst.values()), default=0.0)
    return Verification(max_error, worst, reference_in, reference_out, sizes)


def _numpy(value: Any) -> Any:
    import numpy as np

    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


# --------------------------------------------------------------------------------------------- runners


def savedmodel_runner(path: Path, signature: str) -> Runner:
    import tensorflow as tf

    fn = tf.saved_model.load(str(path)).signatures[signature]

    def run(feed: Feed) -> Feed:
        result = fn(**{k: tf.constant(v) for k, v in feed.items()})
        return {k: v.numpy() for k, v in result.items()}

    return run


def onnx_runner(path: Path) -> Runner:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]

    def run(feed: Feed) -> Feed:
        return dict(zip(names, session.run(names, dict(feed)), strict=True))

    return run


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
    def run(feed: Feed) -> Feed:
        import tensorflow as tf

        return {k: _numpy(v) for k, v in call({k: tf.constant(v) for k, v in feed.items()}).items()}

    return run


# --------------------------------------------------------------------------------------------- ensembles


class NoReference(Exception):
    """An ensemble step cannot run here (e.g. TF-TRT without TensorRT): the ensemble gets no reference."""


def _with_reshapes(runner: Runner, config: Any) -> Runner:
    """Run a step in the config's shapes: inputs go to the model as `reshape` says, outputs come back
    in the config's dims (what Triton passes between ensemble steps)."""
    batching = config.max_batch_size > 0
    to_model = {t.name: list(t.reshape.shape) for t in config.input if t.HasField("reshape")}
    to_config = {t.name: list(t.dims) for t in config.output if t.HasField("reshape")}
    if not to_model and not to_config:
        return runner

    def lead(value: Any) -> list[int]:
        return [value.shape[0]] if batching else []

    def run(feed: Feed) -> Feed:
        feed = {k: v.reshape(lead(v) + to_model[k]) if k in to_model else v for k, v in feed.items()}
        out = runner(feed)
        return {k: v.reshape(lead(v) + to_config[k]) if k in to_config else v for k, v in out.items()}

    return run


def artifact_runner(model: ModelSpec, version_dir: Path) -> tuple[Runner, str]:
    """A runner of the model's built artifact in a version folder, and what it runs: the SavedModel, the
    ONNX, the generated model.py, or for a plan the ONNX it is built from (a plan needs a CUDA runtime)."""
    if model.target in ("savedmodel", "tftrt"):
        return savedmodel_runner(version_dir / "model.savedmodel", model.signature), model.target
    if model.target == "python":
        return python_runner(version_dir), "python-backend model.py"
    if model.target == "tensorrt":
        return onnx_runner(version_dir / "model.onnx"), "ONNX the plan is built from"
    return onnx_runner(version_dir / "model.onnx"), "onnx"


def step_runner(spec: Spec, model: ModelSpec, version: int, repo: Path) -> Runner:
    """Run a built model of the repository from its artifact in `repo` (a plan: the ONNX it is built from)."""
    from repo_builder import triton_rules
    from repo_builder.repository import version_dir

    if model.target == "ensemble":
        return ensemble_runner(spec, model, repo)
    if model.target == "tftrt":
        raise NoReference(f"step {model.name} is a TF-TRT SavedModel, which runs only where TensorRT is")
    folder = version_dir(repo, model.name, version)
    if model.target in ("onnx", "tensorrt") and not (folder / "model.onnx").is_file():
        raise NoReference(f"step {model.name} has no model.onnx in version {version} to run here")
    runner, _ = artifact_runner(model, folder)
    config = triton_rules.parse((repo / model.name / "config.pbtxt").read_text(), f"{model.name}/config.pbtxt")
    return _with_reshapes(runner, config)


def ensemble_runner(spec: Spec, model: ModelSpec, repo: Path) -> Runner:
    """The ensemble's steps run one after the other on their built artifacts, tensors routed by the maps."""
    steps = []
    for s in model.steps or []:
        target = spec.model(s.model)
        version = s.version if s.version != -1 else max(target.versions)
        steps.append((s, step_runner(spec, target, version, repo)))
    outputs = [t.name for t in model.outputs or []]

    def run(feed: Feed) -> Feed:
        tensors = dict(feed)
        for s, runner in steps:
            produced = runner({model_input: tensors[tensor] for model_input, tensor in s.input_map.items()})
            for model_output, tensor in s.output_map.items():
                tensors[tensor] = _numpy(produced[model_output])
        return {name: tensors[name] for name in outputs}

    return run


def input_tensors(model: ModelSpec, as_the_model_sees: bool = True) -> list[Tensor]:
    """A resolved model's inputs as full shapes, None where variable (the batch dim when it batches): the
    shapes the model itself takes (`reshape` applied), or the config's dims, which clients send."""
    from repo_builder.inspect import Tensor

    lead: tuple[int | None, ...] = (None,) if model.max_batch_size > 0 else ()
    found = []
    for t in model.inputs or []:
        dims = t.reshape if as_the_model_sees and t.reshape is not None else t.dims
        found.append(Tensor(t.name, t.dtype, lead + tuple(None if d < 0 else d for d in dims)))
    return found


def ensemble_inputs(model: ModelSpec, seed: int = 0) -> Feed:
    """Generated inputs in the ensemble's config shapes, batch max(1, max_batch_size) when it batches."""
    batch = max(1, model.max_batch_size) if model.max_batch_size > 0 else 0
    return generate(input_tensors(model, as_the_model_sees=False), batch, seed=seed)
