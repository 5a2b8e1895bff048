"""The floor of benchmark 1: the same TensorFlow -> ONNX conversions as `repo-builder build`, done directly.

    python benchmarks/floor_onnx.py SPEC.yaml OUT_DIR

One process, no child processes, no verification, no reference vectors, no manifest, no configs. For every
model of SPEC that has a `python: file.py:function` source, it takes the same route as the build
(repo_builder/converters/tensorflow2savedmodel.py + savedmodel2onnx.py): factory -> SavedModel with an
explicit `serving_default` signature named after the model's tensors -> tf2onnx (tf_loader.from_saved_model
+ convert.from_graph_def) -> OUT_DIR/<model>.onnx. It imports nothing from repo_builder on purpose.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # as the build's workers do


def load_factory(ref: str, base_dir: Path) -> Any:
    file_part, func = ref.rsplit(":", 1)
    path = (base_dir / file_part).resolve()
    spec = importlib.util.spec_from_file_location(f"floor_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, func)


def serving_function(obj: Any) -> Any:
    """A tf.function whose input TensorSpecs and output dict keys carry the model's tensor names."""
    import tensorflow as tf

    if isinstance(getattr(obj, "inputs", None), list) and hasattr(obj, "outputs"):  # Keras
        structured = obj.input
        if isinstance(structured, dict):
            names, tensors = list(structured), list(structured.values())
        else:
            tensors = list(obj.inputs)
            names = [str(t.name).split(":")[0] for t in tensors]
        out_names = list(obj.output) if isinstance(obj.output, dict) else [str(n) for n in obj.output_names]
        specs = [tf.TensorSpec(t.shape, t.dtype, name=n) for n, t in zip(names, tensors, strict=True)]

        @tf.function(input_signature=specs)
        def serve_keras(*args: Any) -> dict[str, Any]:
            feed = dict(zip(names, args, strict=True))
            arg: Any = feed if isinstance(structured, dict) else (args[0] if len(args) == 1 else list(args))
            result = obj(arg, training=False)
            flat = result if isinstance(result, dict) else dict(zip(out_names, tf.nest.flatten(result), strict=True))
            return {n: tf.identity(flat[n], name=n) for n in out_names}

        return serve_keras
    # a tf.Module: its one @tf.function with an input_signature
    for attr in dir(obj):
        fn = getattr(obj, attr, None)
        if isinstance(fn, tf.types.experimental.PolymorphicFunction) and fn.input_signature is not None:
            return fn
    raise SystemExit(f"{type(obj).__name__}: no serving function")


def convert(name: str, obj: Any, out: Path, scratch: Path, opset: int) -> Path:
    import tensorflow as tf
    import tf2onnx
    from tf2onnx import tf_loader

    serve = serving_function(obj)
    holder = tf.Module()
    holder.model = obj
    holder.serve = serve
    saved = scratch / name / "model.savedmodel"
    tf.saved_model.save(holder, str(saved), signatures={"serving_default": serve.get_concrete_function()})
    graph_def, inputs, outputs, rename = tf_loader.from_saved_model(
        str(saved), None, None, tag="serve", signatures=["serving_default"], return_tensors_to_rename=True
    )
    target = out / f"{name}.onnx"
    tf2onnx.convert.from_graph_def(
        graph_def,
        name=name,
        input_names=inputs,
        output_names=outputs,
        opset=opset,
        tensors_to_rename=rename,
        output_path=str(target),
    )
    return target


def main(argv: list[str]) -> int:
    import yaml

    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    spec_path, out = Path(argv[0]).resolve(), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    spec = yaml.safe_load(spec_path.read_text())
    with tempfile.TemporaryDirectory(prefix="rb-floor-") as tmp:
        for m in spec["models"]:
            source = m.get("source") or {}
            if "python" not in source:
                continue
            obj = load_factory(source["python"], spec_path.parent)()
            convert(m["name"], obj, out, Path(tmp), int(m.get("opset", 17)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
