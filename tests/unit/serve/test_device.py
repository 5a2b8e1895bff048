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
from repo_builder.render.config import model_code, render_template
from repo_builder.serve.stub import check_numpy


def device_code() -> dict[str, Any]:
    """templates/_device.py.j2 and _pipeline.py.j2 as the model.py files include them."""
    return model_code("_device.py.j2", "_pipeline.py.j2")


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


def model_py_context(dtype: str = "float32") -> dict[str, Any]:
    """What python_model.py.j2 is rendered with (preview_model.py.j2 ignores it): one input, one output."""
    return dict(
        version="0",
        model_name="m",
        runtime="onnxruntime",
        artifact="model.onnx",
        signature="serving_default",
        max_batch_size=8,
        inputs=f"[('x', '{dtype}')]",
        outputs=f"[('y', '{dtype}')]",
        tf1=False,
    )


@pytest.mark.parametrize("template", ["python_model.py.j2", "preview_model.py.j2"])
def test_model_py_templates_compile_with_the_device_code(template: str) -> None:
    code = render_template(template, **model_py_context())
    compile(code, template, "exec")
    assert "def onnx_session(" in code and "class TritonPythonModel" in code


def test_numpy_2_in_the_stubs_environment_is_refused() -> None:
    with pytest.raises(DeploymentError, match=r"numpy 2\.1\.0 is installed.*pip install 'numpy<2'"):
        check_numpy("2.1.0")
    check_numpy("1.26.4")


def test_gpu_instances_batch_as_on_a_gpu_and_the_switch_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu_batching = device_code()["gpu_batching"]
    gpu, cpu = {"model_instance_kind": "KIND_GPU", "model_instance_device_id": "0"}, {"model_instance_kind": "CPU"}
    monkeypatch.delenv("REPO_BUILDER_GPU_BATCHING", raising=False)
    assert gpu_batching(gpu) and not gpu_batching(cpu)
    monkeypatch.setenv("REPO_BUILDER_GPU_BATCHING", "1")
    assert gpu_batching(gpu) and gpu_batching(cpu)
    monkeypatch.setenv("REPO_BUILDER_GPU_BATCHING", "0")
    assert not gpu_batching(gpu) and not gpu_batching(cpu)


def test_padding_repeats_the_last_row_and_reports_the_rows_of_the_batch() -> None:
    import numpy as np

    padded = device_code()["padded"]
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    words = np.array([b"a", b"bc", b"def"], dtype=object)
    feed, rows = padded({"x": x, "w": words}, 8)
    assert rows == 3 and feed["x"].shape == (8, 2) and feed["w"].shape == (8,)
    np.testing.assert_array_equal(feed["x"][:3], x)
    np.testing.assert_array_equal(feed["x"][3:], np.repeat(x[-1:], 5, axis=0))
    assert list(feed["w"][3:]) == [b"def"] * 5
    full = {"x": np.zeros((8, 2), dtype=np.float32)}
    assert padded(full, 8)[0] is full and padded(full, 8)[1] == 8  # a full batch is run as it is
    assert padded({}, 8) == ({}, 0)


@pytest.mark.parametrize(
    ("config", "kind", "pad_to"),
    [
        ({"max_batch_size": 8, "dynamic_batching": {}}, "KIND_GPU", 8),  # the batcher makes sizes vary: padded
        ({"max_batch_size": 8}, "KIND_GPU", 0),  # a batch is one request, as its client sent it
        ({"max_batch_size": 8, "dynamic_batching": {}}, "KIND_CPU", 0),  # a CPU instance runs each size as it is
    ],
)
def test_only_dynamically_batched_gpu_instances_pad(
    monkeypatch: pytest.MonkeyPatch, config: dict, kind: str, pad_to: int
) -> None:
    import json

    monkeypatch.delenv("REPO_BUILDER_GPU_BATCHING", raising=False)
    args = {"model_config": json.dumps(config), "model_instance_kind": kind, "model_instance_device_id": "0"}
    pipeline = device_code()["Pipeline"](None, lambda job: job, "m", args, 8)
    try:
        assert pipeline.pad_to == pad_to
        assert ("batches padded to 8" in pipeline.note) == bool(pad_to)
        assert ("on a compute thread" in pipeline.note) == (kind == "KIND_GPU")
    finally:
        pipeline.close()


def test_requests_stack_only_when_their_inputs_agree_and_split_back_in_order() -> None:
    import numpy as np

    code = device_code()
    stack_feeds, split_outputs = code["stack_feeds"], code["split_outputs"]
    a = {"x": np.zeros((1, 3), np.float32), "w": np.array([b"a"], dtype=object)}
    b = {"x": np.ones((2, 3), np.float32), "w": np.array([b"b", b"c"], dtype=object)}
    (merged,), sizes = stack_feeds([a, b], batching=True, copy=False)
    assert sizes == [1, 2] and merged["x"].shape == (3, 3) and list(merged["w"]) == [b"a", b"b", b"c"]
    first, second = split_outputs([("y", merged["x"] * 2)], sizes)
    assert first[0][0] == "y" and first[0][1].shape == (1, 3) and (second[0][1] == 2).all()
    longer = {"x": np.zeros((1, 4), np.float32), "w": a["w"]}  # another length past the batch dimension
    feeds, sizes = stack_feeds([a, longer], batching=True, copy=True)
    assert sizes is None and len(feeds) == 2 and feeds[0]["x"] is not a["x"]  # one by one, copied
    assert stack_feeds([a, b], batching=False, copy=False) == ([a, b], None)
    assert stack_feeds([a, {"x": b["x"]}], batching=True, copy=False)[1] is None  # different inputs given


def test_a_padded_instance_stacks_into_buffer_sets_in_turn_and_drops_the_padding_rows() -> None:
    import numpy as np

    code = device_code()
    stack_feeds, split_outputs, buffers = code["stack_feeds"], code["split_outputs"], code["BatchBuffers"](4)
    assert code["SETS"] == code["QUEUED"] + 2 == 3  # one computing, one waiting, one being stacked
    a = {"x": np.full((1, 3), 1, np.float32), "w": np.array([b"a"], dtype=object)}
    b = {"x": np.full((2, 3), 2, np.float32), "w": np.array([b"b", b"c"], dtype=object)}
    (first,), sizes = stack_feeds([a, b], batching=True, copy=True, buffers=buffers)
    assert sizes == [1, 2] and first["x"].shape == (4, 3) and list(first["w"][:3]) == [b"a", b"b", b"c"]
    np.testing.assert_array_equal(first["x"][:3], [[1] * 3, [2] * 3, [2] * 3])
    assert not first["x"][3].any()  # a padding row: zeros at first
    (second,), sizes = stack_feeds([b], batching=True, copy=True, buffers=buffers)  # one request: buffered too
    assert sizes == [2] and second["x"] is not first["x"]  # another set: the first batch may still compute
    (only,) = split_outputs([("y", second["x"] * 10)], sizes)
    assert only[0][1].shape == (2, 3) and (only[0][1] == 20).all()  # the padding rows are not answered
    (third,), _ = stack_feeds([b], batching=True, copy=True, buffers=buffers)
    assert third["x"] is not first["x"] and third["x"] is not second["x"]
    np.testing.assert_array_equal(first["x"][:3], [[1] * 3, [2] * 3, [2] * 3])  # untouched
    (fourth,), _ = stack_feeds([a], batching=True, copy=True, buffers=buffers)
    assert fourth["x"] is first["x"] and (fourth["x"][0] == 1).all()  # the first set again, refilled
    big = {"x": np.zeros((5, 3), np.float32), "w": np.array([b""] * 5, dtype=object)}
    (merged,), sizes = stack_feeds([a, big], batching=True, copy=True, buffers=buffers)
    assert sizes == [1, 5] and merged["x"].shape == (6, 3)  # more rows than the buffers: stacked as before
    assert stack_feeds([a], batching=True, copy=True)[1] is None  # without buffers one request is not stacked


def test_padded_gpu_instances_stack_into_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import numpy as np

    monkeypatch.delenv("REPO_BUILDER_GPU_BATCHING", raising=False)
    for config, kind, buffered in (
        ({"max_batch_size": 8, "dynamic_batching": {}}, "KIND_GPU", True),
        ({"max_batch_size": 8}, "KIND_GPU", False),
        ({"max_batch_size": 8, "dynamic_batching": {}}, "KIND_CPU", False),
    ):
        args = {"model_config": json.dumps(config), "model_instance_kind": kind, "model_instance_device_id": "0"}
        pipeline = device_code()["Pipeline"](None, lambda job: job, "m", args, 8)
        try:
            (feed,), sizes = pipeline.stack([{"x": np.ones((1, 2), np.float32)}], batching=True)
            assert (sizes == [1], len(feed["x"])) == ((True, 8) if buffered else (False, 1))
        finally:
            pipeline.close()


GPU0 = {"model_instance_kind": "KIND_GPU", "model_instance_device_id": "0"}


def test_pad_rows_is_max_batch_size_only_for_dynamically_batched_gpu_instances(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.delenv("REPO_BUILDER_GPU_BATCHING", raising=False)
    pad_rows = device_code()["pad_rows"]
    dynamic = json.dumps({"max_batch_size": 8, "dynamic_batching": {}})
    assert pad_rows({**GPU0, "model_config": dynamic}, 8) == 8
    assert pad_rows({**GPU0, "model_config": json.dumps({"max_batch_size": 8})}, 8) == 0
    assert pad_rows({"model_instance_kind": "KIND_CPU", "model_config": dynamic}, 8) == 0


def test_the_gpu_benchmark_reads_the_account_a_gpu_instance_logs() -> None:
    from benchmarks.gpu_serving import ACCOUNT

    stats = {"batches": 2998, "computing": 7.5, "waiting": 3.8, "blocked": 2.0}
    stats.update(running=7.2, stacking=2.2, between=7.4)
    found = ACCOUNT.search(f"resnet50 (repo-builder preview): {device_code()['stats_line'](stats)}")
    assert found is not None
    assert {k: float(v) for k, v in found.groupdict().items()} == {k: float(v) for k, v in stats.items()}


class _FakeBackend:
    """A test double for triton_python_backend_utils (only the stub has it): responses as tuples, senders
    that record what they were sent."""

    TRITONSERVER_RESPONSE_COMPLETE_FINAL = 1

    class Logger:
        @staticmethod
        def log_info(message: str) -> None:
            pass

        log_error = log_warn = log_info

    @staticmethod
    def Tensor(name: str, value: Any) -> tuple:
        return (name, value.tolist())

    @staticmethod
    def InferenceResponse(output_tensors: list, error: Any = None) -> tuple:
        return ("response", output_tensors, error)


class _Request:
    def __init__(self, sent: list) -> None:
        self.sent = sent

    def get_response_sender(self) -> Any:
        sent = self.sent

        class Sender:
            def send(self, response: Any, flags: int) -> None:
                sent.append(response)

        return Sender()


def test_execute_returns_once_its_batch_is_queued_and_waits_only_while_one_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json
    import threading

    import numpy as np

    monkeypatch.setenv("REPO_BUILDER_GPU_BATCHING", "1")  # the compute thread, as on a GPU
    release = threading.Event()
    started = threading.Event()

    def compute(job: int) -> list:
        started.set()
        release.wait(10)
        return [[("y", np.array([job]))]]

    args = {"model_config": json.dumps({"max_batch_size": 8}), "model_instance_kind": "KIND_CPU"}
    pipeline = device_code()["Pipeline"](_FakeBackend, compute, "m", args, 0)
    sent: list = []
    try:
        assert pipeline.submit([_Request(sent)], 1) is None
        assert started.wait(5)  # batch 1 computes (and blocks) on the thread
        assert pipeline.submit([_Request(sent)], 2) is None  # queued while 1 computes: execute() returns
        third = threading.Thread(target=pipeline.submit, args=([_Request(sent)], 3))
        third.start()
        third.join(0.5)
        assert third.is_alive()  # one batch waits already: execute() waits for the thread to take it
        release.set()
        third.join(5)
        assert not third.is_alive()
    finally:
        release.set()
        pipeline.close()
    assert sorted(r[1][0][1][0] for r in sent) == [1, 2, 3]  # every batch answered through its sender
