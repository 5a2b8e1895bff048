"""The CPU preview when a batch of requests fails (issue 11, item 10): every request gets its own error and
tritonserver stays up. One TritonError object shared by a batch's responses made the server die (SIGSEGV).
Both ways a batch computes are run: in execute() (CPU instances) and as GPU instances batch, on the compute
thread and padded (REPO_BUILDER_GPU_BATCHING=1 makes CPU instances batch so)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from repo_builder.serve import EmbeddedServer
from tests.integration.serve.python_target import write_model_py

pytestmark = pytest.mark.server

CONFIG = """
    name: "picky"
    platform: "onnxruntime_onnx"
    max_batch_size: 8
    input [ { name: "x" data_type: TYPE_FP32 dims: [ 2 ] } ]
    output [ { name: "y" data_type: TYPE_FP32 dims: [ 11 ] } ]
    dynamic_batching { max_queue_delay_microseconds: 500000 }
    instance_group [ { kind: KIND_CPU count: 1 } ]
"""


def picky_repository(root: Path) -> Path:
    """An ONNX model that fails on every batch of up to 8 rows: it reshapes [N, 2] to [-1, 11]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    (root / "picky" / "1").mkdir(parents=True)
    (root / "picky" / "config.pbtxt").write_text(textwrap.dedent(CONFIG))
    shape = numpy_helper.from_array(np.array([-1, 11], dtype=np.int64), name="shape")
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "picky",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 11])],
        [shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(root / "picky" / "1" / "model.onnx"))
    return root


@pytest.fixture(params=["in execute", "compute thread"], autouse=True)
def compute_thread(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPO_BUILDER_GPU_BATCHING", "1" if request.param == "compute thread" else "0")


def test_a_failing_batch_answers_each_request_with_an_error(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the preview runs ONNX models with onnxruntime")
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    repo = picky_repository(tmp_path / "repo")
    with EmbeddedServer(repo, startup_timeout=180) as server:
        client = httpclient.InferenceServerClient(server.http_url.removeprefix("http://"), concurrency=8)
        pending = []
        for _ in range(8):  # sent together: the dynamic batcher hands them to one execute() call
            x = httpclient.InferInput("x", [1, 2], "FP32")
            x.set_data_from_numpy(np.ones((1, 2), dtype=np.float32))
            pending.append(client.async_infer("picky", [x]))
        errors = []
        for request in pending:
            with pytest.raises(InferenceServerException) as e:
                request.get_result()
            errors.append(str(e.value))
        assert all("picky (repo-builder preview)" in m for m in errors), errors
        assert server.is_running(), server.log_path.read_text(errors="replace")[-3000:]
        assert client.is_server_live() and client.is_model_ready("picky")
        client.close()


PY_CONFIG = """
    name: "picky_py"
    backend: "python"
    max_batch_size: 8
    input [ { name: "x" data_type: TYPE_FP32 dims: [ 2 ] } ]
    output [ { name: "y" data_type: TYPE_FP32 dims: [ 11 ] } ]
    dynamic_batching { max_queue_delay_microseconds: 500000 }
    instance_group [ { kind: KIND_CPU count: 1 } ]
"""


def test_python_target_model_py_answers_a_failing_batch_with_errors(tmp_path: Path) -> None:
    """The python target's generated model.py (onnxruntime inside Triton's python backend) does the same."""
    pytest.importorskip("onnxruntime", reason="the generated model.py runs the ONNX file with onnxruntime")
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    repo = picky_repository(tmp_path / "repo")
    (repo / "picky").rename(repo / "picky_py")
    (repo / "picky_py" / "config.pbtxt").write_text(textwrap.dedent(PY_CONFIG))
    write_model_py(repo / "picky_py" / "1", "picky_py", [2], [11])
    with EmbeddedServer(repo, startup_timeout=180) as server:
        client = httpclient.InferenceServerClient(server.http_url.removeprefix("http://"), concurrency=8)
        pending = []
        for _ in range(8):
            x = httpclient.InferInput("x", [1, 2], "FP32")
            x.set_data_from_numpy(np.ones((1, 2), dtype=np.float32))
            pending.append(client.async_infer("picky_py", [x]))
        errors = []
        for request in pending:
            with pytest.raises(InferenceServerException) as e:
                request.get_result()
            errors.append(str(e.value))
        assert all("picky_py: " in m for m in errors), errors
        assert server.is_running(), server.log_path.read_text(errors="replace")[-3000:]
        assert client.is_server_live() and client.is_model_ready("picky_py")
        client.close()
