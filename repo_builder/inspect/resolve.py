"""Reconcile the inspected tensors with the spec (no TensorFlow).

`apply_spec_names()` gives the spec's names to tensors TensorFlow named generically; `resolve()` completes the
spec from the inspected tensors: names, dtypes, dims, the batch dimension, max_batch_size. It fails with both
sides shown when the spec contradicts the model.
"""

from __future__ import annotations

import re
from typing import Any

from repo_builder.errors import SpecError
from repo_builder.inspect.tensors import Loaded, Tensor
from repo_builder.spec.models import InputSpec, ModelSpec, OutputSpec

# --------------------------------------------------------------------------------------------- renaming

#: names TensorFlow and Keras 3 make up when a model is saved with tf.saved_model.save
GENERIC_NAME = re.compile(r"^(inputs?|outputs?|output|args?|keras_tensor|serving_default_\w+)(_\d+)?$")


def _fits(spec_tensor: Any, t: Tensor) -> bool:
    if spec_tensor.dtype != t.dtype:
        return False
    if t.shape is None:
        return True
    dims = list(spec_tensor.dims)
    for shape in (t.shape[1:], t.shape):
        if len(shape) == len(dims) and all(d is None or d == s or s == -1 for d, s in zip(shape, dims, strict=True)):
            return True
    return False


def _rename_map(given: list[Any] | None, found: list[Tensor]) -> dict[str, str]:
    """model name -> spec name, when the model's names are made up and the spec's tensors map onto them."""
    if not given or len(given) != len(found) or not all(GENERIC_NAME.match(t.name) for t in found):
        return {}
    names = {t.name for t in found}
    if any(g.name in names for g in given):
        return {}
    if len(found) == 1:
        return {found[0].name: given[0].name}
    mapping: dict[str, str] = {}
    for g in given:
        candidates = [t for t in found if _fits(g, t)]
        if len(candidates) != 1 or candidates[0].name in mapping:
            return {}  # ambiguous: the spec must use the model's names (see `repo-builder inspect`)
        mapping[candidates[0].name] = g.name
    return mapping


def apply_spec_names(model: ModelSpec, loaded: Loaded) -> tuple[Loaded, dict[str, str]]:
    """Serve the spec's names where the model only has made-up ones (Keras 3's `inputs`, `output_0`).

    Renames when the spec lists as many tensors as the model has, none of the spec's names exists in the
    model, every model name is a made-up one, and the tensors map one to one (a single tensor, or unique
    dtype and dims). Returns the renamed model and the renaming (model name -> served name).
    """
    in_map = _rename_map(model.inputs, loaded.inputs)
    out_map = _rename_map(model.outputs, loaded.outputs)
    if not in_map and not out_map:
        return loaded, {}
    back = {v: k for k, v in in_map.items()}
    call = loaded.call

    def renamed_call(feed: dict[str, Any]) -> dict[str, Any]:
        result = call({back.get(k, k): v for k, v in feed.items()})
        return {out_map.get(k, k): v for k, v in result.items()}

    def rename(tensors: list[Tensor], mapping: dict[str, str]) -> list[Tensor]:
        return [Tensor(mapping.get(t.name, t.name), t.dtype, t.shape) for t in tensors]

    renamed = Loaded(
        loaded.kind,
        rename(loaded.inputs, in_map),
        rename(loaded.outputs, out_map),
        renamed_call,
        trackable=loaded.trackable,
        fetches=loaded.fetches,
        notes=[
            *loaded.notes,
            "renamed " + ", ".join(f"{k} -> {v}" for k, v in {**in_map, **out_map}.items()),
        ],
    )
    return renamed, {**in_map, **out_map}


# --------------------------------------------------------------------------------------------- resolve


def _fmt_shape(shape: tuple[int | None, ...] | None) -> str:
    if shape is None:
        return "unknown rank"
    return "[" + ", ".join("-1" if d is None else str(d) for d in shape) + "]"


def detect_max_batch_size(model: ModelSpec, inputs: list[Tensor], outputs: list[Tensor]) -> int:
    """Spec value when set; else 8 (the default) when every tensor has a variable first dim, else 0."""
    every = [*inputs, *outputs]
    known = [t.shape for t in every if t.shape is not None]  # a tensor of unknown rank takes the spec's dims
    batchable = bool(known) and all(len(s) >= 1 and s[0] is None for s in known)
    if "max_batch_size" in model.model_fields_set:
        return model.max_batch_size
    return model.max_batch_size if batchable else 0


def resolve(model: ModelSpec, inputs: list[Tensor], outputs: list[Tensor]) -> ModelSpec:
    """The spec completed from the model: max_batch_size, inputs and outputs with dtypes and dims.

    Raises SpecError listing every contradiction, each with the spec's side and the model's side.
    """
    problems: list[str] = []
    mbs = detect_max_batch_size(model, inputs, outputs)
    if mbs > 0:
        for t in (*inputs, *outputs):
            if t.shape is not None and (not t.shape or t.shape[0] is not None):
                problems.append(
                    f"max_batch_size is {mbs} but {t.name!r} has shape {_fmt_shape(t.shape)} with no "
                    "variable "
                    "first (batch) dimension; set max_batch_size: 0 so dims are the full shape"
                )
    resolved_in = _resolve_tensors("input", model.inputs, inputs, mbs, problems)
    resolved_out = _resolve_tensors("output", model.outputs, outputs, mbs, problems)
    if problems:
        raise SpecError(
            f"model {model.name}: the spec contradicts the model "
            f"({model.source.ref if model.source else ''}):\n  - "
            + "\n  - ".join(problems)
            + "\nRun `repo-builder inspect` on the source to see its tensors as spec YAML."
        )
    return model.model_copy(update={"max_batch_size": mbs, "inputs": resolved_in, "outputs": resolved_out})


def model_shape(spec_tensor: Any, mbs: int) -> tuple[int | None, ...]:
    """The full shape the spec gives a tensor (for one whose rank the model leaves open)."""
    dims = spec_tensor.reshape if spec_tensor.reshape is not None else spec_tensor.dims
    return tuple([None] * (mbs > 0) + [None if d == -1 else d for d in dims])


def _unknown_rank(kind: str, t: Tensor, mbs: int) -> str:
    where = "without the batch dimension" if mbs > 0 else "the full shape, max_batch_size is 0"
    return (
        f"{kind} {t.name!r} ({t.dtype}) has unknown rank in the model's signature; give its dims in the spec's "
        f"`{kind}s:` ({where}), e.g. {{name: {t.name}, dtype: {t.dtype}, dims: [-1, 3]}}"
    )


def dims_of(t: Tensor, mbs: int) -> tuple[list[int], list[int] | None]:
    assert t.shape is not None, "a tensor of unknown rank has the spec's dims"
    rest = t.shape[1:] if mbs > 0 else t.shape
    dims = [-1 if d is None else d for d in rest]
    if not dims:
        return [1], []  # a scalar per batch item (or a scalar): dims [1], reshape []
    return dims, None


def _resolve_tensors(
    kind: str, given: list[Any] | None, found: list[Tensor], mbs: int, problems: list[str]
) -> list[Any]:
    cls: type[InputSpec] | type[OutputSpec] = InputSpec if kind == "input" else OutputSpec
    by_name = {t.name: t for t in found}
    if given is None:
        result = []
        for t in found:
            if t.shape is None:
                problems.append(_unknown_rank(kind, t, mbs))
                continue
            dims, reshape = dims_of(t, mbs)
            result.append(cls(name=t.name, dtype=t.dtype, dims=dims, reshape=reshape))
        return result
    result = []
    for g in given:
        match = by_name.get(g.name)
        if match is None:
            problems.append(
                f"{kind} {g.name!r}: spec names it, the model has no such {kind}; model {kind}s: "
                + ", ".join(f"{x.name} ({x.dtype} {_fmt_shape(x.shape)})" for x in found)
            )
            continue
        t = match
        if g.dtype != t.dtype:
            problems.append(f"{kind} {g.name!r}: spec dtype {g.dtype}, model dtype {t.dtype}")
        if t.shape is None:  # the model leaves the rank open: the spec's dims are the shape
            result.append(g)
            continue
        dims, reshape = dims_of(t, mbs)
        spec_dims = list(g.reshape) if g.reshape is not None and g.reshape != [] else list(g.dims)
        model_dims = dims if reshape is None else []
        if g.reshape == [] or reshape == []:
            if not (g.reshape == [] and reshape == []) and not (reshape == [] and g.dims == [1]):
                problems.append(
                    f"{kind} {g.name!r}: spec dims {g.dims} reshape {g.reshape}, model dims "
                    f"{model_dims or '[]'} "
                    f"(full shape {_fmt_shape(t.shape)}, max_batch_size {mbs})"
                )
        elif len(spec_dims) != len(model_dims):
            problems.append(
                f"{kind} {g.name!r}: spec rank {len(spec_dims)} (dims {spec_dims}), model rank "
                f"{len(model_dims)} "
                f"(dims {model_dims}, full shape {_fmt_shape(t.shape)}, max_batch_size {mbs})"
            )
        else:
            for i, (s, m) in enumerate(zip(spec_dims, model_dims, strict=True)):
                if m != -1 and s != m:
                    problems.append(
                        f"{kind} {g.name!r}: dim {i} is {s} in the spec, {m} in the model (dims {model_dims})"
                    )
        result.append(g if g.reshape is not None or reshape is None else g.model_copy(update={"reshape": reshape}))
    missing_in = [t.name for t in found if t.name not in {g.name for g in given}]
    if missing_in and kind == "input":
        problems.append(
            f"input(s) {', '.join(missing_in)} of the model are not in the spec; a model needs all its inputs"
        )
    return result
