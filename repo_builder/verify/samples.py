"""What the verification feeds a model: the user's sample data (`verify: {inputs: ...}`), or generated
inputs drawn from value ranges, the spec's (`verify: {ranges: ...}`) or the model's own (an Embedding's
vocabulary).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from repo_builder.errors import SpecError
from repo_builder.spec.models import ModelSpec
from repo_builder.triton import dtypes

if TYPE_CHECKING:
    import numpy as np

    from repo_builder.inspect.tensors import Tensor

Feed = dict[str, "np.ndarray"]
Range = tuple[float, float]


def load_samples(model: ModelSpec, base_dir: Path, inputs: list[Tensor]) -> Feed:
    """The spec's sample inputs (`verify.inputs`), checked against the model's inputs and cast to their dtypes."""
    import numpy as np

    ref = model.verify.inputs
    assert ref is not None
    where = f"model {model.name}: verify.inputs {ref!r}"
    if ref.endswith(".npz"):
        path = base_dir / ref
        try:
            with np.load(path, allow_pickle=False) as data:
                raw: dict[str, Any] = {k: data[k] for k in data.files}
        except (OSError, ValueError) as e:
            raise SpecError(f"{where}: cannot read {path} as an .npz file ({e})") from e
    else:
        from repo_builder.inspect.sources import load_factory

        raw = load_factory(ref, base_dir)()
        if not isinstance(raw, dict):
            raise SpecError(f"{where}: the function returned {type(raw).__name__}; expected a dict input name -> array")
    missing = [t.name for t in inputs if t.name not in raw]
    unknown = sorted(set(raw) - {t.name for t in inputs})
    if missing or unknown:
        raise SpecError(
            f"{where}: "
            + "; ".join(
                ([f"no array for input(s) {', '.join(map(repr, missing))}"] if missing else [])
                + ([f"arrays {', '.join(map(repr, unknown))} name no input"] if unknown else [])
            )
            + f"; the model's inputs are {', '.join(repr(t.name) for t in inputs)}"
        )
    feed: Feed = {}
    config_dims = {t.name: t.dims for t in model.inputs or [] if t.reshape is not None}
    for t in inputs:
        value = np.asarray(raw[t.name])
        if t.shape is None:  # a tensor of unknown rank: the model takes any shape
            pass
        elif t.name in config_dims:  # given as a client sends it (the config's dims): as the model takes it
            lead = value.shape[:1] if model.max_batch_size > 0 else ()
            if list(value.shape[len(lead) :]) == config_dims[t.name]:
                value = value.reshape(lead + tuple(-1 if d is None else d for d in t.shape[len(lead) :]))
        if t.shape is not None and (
            len(value.shape) != len(t.shape)
            or any(want is not None and got != want for got, want in zip(value.shape, t.shape, strict=False))
        ):
            batch = model.max_batch_size > 0
            shown = ", ".join(
                "batch" if i == 0 and batch else "-1" if d is None else str(d) for i, d in enumerate(t.shape)
            )
            raise SpecError(f"{where}: input {t.name!r} has shape {list(value.shape)}; the model takes [{shown}]")
        if t.dtype == "STRING":
            feed[t.name] = np.array(
                [v if isinstance(v, bytes) else str(v).encode() for v in value.reshape(-1)], dtype=object
            ).reshape(value.shape)
        else:
            feed[t.name] = value.astype(dtypes.to_numpy(t.dtype))
    return feed


def batches_of(samples: Feed, sizes: list[int]) -> list[tuple[int, Feed]]:
    """The sample data cut to each batch size (at most the rows it has); the whole of it when not batching."""
    if sizes == [0]:
        return [(0, samples)]
    rows = min(len(v) for v in samples.values())
    return [(b, {k: v[:b] for k, v in samples.items()}) for b in sorted({min(b, rows) for b in sizes})]


def model_ranges(trackable: Any, inputs: list[Tensor]) -> dict[str, Range]:
    """Value ranges the model itself states: an input that feeds a Keras Embedding takes ids below its input_dim.

    Best effort: Keras functional models (nested ones too, where an inner model's input is an outer one).
    """
    names = {t.name for t in inputs}
    found: dict[str, Range] = {}
    try:
        import keras
    except ImportError:
        return found
    if not isinstance(trackable, keras.Model):
        return found

    def walk(model: Any, outer: dict[int, str]) -> None:
        for layer in getattr(model, "layers", []):
            try:
                sources = layer.input if isinstance(layer.input, list | tuple) else [layer.input]
            except (AttributeError, ValueError):  # a layer used several times, or never called
                continue
            fed = [outer.get(id(s)) for s in sources]
            if isinstance(layer, keras.layers.Embedding) and fed and fed[0] is not None:
                low, high = found.get(fed[0], (0, layer.input_dim - 1))
                found[fed[0]] = (low, min(high, layer.input_dim - 1))
            elif isinstance(layer, keras.Model) and any(f is not None for f in fed):
                inner = getattr(layer, "inputs", None) or []
                walk(layer, {id(i): f for i, f in zip(inner, fed, strict=False) if f is not None})

    model_inputs = getattr(trackable, "inputs", None) or []
    outer = {}
    for t in model_inputs:
        name = getattr(t, "name", "").split(":")[0]
        if name in names:
            outer[id(t)] = name
    walk(trackable, outer)
    return found
