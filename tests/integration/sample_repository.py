"""The embedded server and validator tests' small real repository. The session fixtures `model_repository`,
`embedded_server` and `served_configs` (tests/integration/conftest.py) serve it once. The repository is
written by hand here (configs, repo_builder_manifest.json, <model>/reference.npz computed locally with numpy,
onnxruntime and TensorFlow) so these tests do not depend on the build command.

Models:
  py_add    python backend, y = 2x + 1, max_batch_size 8, dynamic batching, 2 CPU instances
  onnx_mlp  onnxruntime_onnx (previewed), softmax(xW + b), KIND_GPU x2 -> KIND_CPU, TensorRT accelerator
  tf_scale  tensorflow_savedmodel (previewed), {y: 3x, total: sum(x)}, max_batch_size 4 (needs TensorFlow)
  trt_mlp   tensorrt_plan (previewed through trt_mlp/1/model.onnx, the ONNX of the recipe), no plan yet
  ens       ensemble: py_add twice, no reference of its own
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from repo_builder.deps import is_available

HAS_TF = is_available("tensorflow")

PY_ADD_MODEL = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "x").as_numpy()
            y = (2 * x + 1).astype(np.float32)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("y", y)]))
        return responses
"""

CONFIGS: dict[str, str] = {
    "py_add": """
        name: "py_add"
        backend: "python"
        max_batch_size: 8
        input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]
        output [ { name: "y" data_type: TYPE_FP32 dims: [ 4 ] } ]
        dynamic_batching { max_queue_delay_microseconds: 2000 }
        instance_group [ { kind: KIND_CPU count: 2 } ]
    """,
    "onnx_mlp": """
        name: "onnx_mlp"
        platform: "onnxruntime_onnx"
        max_batch_size: 16
        input [ { name: "features" data_type: TYPE_FP32 dims: [ 16 ] } ]
        output [ { name: "probs" data_type: TYPE_FP32 dims: [ 4 ] } ]
        dynamic_batching { max_queue_delay_microseconds: 1000 }
        instance_group [ { kind: KIND_GPU count: 2 } ]
        optimization { execution_accelerators { gpu_execution_accelerator { name: "tensorrt" } } }
    """,
    "tf_scale": """
        name: "tf_scale"
        platform: "tensorflow_savedmodel"
        max_batch_size: 4
        input [ { name: "x" data_type: TYPE_FP32 dims: [ 3 ] } ]
        output [
          { name: "y" data_type: TYPE_FP32 dims: [ 3 ] },
          { name: "total" data_type: TYPE_FP32 dims: [ 1 ] }
        ]
        instance_group [ { kind: KIND_CPU count: 1 } ]
    """,
    "trt_mlp": """
        name: "trt_mlp"
        platform: "tensorrt_plan"
        max_batch_size: 8
        input [ { name: "features" data_type: TYPE_FP32 dims: [ 16 ] } ]
        output [ { name: "probs" data_type: TYPE_FP32 dims: [ 4 ] } ]
        dynamic_batching { }
        instance_group [ { kind: KIND_GPU count: 1 gpus: [ 0 ] } ]
    """,
    "ens": """
        name: "ens"
        platform: "ensemble"
        max_batch_size: 8
        input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]
        output [ { name: "y" data_type: TYPE_FP32 dims: [ 4 ] } ]
        ensemble_scheduling {
          step [
            { model_name: "py_add" model_version: -1
              input_map { key: "x" value: "x" } output_map { key: "y" value: "mid" } },
            { model_name: "py_add" model_version: -1
              input_map { key: "x" value: "mid" } output_map { key: "y" value: "y" } }
          ]
        }
    """,
}


def make_onnx_mlp(path: Path, seed: int) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.normal(size=(16, 4)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(size=(4,)).astype(np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "w"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
        ],
        "mlp",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 4])],
        initializer=[w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["probs"], {"features": x})[0])


def make_savedmodel(path: Path) -> None:
    import tensorflow as tf

    class Scale(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def serve(self, x: Any) -> dict[str, Any]:
            return {"y": x * 3.0, "total": tf.reduce_sum(x, axis=1, keepdims=True)}

    module = Scale()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve.get_concrete_function()})


def manifest_entry(name: str, config: str, **extra: Any) -> dict[str, Any]:
    from google.protobuf import text_format
    from tritonclient.grpc.model_config_pb2 import DataType, ModelConfig

    cfg = text_format.Parse(config, ModelConfig())
    tensors = lambda ts: [  # noqa: E731
        {"name": t.name, "dtype": DataType.Name(t.data_type).removeprefix("TYPE_"), "dims": list(t.dims)} for t in ts
    ]
    entry: dict[str, Any] = {
        "target": {
            "python": "python",
            "onnxruntime_onnx": "onnx",
            "tensorflow_savedmodel": "savedmodel",
            "tensorrt_plan": "tensorrt",
            "ensemble": "ensemble",
        }[cfg.platform or cfg.backend],
        "platform": cfg.platform or None,
        "backend": cfg.backend or None,
        "versions": [1],
        "max_batch_size": cfg.max_batch_size,
        "dynamic_batching": cfg.HasField("dynamic_batching"),
        "inputs": tensors(cfg.input),
        "outputs": tensors(cfg.output),
        "reference": f"{name}/reference.npz",
        "tolerance": {"atol": 1e-5, "rtol": 1e-4},
        "validation": {"p99_latency_ms": None, "min_throughput": None},
        "status": "built",
    }
    entry.update(extra)
    return entry


def make_repository(root: Path, with_tensorflow: bool = HAS_TF) -> Path:
    """Write the test repository under `root` and return it."""
    rng = np.random.default_rng(0)
    models: dict[str, dict[str, Any]] = {}
    names = [n for n in CONFIGS if with_tensorflow or n != "tf_scale"]
    for name in names:
        (root / name / "1").mkdir(parents=True)
        (root / name / "config.pbtxt").write_text(textwrap.dedent(CONFIGS[name]).lstrip())
    (root / "onnx_mlp" / "build.log").write_text("conversion log\n")
    refs: dict[str, dict[str, np.ndarray]] = {}

    (root / "py_add" / "1" / "model.py").write_text(PY_ADD_MODEL)
    x = rng.normal(size=(8, 4)).astype(np.float32)
    refs["py_add"] = {"input/x": x, "output/y": 2 * x + 1}

    make_onnx_mlp(root / "onnx_mlp" / "1" / "model.onnx", seed=1)
    x = rng.normal(size=(16, 16)).astype(np.float32)
    refs["onnx_mlp"] = {
        "input/features": x,
        "output/probs": run_onnx(root / "onnx_mlp" / "1" / "model.onnx", x),
    }

    trt_onnx = root / "trt_mlp" / "1" / "model.onnx"  # the recipe's ONNX, next to where model.plan goes
    make_onnx_mlp(trt_onnx, seed=2)
    (trt_onnx.parent / "build_plan.sh").write_text("trtexec --onnx=model.onnx --saveEngine=model.plan\n")
    x = rng.normal(size=(8, 16)).astype(np.float32)
    refs["trt_mlp"] = {"input/features": x, "output/probs": run_onnx(trt_onnx, x)}

    if with_tensorflow:
        make_savedmodel(root / "tf_scale" / "1" / "model.savedmodel")
        import tensorflow as tf

        x = rng.normal(size=(4, 3)).astype(np.float32)
        fn = tf.saved_model.load(str(root / "tf_scale" / "1" / "model.savedmodel")).signatures["serving_default"]
        out = fn(x=tf.constant(x))
        refs["tf_scale"] = {"input/x": x, "output/y": out["y"].numpy(), "output/total": out["total"].numpy()}

    for name in names:
        if name == "ens":
            entry = manifest_entry(name, CONFIGS[name])
            del entry["reference"]
            models[name] = entry
            continue
        np.savez(root / name / "reference.npz", **refs[name])
        models[name] = manifest_entry(name, CONFIGS[name], status="recipe" if name == "trt_mlp" else "built")
    manifest = {
        "format": 1,
        "generator": {"repo_builder": "0.1.0", "python": "3.11", "libraries": {}},
        "triton": {"image_tag": "25.02", "http_port": 8000, "grpc_port": 8001, "metrics_port": 8002},
        "models": models,
    }
    (root / "repo_builder_manifest.json").write_text(json.dumps(manifest, indent=2))
    return root


def copy_for_validation(repo: Path, dest: Path) -> Path:
    """What the validator reads of `repo` (configs, manifest, references), to break on purpose."""
    for config in repo.glob("*/config.pbtxt"):
        (dest / config.parent.name).mkdir(parents=True)
        for item in config.parent.iterdir():
            if item.is_dir():
                (dest / config.parent.name / item.name).mkdir()
            elif item.name in ("config.pbtxt", "reference.npz", "build.log"):
                shutil.copy(item, dest / config.parent.name / item.name)
    shutil.copy(repo / "repo_builder_manifest.json", dest / "repo_builder_manifest.json")
    return dest
