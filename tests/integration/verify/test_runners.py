"""The build's check running converted artifacts with the real onnxruntime: an ONNX model onnxruntime cannot
load, or fails running, is reported as that, located, with what to do; strings cross as onnxruntime takes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from repo_builder.errors import ConversionError
from repo_builder.verify.runners import onnx_runner
from tests.integration.examples import run_build

pytestmark = pytest.mark.tensorflow

UPPER = """
import tensorflow as tf


class Upper(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def __call__(self, text):
        return {"upper": tf.strings.upper(text)}


def upper():
    return Upper()
"""


def test_onnx_model_onnxruntime_cannot_load_is_reported_with_what_to_do(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")  # an op no runtime implements
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    model.ir_version = 8  # one every onnxruntime reads: the op, not the file's version, is what it refuses
    onnx.save(model, tmp_path / "model.onnx")
    with pytest.raises(ConversionError) as e:
        onnx_runner(tmp_path / "model.onnx", "m", "converted ONNX model")
    text = e.value.message
    assert text.startswith(
        "model m: the build's check could not load the converted ONNX model (model.onnx) in onnxruntime: "
    )
    assert "Frobnicate" in text  # onnxruntime's own message, quoted
    assert "savedmodel, or python with `python_runtime: tensorflow`" in text
    assert "locale" not in text  # the locale hint only where onnxruntime names a locale


def test_onnx_model_that_fails_running_is_reported_with_what_to_do(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    shape = helper.make_tensor("shape", TensorProto.INT64, [1], [3])
    graph = helper.make_graph(  # loads (the input's length is unknown), fails running on any length but 3
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
        initializer=[shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, tmp_path / "model.onnx")
    run = onnx_runner(tmp_path / "model.onnx", "m", "converted ONNX model")
    assert run({"x": np.ones(3, np.float32)})["y"].tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ConversionError) as e:
        run({"x": np.ones(4, np.float32)})
    text = e.value.message
    assert text.startswith(
        "model m: the build's check loaded the converted ONNX model (model.onnx) in onnxruntime, which failed "
        "running it on the inputs x [4] float32: "
    ), text
    assert "Reshape" in text and "{4}" in text  # onnxruntime's own message, quoted
    assert "verify: {inputs: samples.npz}" in text
    assert "savedmodel, or python with `python_runtime: tensorflow`" in text
    assert "Reshape" not in capfd.readouterr().err  # not logged by onnxruntime as well


def test_strings_cross_onnxruntime_as_bytes(tmp_path: Path) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.STRING, [2])],
        [helper.make_tensor_value_info("y", TensorProto.STRING, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, tmp_path / "model.onnx")
    got = onnx_runner(tmp_path / "model.onnx")({"x": np.array([b"ab", "\u00e9".encode()], dtype=object)})["y"]
    assert got.dtype == object and got.tolist() == [b"ab", "\u00e9".encode()]


def test_upper_case_model_builds_or_fails_with_the_environment_named(tmp_path: Path) -> None:
    """tf.strings.upper converts to onnxruntime's StringNormalizer, which needs the en_US.UTF-8 locale: where it
    is installed the model builds; where not, the failure says so (it was onnxruntime's bare `Fail: ...`)."""
    (tmp_path / "models.py").write_text(UPPER)
    spec = tmp_path / "models.yaml"
    models = [{"name": "upper_onnx", "source": {"python": "models.py:upper"}, "target": "onnx"}]
    spec.write_text(yaml.safe_dump({"repository": "repo", "models": models}))
    done = run_build(spec, tmp_path / "repo")
    data = json.loads((tmp_path / "repo" / "repo_builder_manifest.json").read_text())
    if "upper_onnx" in data["models"]:
        assert done.returncode == 0, done.stdout + done.stderr
        return
    assert done.returncode == 1 and "Traceback" not in done.stderr
    error = data["failed"]["upper_onnx"]["error"]
    assert error.startswith("model upper_onnx: the build's check could not load the converted ONNX model"), error
    assert "en_US.UTF-8" in error and "locale-gen en_US.UTF-8" in error
    assert "savedmodel, or python with `python_runtime: tensorflow`" in error
