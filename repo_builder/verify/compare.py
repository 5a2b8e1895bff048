"""Runs the source model and the converted artifact on the same inputs and compares them.

Inputs are the spec's sample data, or generated: the right dtypes and dims (variable dims -> two small concrete
sizes), values in the spec's or the model's ranges, and several batch sizes up to max_batch_size. An output
that is the same for every input is noted: the check proves nothing about it. Tolerances depend on precision
(`tolerance`). A mismatch raises ConversionError with the max absolute and relative error of every output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from repo_builder.errors import ConversionError
from repo_builder.spec.models import ModelSpec
from repo_builder.triton import dtypes

if TYPE_CHECKING:
    import numpy as np

    from repo_builder.inspect.tensors import Tensor

Feed = dict[str, "np.ndarray"]
Runner = Callable[[Feed], Feed]


#: integer inputs are drawn from [0, INT_HIGH): safe for token ids of any vocabulary of 8 or more
INT_HIGH = 8

#: generated strings: half the decimal text of an integer below INT_HIGH (a word of a small vocabulary of
#: digits), half that of an integer of 2 to 4 digits, so that their lengths and contents vary from row to row
LONG_STRINGS = (10, 10_000)

#: the sizes a variable dim takes in the check, one per generated feed in turn: two, so that a model that
#: only works at one size (a shape baked into a reshape) is caught
VARIABLE_SIZES = (8, 5)


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
    assert t.shape is not None, "tensors made from the resolved spec have a rank"
    shape = list(t.shape)
    if batch > 0:
        shape[0] = batch
    return tuple(variable if d is None else d for d in shape)


def generate(
    inputs: list[Tensor],
    batch: int,
    seed: int = 0,
    variable: int = VARIABLE_SIZES[0],
    ranges: dict[str, tuple[float, float]] | None = None,
) -> Feed:
    """Random inputs of the tensors' dtypes and shapes: floats standard normal, integers 0..INT_HIGH-1,
    strings the decimal text of integers (half such, half of 2 to 4 digits: see LONG_STRINGS); within
    `ranges[name]` (low, high) where given."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ranges = ranges or {}
    feed: Feed = {}
    for t in inputs:
        shape = full_shape(t, batch, variable)
        bounds = ranges.get(t.name)
        if t.dtype == "STRING":
            if bounds:
                numbers = rng.integers(int(bounds[0]), int(bounds[1]) + 1, size=shape)
            else:
                long = rng.random(shape) < 0.5
                numbers = np.where(long, rng.integers(*LONG_STRINGS, size=shape), rng.integers(0, INT_HIGH, size=shape))
            feed[t.name] = np.array([str(n).encode() for n in numbers.reshape(-1)], dtype=object).reshape(shape)
            continue
        np_type = dtypes.to_numpy(t.dtype)
        kind = np.dtype(np_type).kind if np_type != "bfloat16" else "f"
        if kind == "b":
            feed[t.name] = rng.random(shape) < 0.5
        elif kind in "iu":
            low, high = (int(bounds[0]), int(bounds[1])) if bounds else (0, INT_HIGH - 1)
            feed[t.name] = rng.integers(low, high + 1, size=shape).astype(np_type)
        elif bounds:
            feed[t.name] = rng.uniform(bounds[0], bounds[1], size=shape).astype(np_type)
        else:
            feed[t.name] = rng.standard_normal(shape).astype(np_type)
    return feed


def feeds(
    model: ModelSpec,
    inputs: list[Tensor],
    samples: Feed | None = None,
    ranges: dict[str, tuple[float, float]] | None = None,
) -> list[tuple[int, Feed]]:
    """(batch size, inputs) for each run of the check: the sample data cut to each batch size, or generated
    inputs whose variable dims take each of VARIABLE_SIZES in turn (an extra run when there is one batch size)."""
    from repo_builder.verify.samples import batches_of

    sizes = batch_sizes(model)
    if samples is not None:
        return batches_of(samples, sizes)
    variable = any(d is None for t in inputs for d in (t.shape or ())[1 if model.max_batch_size > 0 else 0 :])
    runs = [(b, VARIABLE_SIZES[i % 2]) for i, b in enumerate(sizes)]
    if variable and len(runs) == 1:
        runs.append((sizes[0], VARIABLE_SIZES[1]))
    return [(b, generate(inputs, b, seed=i, variable=v, ranges=ranges)) for i, (b, v) in enumerate(runs)]


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
    notes: list[str] = field(default_factory=list)  # what the check could not tell


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
    samples: Feed | None = None,
    ranges: dict[str, tuple[float, float]] | None = None,
) -> Verification:
    """Compare source and artifact on the same inputs for every batch size; raise on a mismatch."""
    runs = feeds(model, inputs, samples, ranges)
    worst: dict[str, OutputError] = {}
    failures: list[str] = []
    seen: dict[str, list[Any]] = {}
    reference_batch, reference_in, reference_out = -1, {}, {}
    for b, feed in runs:
        expected = _run_source(model, source, feed, samples is not None)
        actual = {k: numpy_of(v) for k, v in artifact(feed).items()}
        for name, value in expected.items():
            seen.setdefault(name, []).extend(list(value) if b > 0 else [value])
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
        if b > reference_batch:  # the reference: the first run at the largest batch size
            reference_batch, reference_in, reference_out = b, feed, expected
    if failures:
        raise ConversionError(
            f"model {model.name}: the {what} does not match the source model (tolerance atol "
            f"{tolerance['atol']:g}, rtol {tolerance['rtol']:g}):\n  - "
            + "\n  - ".join(failures)
            + "\n  per output: "
            + ", ".join(f"{e.name}: max abs {e.max_abs:.3g} max rel {e.max_rel:.3g}" for e in worst.values())
        )
    max_error = max((e.max_abs for e in worst.values()), default=0.0)
    sizes = sorted({b for b, _ in runs})
    text = any(t.dtype == "STRING" for t in inputs)
    return Verification(
        max_error, worst, reference_in, reference_out, sizes, notes=constant_outputs(seen, samples is not None, text)
    )


def _run_source(model: ModelSpec, source: Runner, feed: Feed, sampled: bool) -> Feed:
    """The source model's outputs; a source that fails on the check's inputs is reported as that, with the fix."""
    try:
        return {k: numpy_of(v) for k, v in source(feed).items()}
    except Exception as e:
        shapes = ", ".join(f"{k} {list(v.shape)} {v.dtype}" for k, v in feed.items())
        fix = (
            "check the sample data"
            if sampled
            else "if an input takes only some values (token ids below a vocabulary size, segment ids 0..1), give "
            "them: verify: {ranges: {name: [low, high]}}, or give sample data: verify: {inputs: samples.npz}"
        )
        raise ConversionError(
            f"model {model.name}: the source model itself fails on the check's "
            f"{'sample' if sampled else 'generated'} inputs ({shapes}): {type(e).__name__}: "
            f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}\n  {fix}"
        ) from e


def constant_outputs(seen: dict[str, list[Any]], sampled: bool, text: bool = False) -> list[str]:
    """A note for each output that came out the same for every input the check used: comparing constants
    proves nothing about the conversion (untrained weights answer so; a model of text may answer so to the
    generated strings, numbers' text, e.g. when its vocabulary has none of them: `text`)."""
    import numpy as np

    if text and not sampled:
        why = (
            "the generated strings are numbers' text, which the model may treat alike, "
            "e.g. if its vocabulary lacks them"
        )
    else:
        why = "untrained weights?"
    notes = []
    for name, items in seen.items():
        if len(items) < 2 or any(np.shape(i) != np.shape(items[0]) for i in items):
            continue
        first = np.asarray(items[0])
        if all(np.array_equal(np.asarray(i), first) for i in items[1:]):
            notes.append(
                f"output {name!r} is the same for every {'sample' if sampled else 'generated'} input, so the "
                f"check proves nothing about it ({why}; check with real data: verify: {{inputs: samples.npz}})"
            )
    return notes


def numpy_of(value: Any) -> Any:
    import numpy as np

    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def tolerance(model: ModelSpec) -> dict[str, float]:
    """Verification tolerance by precision; the spec's `verify:` overrides."""
    atol, rtol = {"fp32": (1e-4, 1e-3), "fp16": (1e-2, 5e-2), "int8": (1e-1, 1e-1)}[model.precision]
    return {
        "atol": model.verify.atol if model.verify.atol is not None else atol,
        "rtol": model.verify.rtol if model.verify.rtol is not None else rtol,
    }


#: the least tolerance for fp32 outputs computed on a GPU: cuBLAS and cuDNN run fp32 matmuls and convolutions
#: as TF32 (10 mantissa bits) on Ampere and later GPUs; the example MLP moved by 1.5e-4 on an H200 against
#: ONNX Runtime on the CPU
GPU_FP32_TOLERANCE = {"atol": 2e-3, "rtol": 2e-3}


def on_device(tol: dict[str, float], device: str) -> dict[str, float]:
    """A reference tolerance `tol` (computed on the CPU) for outputs computed on `device` ("GPU" or "CPU")."""
    if device != "GPU":
        return dict(tol)
    return {k: max(tol[k], GPU_FP32_TOLERANCE[k]) for k in ("atol", "rtol")}
