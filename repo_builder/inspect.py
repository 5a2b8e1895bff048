"""Reads a model's serving signature -> tensors, and reconciles them with the spec.

Two halves:
- `load_source()` (needs TensorFlow, imported inside) turns any source the spec names -- a SavedModel
  folder, a Keras `.keras`/`.h5` file, or a Python factory returning a Keras model or a `tf.Module` -- into
  a `Loaded` model: its tensors as the user sees them and a callable that runs it.
- `resolve()` (no TensorFlow) completes the spec from the inspected tensors: names, dtypes, dims, the
  batch dimension, max_batch_size; it fails with both sides shown when the spec contradicts the model.

Inspection never runs the model: SavedModel signatures are read from the protobuf, Keras models from
their symbolic Inputs and outputs.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repo_builder import dtypes
from repo_builder.errors import ConversionError, SpecError
from repo_builder.render import Tensors
from repo_builder.spec import InputSpec, ModelSpec, OutputSpec, Source

#: size used for a variable (non-batch) dimension when inputs are generated
VARIABLE_DIM_SIZE = 8


@dataclass(frozen=True)
class Tensor:
    """One input or output as the model declares it: full shape, None for unknown."""

    name: str
    dtype: str  # Triton short name, FP32
    shape: tuple[int | None, ...]


@dataclass
class Loaded:
    """A source model loaded with TensorFlow: its tensors and a way to run it (dict in, dict out)."""

    kind: str  # keras, module, saved_model
    inputs: list[Tensor]
    outputs: list[Tensor]
    call: Callable[[dict[str, Any]], dict[str, Any]]
    keep: Any = None  # the object to track when exporting (variables live there)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------- sources


def source_path(source: Source, base_dir: Path) -> Path | None:
    """The file or folder a source depends on (for hashing), or None for an importable module."""
    if source.kind in ("saved_model", "keras_file"):
        return base_dir / source.ref
    module = source.ref.rsplit(":", 1)[0]
    if module.endswith(".py"):
        return base_dir / module
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin else None


def load_factory(ref: str, base_dir: Path) -> Callable[[], Any]:
    """`file.py:function` (relative to base_dir) or `module:function` -> the function."""
    module_name, _, func_name = ref.rpartition(":")
    if module_name.endswith(".py"):
        path = (base_dir / module_name).resolve()
        if not path.is_file():
            raise SpecError(f"source python {ref!r}: {path} does not exist")
        unique = f"_repo_builder_factory_{abs(hash(str(path)))}"
        spec = importlib.util.spec_from_file_location(unique, path)
        if spec is None or spec.loader is None:
            raise SpecError(f"source python {ref!r}: {path} cannot be imported as a module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[unique] = module
        sys.path.insert(0, str(path.parent))
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            raise ConversionError(f"source python {ref!r}: importing {path} failed: {type(e).__name__}: {e}") from e
        finally:
            sys.path.remove(str(path.parent))
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise SpecError(
                f"source python {ref!r}: module {module_name!r} cannot be imported ({e}); use "
                "`file.py:function` "
                "for a file next to the spec, or install the module"
            ) from e
    func = getattr(module, func_name, None)
    if not callable(func):
        found = sorted(  # the module's own functions, not what it imported
            n
            for n, f in vars(module).items()
            if not n.startswith("_") and callable(f) and getattr(f, "__module__", None) == module.__name__
        )
        raise SpecError(
            f"source python {ref!r}: {module_name} has no function {func_name!r}; it has: {', '.join(found)}"
        )
    return func


def load_source(source: Source, base_dir: Path, signature: str = "serving_default") -> Loaded:
    """Load a source with TensorFlow. Raises ConversionError/SpecError saying what and where."""
    if source.kind == "saved_model":
        return load_saved_model(base_dir / source.ref, signature)
    if source.kind == "keras_file":
        return load_keras(_load_keras_file(base_dir / source.ref))
    factory = load_factory(source.ref, base_dir)
    try:
        obj = factory()
    except Exception as e:
        raise ConversionError(f"source python {source.ref!r}: calling it failed: {type(e).__name__}: {e}") from e
    return from_object(obj, source.ref, signature)


def from_object(obj: Any, where: str, signature: str = "serving_default") -> Loaded:
    """A Keras model (Keras 3 or tf_keras) or a tf.Module with a serving signature."""
    import tensorflow as tf

    if _is_keras(obj):
        return load_keras(obj)
    if isinstance(obj, tf.Module):
        return _load_module(obj, where, signature)
    raise ConversionError(
        f"source python {where!r} returned {type(obj).__module__}.{type(obj).__name__}; expected a Keras "
        "model "
        "or a tf.Module with a serving signature (a @tf.function with an input_signature)"
    )


def _is_keras(obj: Any) -> bool:
    mod = type(obj).__module__
    return (
        (
            mod.startswith(("keras", "tf_keras"))
            or any(c.__module__.startswith(("keras", "tf_keras")) for c in type(obj).__mro__)
        )
        and hasattr(obj, "inputs")
        and hasattr(obj, "outputs")
    )


def _load_keras_file(path: Path) -> Any:
    import os

    if not path.exists():
        raise SpecError(f"source keras_file: {path} does not exist")
    errors: list[str] = []
    loaders: list[tuple[str, Callable[[], Any]]] = []
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        import keras

        loaders.append(("keras", lambda: keras.saving.load_model(str(path), compile=False)))
    if importlib.util.find_spec("tf_keras") is not None:
        import tf_keras

        loaders.append(("tf_keras", lambda: tf_keras.models.load_model(str(path), compile=False)))
    for name, load in loaders:
        try:
            return load()
        except Exception as e:
            errors.append(f"{name}: {type(e).__name__}: {e}")
    hint = "" if importlib.util.find_spec("tf_keras") else " (legacy Keras 2 files may need `pip install tf-keras`)"
    raise ConversionError(f"source keras_file {path} cannot be loaded{hint}:\n  " + "\n  ".join(errors))


def _shape(shape: Any) -> tuple[int | None, ...]:
    if shape is None:
        raise ConversionError("a tensor of unknown rank cannot be served; give the model a fixed-rank signature")
    dims = shape.as_list() if hasattr(shape, "as_list") else list(shape)
    return tuple(None if d is None or d < 0 else int(d) for d in dims)


def _dtype(dtype: Any) -> str:
    name = getattr(dtype, "name", dtype)
    return dtypes.normalize(str(name))


def _output_names(model: Any, count: int) -> list[str]:
    names = getattr(model, "output_names", None)
    if isinstance(model.output, dict):
        return list(model.output.keys())
    if names and len(names) == count:
        return [str(n) for n in names]
    if count == 1 and getattr(model, "layers", None):
        return [str(model.layers[-1].name)]
    return [f"output_{i}" for i in range(count)]


def load_keras(model: Any) -> Loaded:
    """Keras 3 or tf_keras model: inputs named by their Input, outputs by output layer (or dict key)."""
    import tensorflow as tf

    structured_in = model.input
    if isinstance(structured_in, dict):
        in_names = list(structured_in.keys())
        in_tensors = list(structured_in.values())
    else:
        in_tensors = list(model.inputs)
        in_names = [str(t.name).split(":")[0] for t in in_tensors]
    inputs = [Tensor(n, _dtype(t.dtype), _shape(t.shape)) for n, t in zip(in_names, in_tensors, strict=True)]
    out_tensors = list(model.output.values()) if isinstance(model.output, dict) else list(model.outputs)
    out_names = _output_names(model, len(out_tensors))
    outputs = [Tensor(n, _dtype(t.dtype), _shape(t.shape)) for n, t in zip(out_names, out_tensors, strict=True)]

    @tf.autograph.experimental.do_not_convert
    def call(feed: dict[str, Any]) -> dict[str, Any]:
        if isinstance(structured_in, dict):
            args: Any = {n: feed[n] for n in in_names}
        elif len(in_names) == 1:
            args = feed[in_names[0]]
        else:
            args = [feed[n] for n in in_names]
        result = model(args, training=False)
        if isinstance(result, dict):
            return {n: result[n] for n in out_names}
        flat = tf.nest.flatten(result)
        return dict(zip(out_names, flat, strict=True))

    return Loaded("keras", inputs, outputs, call, keep=model)


def _load_module(module: Any, where: str, signature: str) -> Loaded:
    """A tf.Module: its `signatures` dict, else its one @tf.function with an input_signature."""
    import tensorflow as tf

    sigs = getattr(module, "signatures", None)
    if isinstance(sigs, dict) and sigs:
        if signature not in sigs:
            raise SpecError(f"source python {where!r}: signature {signature!r} not found; it has {', '.join(sigs)}")
        fn = sigs[signature]
        if not hasattr(fn, "structured_input_signature"):
            fn = fn.get_concrete_function()
        return _from_concrete(fn, "module", module)
    found = [
        getattr(module, n)
        for n in dir(module)
        if not n.startswith("_")
        and isinstance(getattr(module, n, None), tf.types.experimental.PolymorphicFunction)
        and getattr(module, n).input_signature is not None
    ]
    call = getattr(module, "__call__", None)  # noqa: B004 - a tf.function, not any callable
    if isinstance(call, tf.types.experimental.PolymorphicFunction) and call.input_signature is not None:
        found.insert(0, call)
    if not found:
        raise ConversionError(
            f"source python {where!r} returned a tf.Module without a serving signature: decorate a method "
            "with "
            "@tf.function(input_signature=[tf.TensorSpec(shape, dtype, name=...)]) or set "
            "module.signatures = "
            "{'serving_default': concrete_function}"
        )
    return _from_concrete(found[0].get_concrete_function(), "module", module)


def _from_concrete(fn: Any, kind: str, keep: Any) -> Loaded:
    import tensorflow as tf

    args, kwargs = fn.structured_input_signature
    specs = list(kwargs.items()) if kwargs else [(s.name, s) for s in tf.nest.flatten(args)]
    inputs = [Tensor(str(n), _dtype(s.dtype), _shape(s.shape)) for n, s in specs]
    outs = fn.structured_outputs
    if isinstance(outs, dict):
        out_items = sorted(outs.items())
    else:
        out_items = [(f"output_{i}", t) for i, t in enumerate(tf.nest.flatten(outs))]
    outputs = [Tensor(str(n), _dtype(t.dtype), _shape(t.shape)) for n, t in out_items]
    names = [t.name for t in inputs]
    by_kw = bool(kwargs)

    @tf.autograph.experimental.do_not_convert
    def call(feed: dict[str, Any]) -> dict[str, Any]:
        result = fn(**{n: feed[n] for n in names}) if by_kw else fn(*[feed[n] for n in names])
        if isinstance(result, dict):
            return {t.name: result[t.name] for t in outputs}
        return dict(zip([t.name for t in outputs], tf.nest.flatten(result), strict=True))

    return Loaded(kind, inputs, outputs, call, keep=keep)


def load_saved_model(path: Path, signature: str) -> Loaded:
    import tensorflow as tf

    if not (path / "saved_model.pb").is_file():
        raise SpecError(f"source saved_model: {path} is not a SavedModel folder (no saved_model.pb)")
    read_signature(path, signature)  # clear error for a missing signature before loading
    loaded = tf.saved_model.load(str(path))
    fn = loaded.signatures[signature]
    return _from_concrete(fn, "saved_model", loaded)


def read_signature(path: Path, signature: str = "serving_default") -> tuple[list[Tensor], list[Tensor]]:
    """A SavedModel signature from its protobuf, without building or running the graph."""
    import tensorflow as tf
    from tensorflow.python.saved_model.loader_impl import parse_saved_model

    saved = parse_saved_model(str(path))
    for mg in saved.meta_graphs:
        sigs = mg.signature_def
        if signature in sigs:
            sd = sigs[signature]

            def tensors(items: Any) -> list[Tensor]:
                found = []
                for name, info in sorted(items.items()):
                    shape = (
                        None
                        if info.tensor_shape.unknown_rank
                        else tuple(None if d.size < 0 else int(d.size) for d in info.tensor_shape.dim)
                    )
                    if shape is None:
                        raise ConversionError(f"{path}: signature {signature!r} tensor {name!r} has unknown rank")
                    found.append(Tensor(name, _dtype(tf.dtypes.as_dtype(info.dtype).name), shape))
                return found

            return tensors(sd.inputs), tensors(sd.outputs)
    have = sorted({k for mg in saved.meta_graphs for k in mg.signature_def if not k.startswith("__")})
    raise SpecError(
        f"{path}: signature {signature!r} not found; the SavedModel has: "
        f"{', '.join(have) or 'no signatures'}. "
        "Set `signature:` in the spec to one of them."
    )


# --------------------------------------------------------------------------------------------- renaming

#: names TensorFlow and Keras 3 make up when a model is saved with tf.saved_model.save
GENERIC_NAME = re.compile(r"^(inputs?|outputs?|output|args?|keras_tensor|serving_default_\w+)(_\d+)?$")


def _fits(spec_tensor: Any, t: Tensor) -> bool:
    if spec_tensor.dtype != t.dtype:
        return False
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
        keep=loaded.keep,
        notes=[
            *loaded.notes,
            "renamed " + ", ".join(f"{k} -> {v}" for k, v in {**in_map, **out_map}.items()),
        ],
    )
    return renamed, {**in_map, **out_map}


# --------------------------------------------------------------------------------------------- resolve


def _fmt_shape(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("-1" if d is None else str(d) for d in shape) + "]"


def detect_max_batch_size(model: ModelSpec, inputs: list[Tensor], outputs: list[Tensor]) -> int:
    """Spec value when set; else 8 (the default) when every tensor has a variable first dim, else 0."""
    every = [*inputs, *outputs]
    batchable = bool(every) and all(len(t.shape) >= 1 and t.shape[0] is None for t in every)
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
            if not t.shape or t.shape[0] is not None:
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


def _dims_of(t: Tensor, mbs: int) -> tuple[list[int], list[int] | None]:
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
            dims, reshape = _dims_of(t, mbs)
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
        dims, reshape = _dims_of(t, mbs)
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


def tensors_of(model: ModelSpec) -> Tensors:
    """Tensors of a resolved model."""
    assert model.inputs is not None and model.outputs is not None
    return Tensors(list(model.inputs), list(model.outputs))


# --------------------------------------------------------------------------------------------- command


def inspect_yaml(source: Source, base_dir: Path, signature: str = "serving_default", name: str | None = None) -> str:
    """The model's tensors as a spec YAML entry (a `models:` list item)."""
    import yaml

    loaded = load_source(source, base_dir, signature)
    every = [*loaded.inputs, *loaded.outputs]
    batching = bool(every) and all(t.shape and t.shape[0] is None for t in every)
    mbs = 8 if batching else 0

    def entry(t: Tensor) -> dict[str, Any]:
        dims, reshape = _dims_of(t, mbs)
        d: dict[str, Any] = {"name": t.name, "dtype": t.dtype, "dims": dims}
        if reshape is not None:
            d["reshape"] = reshape
        return d

    model_name = name or Path(source.ref.split(":")[-1]).stem.replace("build_", "") or "model"
    doc = {
        "name": model_name,
        "source": {source.kind: source.ref},
        "target": "onnx",
        "max_batch_size": mbs,
        **({"signature": signature} if signature != "serving_default" else {}),
        "inputs": [entry(t) for t in loaded.inputs],
        "outputs": [entry(t) for t in loaded.outputs],
    }
    text = yaml.safe_dump([doc], sort_keys=False, default_flow_style=None)
    comment = (
        "# max_batch_size: 8 is the default for a model whose tensors all have a variable first dim\n"
        if (batching)
        else "# no variable first dim on every tensor: the model does not batch (dims are the full shape)\n"
    )
    return comment + text


def source_from_arg(arg: str) -> Source:
    """`inspect` argument -> Source.

    A SavedModel folder, a .keras/.h5 file, or file.py:function / module:function.
    """
    if arg.endswith((".keras", ".h5")):
        return Source(keras_file=arg)
    if ":" in arg and not Path(arg).exists():
        return Source(python=arg)
    return Source(saved_model=arg)


def inspect_command(
    source: str, signature: str = "serving_default", name: str | None = None, console_out: Any = None
) -> int:
    """`repo-builder inspect SOURCE [--signature S] [--name N]`: print the model's tensors as spec YAML.

    SOURCE is relative to the current folder. Returns the exit code (0). Raises RepoBuilderError subclasses.
    """
    try:
        src = source_from_arg(source)
    except ValueError as e:
        raise SpecError(f"{source}: {e}") from None
    path = source_path(src, Path.cwd())
    if path is not None and not path.exists():  # before the seconds TensorFlow's import takes
        raise SpecError(f"{source}: no such file or folder")
    import tempfile

    from repo_builder.converters.base import native_output_to, quiet_tensorflow
    from repo_builder.errors import RepoBuilderError

    quiet_tensorflow()
    # TensorFlow's C++ start-up chatter goes aside; it is shown only when something unexpected fails
    with tempfile.NamedTemporaryFile(prefix="repo-builder-inspect-", suffix=".log") as aside:
        try:
            with native_output_to(Path(aside.name)):
                text = inspect_yaml(src, Path.cwd(), signature, name)
        except RepoBuilderError:
            raise
        except BaseException:
            sys.stderr.write(Path(aside.name).read_text(errors="replace"))
            raise
    if console_out is None:
        sys.stdout.write(text)
    else:
        console_out.print(text, end="", markup=False, highlight=False)
    return 0
