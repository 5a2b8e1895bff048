"""Where a generated model.py or a preview computes (templates/_device.py.j2), and the stub's numpy.

Run here with the real onnxruntime, which is the CPU build: a GPU instance must refuse to load rather than
compute on the CPU. That the CUDA provider is taken on a GPU is shown by the GPU acceptance script
(scripts/gpu_acceptance.sh) on a GPU host, which CI does not have.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from repo_builder.errors import DeploymentError
from repo_builder.render.config import render_template, templates_dir
from repo_builder.serve.stub import check_numpy


def device_code() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile((templates_dir() / "_device.py.j2").read_text(), "_device.py", "exec"), namespace)
    return namespace


def identity_onnx(path: Path) -> Path:
    onnx = pytest.importorskip("onnx", reason="the convert extra (onnx) is not installed")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


def test_placement_reads_tritons_instance_arguments() -> None:
    placement = device_code()["placement"]
    assert placement({"model_instance_kind": "GPU", "model_instance_device_id": "1"}) == ("GPU", 1)
    assert placement({"model_instance_kind": "CPU", "model_instance_device_id": "0"}) == ("CPU", 0)
    assert placement({}) == ("CPU", 0)


def test_gpu_instance_without_a_cuda_onnxruntime_refuses_to_load(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the convert extra (onnxruntime) is not installed")
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider; the GPU acceptance script covers that case")
    code = device_code()
    model = str(identity_onnx(tmp_path / "m.onnx"))
    with pytest.raises(code["DeviceError"], match=r"has no CUDAExecutionProvider.*install onnxruntime-gpu"):
        code["onnx_session"](model, {"model_instance_kind": "GPU", "model_instance_device_id": "0"})
    session, where = code["onnx_session"](model, {"model_instance_kind": "CPU"})
    assert where == "CPU (CPUExecutionProvider)" and session.get_providers() == ["CPUExecutionProvider"]


@pytest.mark.parametrize("template", ["python_model.py.j2", "preview_model.py.j2"])
def test_model_py_templates_compile_with_the_device_code(template: str) -> None:
    context = dict(
        version="0",
        model_name="m",
        runtime="onnxruntime",
        artifact="model.onnx",
        signature="serving_default",
        max_batch_size=8,
        inputs="[('x', 'float32')]",
        outputs="[('y', 'float32')]",
        tf1=False,
    )
    code = render_template(template, **context)
    compile(code, template, "exec")
    assert "def onnx_session(" in code and "class TritonPythonModel" in code


def test_numpy_2_in_the_stubs_environment_is_refused() -> None:
    with pytest.raises(DeploymentError, match=r"numpy 2\.1\.0 is installed.*pip install 'numpy<2'"):
        check_numpy("2.1.0")
    check_numpy("1.26.4")
