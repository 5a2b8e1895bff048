"""Load any source the spec names and read its serving signature (TensorFlow, imported inside through deps).

`load_source()` turns a SavedModel folder, a Keras `.keras`/`.h5` file, or a Python factory returning a Keras
model or a `tf.Module` into a `Loaded` model: its tensors as the user sees them and a callable that runs it.
Inspection never runs the model: SavedModel signatures are read from the protobuf, Keras models from their
symbolic Inputs and outputs.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from repo_builder import deps
from repo_builder.errors import ConversionError, SpecError
from repo_builder.inspect.ops import unconvertible_ops
from repo_builder.inspect.resolve import dims_of
from repo_builder.inspect.tensors import Loaded, Tensor
from repo_builder.inspect.tf1 import is_tf1_saved_model, load_tf1
from repo_builder.spec.models import ModelSpec, Source
from repo_builder.triton import dtypes


def _tensorflow() -> Any:
    """TensorFlow, or MissingDependencyError with the install hint."""
    return deps.require("tensorflow")


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
    """Load a source with TensorFlow. Raises ConversionError/SpecError saying what and where, and
    MissingDependencyError (with the install hint) before anything else when TensorFlow cannot be imported."""
    _tensorflow()  # before a Python factory's own `import tensorflow` would fail less helpfully
    if source.kind == "saved_model":
        return load_saved_model(base_dir / source.ref, signature)
    if source.kind == "keras_file":
        return load_keras(_load_keras_file(base_dir / source.ref, source.safe_mode, source.ref))
    factory = load_factory(source.ref, base_dir)
    try:
        obj = factory()
    except Exception as e:
        raise ConversionError(f"source python {source.ref!r}: calling it failed: {type(e).__name__}: {e}") from e
    return from_object(obj, source.ref, signature)


def from_object(obj: Any, where: str, signature: str = "serving_default") -> Loaded:
    """A Keras model (Keras 3 or tf_keras) or a tf.Module with a serving signature."""
    tf = _tensorflow()

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


def _load_keras_file(path: Path, safe_mode: bool = True, ref: str | None = None) -> Any:
    """The Keras model in the file at `path`, which the spec or the command line names `ref`."""
    import os

    if not path.exists():
        raise SpecError(f"source keras_file: {path} does not exist")
    errors: list[str] = []
    loaders: list[tuple[str, Callable[[], Any]]] = []
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        import keras

        loaders.append(("keras", lambda: keras.saving.load_model(str(path), compile=False, safe_mode=safe_mode)))
    if importlib.util.find_spec("tf_keras") is not None:
        import tf_keras

        loaders.append(("tf_keras", lambda: tf_keras.models.load_model(str(path), compile=False, safe_mode=safe_mode)))
    for name, load in loaders:
        try:
            return load()
        except Exception as e:
            errors.append(f"{name}: {type(e).__name__}: {e}")
    if safe_mode and any("safe_mode" in e for e in errors):  # Keras 3 refuses to run a Lambda layer's code
        raise ConversionError(
            f"source keras_file {path} holds Python code (a Lambda layer) that Keras loads only with safe_mode "
            "off, which EXECUTES that code. If you trust the file: in the spec, set `safe_mode: false` in the "
            f"model's source: {{keras_file: {ref or path}, safe_mode: false}}; with inspect: `repo-builder "
            f"inspect {ref or path} --no-safe-mode`.\n  "
            + "\n  ".join(e for e in errors if "safe_mode" in e)  # not tf_keras' failure to read a Keras 3 file
        )
    legacy = path.suffix == ".h5" and not importlib.util.find_spec("tf_keras")
    hint = " (legacy Keras 2 files may need `pip install tf-keras`)" if legacy else ""
    raise ConversionError(f"source keras_file {path} cannot be loaded{hint}:\n  " + "\n  ".join(errors))


def _shape(shape: Any) -> tuple[int | None, ...] | None:
    """Full shape, None for a tensor of unknown rank (the spec's `dims` then give it, see resolve)."""
    if shape is None or getattr(shape, "rank", 0) is None:
        return None
    dims = shape.as_list() if hasattr(shape, "as_list") else list(shape)
    return tuple(None if d is None or d < 0 else int(d) for d in dims)


def _dtype(dtype: Any) -> str:
    """Triton's name of a TensorFlow dtype; a TF1 reference type (float32_ref) is its base type."""
    name = str(getattr(dtype, "name", dtype))
    return dtypes.normalize(name.removesuffix("_ref"))


def flatten_outputs(structure: Any, sort: bool) -> list[tuple[str, Any]]:
    """(name, tensor) of a model's outputs. A nested dict is flattened to `outer_inner` names (letters, digits
    and `_` are valid in every Triton backend and in a SavedModel signature); a list inside it to `outer_0`.
    Raises ConversionError when two flattened names collide."""
    found: list[tuple[str, Any]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            items = sorted(value.items(), key=lambda kv: str(kv[0])) if sort else list(value.items())
            for k, v in items:
                walk(f"{prefix}_{k}" if prefix else str(k), v)
        elif isinstance(value, list | tuple) and prefix:
            for i, v in enumerate(value):
                walk(f"{prefix}_{i}", v)
        else:
            found.append((prefix, value))

    walk("", structure)
    names = [n for n, _ in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConversionError(
            f"the model's nested outputs flatten to the same name {', '.join(twice)}; rename the model's output "
            "keys so that `outer_inner` names differ"
        )
    return found


def _leaves(result: Any, nested: bool, sort: bool) -> dict[str, Any]:
    """A model's result keyed like flatten_outputs names it."""
    return dict(flatten_outputs(result, sort)) if nested else result


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
    tf = _tensorflow()

    structured_in = model.input
    if isinstance(structured_in, dict):
        in_names = list(structured_in.keys())
        in_tensors = list(structured_in.values())
    else:
        in_tensors = list(model.inputs)
        in_names = [str(t.name).split(":")[0] for t in in_tensors]
    inputs = [Tensor(n, _dtype(t.dtype), _shape(t.shape)) for n, t in zip(in_names, in_tensors, strict=True)]
    nested = isinstance(model.output, dict) and any(isinstance(v, dict | list | tuple) for v in model.output.values())
    if nested:
        flat = flatten_outputs(model.output, sort=False)
        out_names, out_tensors = [n for n, _ in flat], [t for _, t in flat]
    else:
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
            result = _leaves(result, nested, sort=False)
            return {n: result[n] for n in out_names}
        flat = tf.nest.flatten(result)
        return dict(zip(out_names, flat, strict=True))

    return Loaded("keras", inputs, outputs, call, trackable=model)


def _load_module(module: Any, where: str, signature: str) -> Loaded:
    """A tf.Module: its `signatures` dict, else its one @tf.function with an input_signature."""
    tf = _tensorflow()

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


def _from_concrete(fn: Any, kind: str, trackable: Any) -> Loaded:
    tf = _tensorflow()

    args, kwargs = fn.structured_input_signature
    specs = list(kwargs.items()) if kwargs else [(s.name, s) for s in tf.nest.flatten(args)]
    inputs = [Tensor(str(n), _dtype(s.dtype), _shape(s.shape)) for n, s in specs]
    outs = fn.structured_outputs
    nested = isinstance(outs, dict) and any(isinstance(v, dict | list | tuple) for v in outs.values())
    if isinstance(outs, dict):
        out_items = flatten_outputs(outs, sort=True)
    else:
        out_items = [(f"output_{i}", t) for i, t in enumerate(tf.nest.flatten(outs))]
    outputs = [Tensor(str(n), _dtype(t.dtype), _shape(t.shape)) for n, t in out_items]
    names = [t.name for t in inputs]
    by_kw = bool(kwargs)

    @tf.autograph.experimental.do_not_convert
    def call(feed: dict[str, Any]) -> dict[str, Any]:
        result = fn(**{n: feed[n] for n in names}) if by_kw else fn(*[feed[n] for n in names])
        if isinstance(result, dict):
            result = _leaves(result, nested, sort=True)
            return {t.name: result[t.name] for t in outputs}
        return dict(zip([t.name for t in outputs], tf.nest.flatten(result), strict=True))

    return Loaded(kind, inputs, outputs, call, trackable=trackable)


def give_unknown_ranks(model: ModelSpec, loaded: Loaded) -> Loaded:
    """The spec's dims for the inputs whose rank the model leaves open, and the output shapes that follow from
    them (the model traced once with those shapes). Unchanged when no input has unknown rank or the spec does
    not give it (resolve then says what to add)."""
    from repo_builder.inspect.resolve import detect_max_batch_size, model_shape

    given = {t.name: t for t in model.inputs or []}
    open_inputs = [t for t in loaded.inputs if t.shape is None and t.name in given]
    if not open_inputs:
        return loaded
    mbs = detect_max_batch_size(model, loaded.inputs, loaded.outputs)
    inputs = [
        Tensor(t.name, t.dtype, model_shape(given[t.name], mbs)) if t in open_inputs else t for t in loaded.inputs
    ]
    outputs = loaded.outputs
    if loaded.kind != "saved_model_v1" and any(t.shape is None for t in outputs):
        tf = _tensorflow()
        specs = {
            t.name: tf.TensorSpec(t.shape, tf.as_dtype(dtypes.to_tensorflow(t.dtype)), name=t.name) for t in inputs
        }
        traced = tf.function(loaded.call).get_concrete_function(specs).structured_outputs
        outputs = [
            Tensor(t.name, t.dtype, _shape(traced[t.name].shape)) if t.shape is None and t.name in traced else t
            for t in outputs
        ]
    return Loaded(
        loaded.kind,
        inputs,
        outputs,
        loaded.call,
        trackable=loaded.trackable,
        notes=loaded.notes,
        fetches=loaded.fetches,
    )


def load_saved_model(path: Path, signature: str) -> Loaded:
    tf = _tensorflow()

    if not (path / "saved_model.pb").is_file():
        raise SpecError(f"source saved_model: {path} is not a SavedModel folder (no saved_model.pb)")
    inputs, outputs = read_signature(path, signature)  # clear error for a missing signature before loading
    try:
        if is_tf1_saved_model(path):
            return load_tf1(path, signature, inputs, outputs)
        loaded = tf.saved_model.load(str(path))
        fn = loaded.signatures[signature]
    except (ConversionError, SpecError):
        raise
    except Exception as e:
        raise ConversionError(
            f"source saved_model {path}: TensorFlow's SavedModel loader rejects it: {type(e).__name__}: "
            f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}\n"
            "The folder is not a SavedModel this TensorFlow can run; check it with "
            f"`saved_model_cli show --dir {path} --all`, or save the model again"
        ) from e
    return _from_concrete(fn, "saved_model", loaded)


def read_signature(path: Path, signature: str = "serving_default") -> tuple[list[Tensor], list[Tensor]]:
    """A SavedModel signature from its protobuf, without building or running the graph (shape None: unknown
    rank)."""
    tf = _tensorflow()
    parse_saved_model = deps.require("tensorflow.python.saved_model.loader_impl").parse_saved_model

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
                    found.append(Tensor(name, _dtype(tf.dtypes.as_dtype(info.dtype).name), shape))
                return found

            return tensors(sd.inputs), tensors(sd.outputs)
    have = sorted({k for mg in saved.meta_graphs for k in mg.signature_def if not k.startswith("__")})
    raise SpecError(
        f"{path}: signature {signature!r} not found; the SavedModel has: "
        f"{', '.join(have) or 'no signatures'}. "
        "Set `signature:` in the spec to one of them."
    )


def inspect_yaml(source: Source, base_dir: Path, signature: str = "serving_default", name: str | None = None) -> str:
    """The model's tensors as a spec YAML entry (a `models:` list item)."""
    import yaml

    loaded = load_source(source, base_dir, signature)
    every = [t.shape for t in [*loaded.inputs, *loaded.outputs] if t.shape is not None]
    batching = bool(every) and all(s and s[0] is None for s in every)
    mbs = 8 if batching else 0
    unknown = [t.name for t in [*loaded.inputs, *loaded.outputs] if t.shape is None]

    def entry(t: Tensor) -> dict[str, Any]:
        if t.shape is None:  # the spec must say; -1 keeps the entry valid YAML for the spec
            return {"name": t.name, "dtype": t.dtype, "dims": [-1]}
        dims, reshape = dims_of(t, mbs)
        d: dict[str, Any] = {"name": t.name, "dtype": t.dtype, "dims": dims}
        if reshape is not None:
            d["reshape"] = reshape
        return d

    gaps = unconvertible_ops(loaded)
    model_name = name or Path(source.ref.split(":")[-1]).stem.replace("build_", "") or "model"
    doc = {
        "name": model_name,
        "source": {source.kind: source.ref, **({} if source.safe_mode else {"safe_mode": False})},
        "target": "savedmodel" if gaps else "onnx",
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
    if gaps:
        comment += (
            f"# tf2onnx cannot convert {', '.join(gaps)}: targets onnx, tensorrt and python with onnxruntime "
            "will fail; savedmodel, or python with `python_runtime: tensorflow`, run the model as TensorFlow\n"
        )
    if unknown:
        comment += (
            f"# {', '.join(unknown)}: unknown rank in the model's signature; dims [-1] is a placeholder, replace "
            "it with the tensor's real dims\n"
        )
    return comment + text
