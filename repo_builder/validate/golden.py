"""The golden check: the served outputs against the build's reference vectors, at batch sizes 1, half and
max_batch_size, within the model's tolerance on the device the server computes on (GPU: looser). Also the
request a model takes (the reference's inputs, batch 1 when batching; else zeros), which the load checks
send too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from repo_builder.validate.connection import Connection, dtype_name, triton_datatype
from repo_builder.validate.expected import ExpectedModel, ExpectedRepository
from repo_builder.validate.report import Skip
from repo_builder.verify.compare import on_device

if TYPE_CHECKING:
    import numpy as np

    from repo_builder.validate.checks import Validator


def _value(v: Any) -> str:
    return (
        f"{float(v):.8g}"
        if isinstance(v, (int, float)) or (getattr(v, "dtype", None) is not None and (v.dtype.kind in "fiub"))
        else repr(v)
    )


def datatypes(model: ExpectedModel, inputs: Mapping[str, np.ndarray]) -> dict[str, str]:
    from repo_builder.triton.dtypes import from_numpy

    types = {}
    if model.config is not None:
        types = {t.name: triton_datatype(dtype_name(t.data_type)) for t in model.config.input}
    return {name: types.get(name) or triton_datatype(from_numpy(v.dtype)) for name, v in inputs.items()}


def sample(repo: ExpectedRepository, model: ExpectedModel) -> tuple[dict[str, np.ndarray], list[str]]:
    """One request's inputs (batch 1 when batching): from the reference, else zeros (strings: "0", which
    a model that parses numbers accepts too); and output names."""
    import numpy as np

    from repo_builder.triton.dtypes import to_numpy

    ref = repo.reference(model) if model.manifest.reference else None
    if ref is not None:
        inputs, outputs = ref
        if model.max_batch_size > 0:
            inputs = {k: v[:1] for k, v in inputs.items()}
        return inputs, list(outputs)
    if model.config is None:
        raise Skip("no reference and no config.pbtxt to make inputs from")
    batch = [1] if model.max_batch_size > 0 else []
    inputs = {}
    for t in model.config.input:
        short = dtype_name(t.data_type).removeprefix("TYPE_")
        shape = batch + [1 if d < 0 else int(d) for d in t.dims]
        dtype = np.dtype(object) if short == "STRING" else np.dtype(to_numpy(short))
        inputs[t.name] = np.zeros(shape, dtype=dtype) if short != "STRING" else np.full(shape, b"0", dtype=object)
    return inputs, [t.name for t in model.config.output]


def check_golden(validator: Validator, model: ExpectedModel) -> tuple[str, dict[str, Any]]:
    import numpy as np

    assert validator.conn is not None
    if validator.repo.manifest is None:
        raise Skip("no repo_builder_manifest.json: no reference outputs to compare with")
    if not model.manifest.reference:
        raise Skip("the manifest has no reference for this model" + (" (ensemble)" if model.is_ensemble else ""))
    ref = validator.repo.reference(model)
    assert ref is not None
    inputs, outputs = ref
    if not inputs or not outputs:
        raise AssertionError(f"reference {model.manifest.reference} has no input/ or output/ arrays")
    device = device_of(validator.conn, validator.repo, model)
    tol = on_device(model.tolerance, device)
    mbs = model.max_batch_size
    if mbs > 0:
        rows = min(len(v) for v in list(inputs.values()) + list(outputs.values()))
        sizes = sorted({b for b in (1, (mbs + 1) // 2, mbs) if b <= rows}) or [rows]
    else:
        sizes = [0]
    types = datatypes(model, inputs)
    problems: list[str] = []
    worst: dict[str, float] = {}
    for version in model.versions:
        for b in sizes:
            feed = {k: v[:b] for k, v in inputs.items()} if b else inputs
            want = {k: v[:b] for k, v in outputs.items()} if b else outputs
            got = validator.conn.infer(model.name, feed, types, list(want), version)
            label = f"v{version} batch {b}" if b else f"v{version}"
            for name, expected in want.items():
                served = got[name]
                if served is None:
                    problems.append(f"{label}, output {name!r}: not returned")
                    continue
                if served.shape != expected.shape:
                    problems.append(
                        f"{label}, output {name!r}: shape {list(served.shape)}, reference {list(expected.shape)}"
                    )
                    continue
                if expected.dtype.kind in "OSUb" or served.dtype.kind in "OSU":
                    bad = ~np.equal(served.astype(expected.dtype), expected)
                    err = float(bad.sum())
                else:
                    diff = np.abs(served.astype(np.float64) - expected.astype(np.float64))
                    bad = diff > tol["atol"] + tol["rtol"] * np.abs(expected.astype(np.float64))
                    err = float(diff.max()) if diff.size else 0.0
                worst[name] = max(worst.get(name, 0.0), err)
                if bad.any():
                    at = tuple(int(i) for i in np.argwhere(bad)[0])
                    problems.append(
                        f"{label}, output {name!r}: {int(bad.sum())} of {bad.size} values beyond "
                        f"atol={tol['atol']:g} rtol={tol['rtol']:g}; max |diff| {err:.3g}; "
                        f"first at {list(at)}: served {_value(served[at])}, "
                        f"reference {_value(expected[at])}"
                    )
    data = {"batch_sizes": sizes, "max_abs_error": worst, "tolerance": tol, "device": device}
    if problems:
        raise AssertionError(f"outputs computed on the {device} differ from the reference:\n" + "\n".join(problems))
    where = f"batch sizes {', '.join(map(str, sizes))}" if sizes != [0] else "no batching"
    errors = ", ".join(f"{k} {v:.2g}" for k, v in worst.items())
    return f"matches the reference on the {device} at {where} (max |diff|: {errors})", data


def device_of(
    conn: Connection, repo: ExpectedRepository, model: ExpectedModel, seen: frozenset[str] = frozenset()
) -> str:
    """Where the server computes `model`: "GPU" when an instance group of it (of a step, for an
    ensemble) is on a GPU, else "CPU"."""
    from tritonclient.grpc.model_config_pb2 import ModelInstanceGroup

    served = conn.config(model.name)
    if any(g.kind == ModelInstanceGroup.KIND_GPU for g in served.instance_group):
        return "GPU"
    steps = {s.model_name for s in served.ensemble_scheduling.step} - seen - {model.name}
    for name in sorted(steps):
        step = repo.models.get(name)
        if step is not None and device_of(conn, repo, step, seen | {model.name}) == "GPU":
            return "GPU"
    return "CPU"
