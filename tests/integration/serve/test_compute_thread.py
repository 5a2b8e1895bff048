"""How GPU instances of the preview and of the python target's model.py batch (templates/_pipeline.py.j2).

On a GPU instance, execute() reads and stacks a batch and hands it to the instance's compute thread, which
answers the requests through their response senders while the next batch is read; and ONNX Runtime runs every
batch at max_batch_size, the padding dropped from the outputs. CI has no GPU, so these tests make CPU
instances batch the same way with REPO_BUILDER_GPU_BATCHING=1 in the server's environment (the switch the
template reads) and check what must hold: every request gets its own outputs, however requests are batched,
padded and interleaved; Triton counts the requests' rows, not the padding; batches still form; and the model
unloads (finalize stops the thread) and loads again.
"""

from __future__ import annotations

import re
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from repo_builder.serve import EmbeddedServer
from tests.integration.serve.python_target import write_model_py

pytestmark = pytest.mark.server

CONFIG = """
    name: "{name}"
    {runtime}
    max_batch_size: 8
    input [ {{ name: "x" data_type: TYPE_FP32 dims: [ 3 ] }} ]
    output [ {{ name: "y" data_type: TYPE_FP32 dims: [ 3 ] }} ]
    dynamic_batching {{ max_queue_delay_microseconds: 2000 }}
    instance_group [ {{ kind: KIND_CPU count: 1 }} ]
"""


def affine_onnx(path: Path) -> None:
    """y = 2x + 1: each request's answer is known from its own input."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    two = numpy_helper.from_array(np.array(2.0, dtype=np.float32), name="two")
    one = numpy_helper.from_array(np.array(1.0, dtype=np.float32), name="one")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["x2"]), helper.make_node("Add", ["x2", "one"], ["y"])],
        "affine",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        [two, one],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def repository(root: Path) -> Path:
    """`affine` (an onnx model: the preview serves it) and `affine_py` (the python target's model.py)."""
    affine_onnx(root / "affine" / "1" / "model.onnx")
    (root / "affine" / "config.pbtxt").write_text(
        textwrap.dedent(CONFIG.format(name="affine", runtime='platform: "onnxruntime_onnx"'))
    )
    affine_onnx(root / "affine_py" / "1" / "model.onnx")
    (root / "affine_py" / "config.pbtxt").write_text(
        textwrap.dedent(CONFIG.format(name="affine_py", runtime='backend: "python"'))
    )
    write_model_py(root / "affine_py" / "1", "affine_py", [3], [3])
    return root


@pytest.fixture(params=["compute thread", "in execute"])
def served(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EmbeddedServer:
    pytest.importorskip("onnxruntime", reason="both models run the ONNX file with onnxruntime")
    monkeypatch.setenv("REPO_BUILDER_GPU_BATCHING", "1" if request.param == "compute thread" else "0")
    server = EmbeddedServer(
        repository(tmp_path / "repo"), startup_timeout=180, model_control_mode="explicit", load_models=["*"]
    )
    server.start()
    request.addfinalizer(server.stop)
    return server


@pytest.mark.parametrize("model", ["affine", "affine_py"])
def test_each_request_gets_its_own_outputs_and_batches_form(served: EmbeddedServer, model: str) -> None:
    import tritonclient.grpc as grpcclient

    url = served.grpc_url.removeprefix("grpc://")

    def one(i: int) -> float:
        client = grpcclient.InferenceServerClient(url)
        rows = 1 + i % 3  # requests of 1, 2 and 3 rows, stacked into one batch (padded to 8) and split back
        x = (np.arange(rows * 3, dtype=np.float32).reshape(rows, 3) + 1000 * i).astype(np.float32)
        item = grpcclient.InferInput("x", list(x.shape), "FP32")
        item.set_data_from_numpy(x)
        y = client.infer(model, [item]).as_numpy("y")
        client.close()
        assert y is not None and y.shape == x.shape, (i, None if y is None else y.shape)
        return float(np.abs(y - (2 * x + 1)).max())

    with ThreadPoolExecutor(16) as pool:
        errors = list(pool.map(one, range(192)))
    assert max(errors) == 0.0, errors
    client = grpcclient.InferenceServerClient(url)
    stats = client.get_inference_statistics(model, as_json=True)["model_stats"][0]
    inferences, executions = int(stats["inference_count"]), int(stats["execution_count"])
    assert inferences == sum(1 + i % 3 for i in range(192))
    assert executions < 192, f"no batches formed: {executions} executions for 192 requests"
    client.close()


def test_the_load_line_says_where_batches_compute(served: EmbeddedServer, request: pytest.FixtureRequest) -> None:
    log = served.log_path.read_text(errors="replace")
    threaded = request.node.callspec.params["served"] == "compute thread"
    for name in ("affine", "affine_py"):
        line = next(line for line in log.splitlines() if f"{name} ({name}_0_0): " in line and "computes on" in line)
        assert "computes on CPU" in line
        assert ("on a compute thread" in line) == threaded, line
        assert ("batches padded to 8" in line) == threaded, line


@pytest.mark.parametrize("model", ["affine", "affine_py"])
def test_the_model_unloads_and_loads_again(served: EmbeddedServer, model: str, request: pytest.FixtureRequest) -> None:
    """finalize() stops the compute thread: unloading does not hang, the thread logs its account, and a new
    instance gets a new thread."""
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(served.http_url.removeprefix("http://"))
    item = httpclient.InferInput("x", [2, 3], "FP32")
    item.set_data_from_numpy(np.zeros((2, 3), dtype=np.float32))
    np.testing.assert_array_equal(client.infer(model, [item]).as_numpy("y"), np.ones((2, 3), dtype=np.float32))
    started = time.monotonic()
    client.unload_model(model)
    while client.is_model_ready(model) and time.monotonic() - started < 30:
        time.sleep(0.1)
    assert not client.is_model_ready(model), "the model did not unload in 30 s"
    log = ""
    while f"successfully unloaded '{model}'" not in log and time.monotonic() - started < 30:
        time.sleep(0.1)  # the instance's own log lines (the account) come before the server's unload line
        log = served.log_path.read_text(errors="replace")
    account = re.search(rf"\b{model}\b[^\n]*: compute thread: (\d+) batches, [\d.]+ s computing, ", log)
    if request.node.callspec.params["served"] == "compute thread":
        assert account and int(account.group(1)) >= 1, "the compute thread logged no account at unload"
    else:
        assert account is None
    client.load_model(model)
    assert client.is_model_ready(model)
    np.testing.assert_array_equal(client.infer(model, [item]).as_numpy("y"), np.ones((2, 3), dtype=np.float32))
    assert f"{model}_0_0" in served.log_path.read_text(errors="replace")
    client.close()
