"""Runs the source model and the converted artifact on the same generated inputs and compares them.

Inputs have the right dtypes and dims (variable dims -> a small concrete size) and several batch sizes up to
max_batch_size. Tolerances depend on precision (converters.base.tolerance). A mismatch raises
ConversionError with the max absolute and relative error of every output.
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
        expected = {k: numpy_of(v) for k, v in source(feed).items()}
        actual = {k: numpy_of(v) for k, v in artifact(feed).items()}
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
