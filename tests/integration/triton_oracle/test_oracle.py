"""The oracle itself: it refuses what Triton's core refuses, with Triton's message, and the two claims it
rests on hold (the core validates a config before it looks up the backend library; a python-backend copy
runs the checks that come after)."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from tests.integration.triton_oracle.oracle import TritonOracle, Verdict

pytestmark = pytest.mark.server

ONNX = """\
name: "m"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 4 ] } ]
"""


def _judge(oracle: TritonOracle, tmp_path: Path, config: str, files: dict[str, str] | None = None) -> Verdict:
    folder = tmp_path / "repo" / "m"
    (folder / "1").mkdir(parents=True)
    (folder / "config.pbtxt").write_text(textwrap.dedent(config))
    for rel, text in (files or {}).items():
        (folder / rel).write_text(text)
    return oracle.judge(tmp_path / "repo")["m"]


def test_a_valid_onnx_config_reaches_the_backend_lookup(triton_oracle: TritonOracle, tmp_path: Path) -> None:
    verdict = _judge(triton_oracle, tmp_path, ONNX + "instance_group [ { kind: KIND_CPU count: 2 } ]\n")
    assert verdict.accepted, verdict
    assert verdict.judged == "as written"
    assert verdict.message == (
        "Invalid argument: unable to find backend library for backend 'onnxruntime', "
        "try specifying runtime on the model configuration."
    )


def test_the_core_refuses_before_the_backend_lookup(triton_oracle: TritonOracle, tmp_path: Path) -> None:
    config = ONNX + "dynamic_batching { preserve_ordering: true priority_levels: 2 default_priority_level: 1 }\n"
    verdict = _judge(triton_oracle, tmp_path, config)
    assert verdict == Verdict(
        "m", False, "Only one priority level is allowed when 'preserve_ordering' is true for m", "as written"
    )


def test_the_python_copy_runs_the_instance_group_checks(triton_oracle: TritonOracle, tmp_path: Path) -> None:
    verdict = _judge(triton_oracle, tmp_path, ONNX + 'instance_group [ { kind: KIND_CPU profile: [ "0" ] } ]\n')
    assert verdict == Verdict(
        "m",
        False,
        # Triton's own wording, its missing space included
        "Invalid argument: instance group m_0 of model m and platform onnxruntime_onnxspecifies profile field "
        "which is only supported for TensorRT models",
        "python copy",
    )


def test_a_scalar_input_of_a_non_batching_model_is_refused(triton_oracle: TritonOracle, tmp_path: Path) -> None:
    config = ONNX.replace("max_batch_size: 8", "max_batch_size: 0").replace(
        "dims: [ 4 ] } ]\noutput", "dims: [ 1 ] reshape: { shape: [ ] } } ]\noutput"
    )
    verdict = _judge(triton_oracle, tmp_path, config)
    assert not verdict.accepted
    assert verdict.message == (
        "model input 'x' cannot have empty reshape for non-batching model as scalar tensors are not supported for m"
    )


def test_a_python_model_naming_a_missing_execution_environment(triton_oracle: TritonOracle, tmp_path: Path) -> None:
    config = ONNX.replace('platform: "onnxruntime_onnx"', 'backend: "python"') + (
        'parameters { key: "EXECUTION_ENV_PATH" value: { string_value: "$$TRITON_MODEL_DIRECTORY/env.tar.gz" } }\n'
    )
    verdict = _judge(triton_oracle, tmp_path, config)
    assert not verdict.accepted
    assert verdict.message.startswith("Internal: Failed to get the canonical path for ")
    assert verdict.message.endswith("/m/env.tar.gz.")


def test_a_negative_gpu_id_is_refused(triton_oracle: TritonOracle, tmp_path: Path) -> None:
    verdict = _judge(triton_oracle, tmp_path, ONNX + "instance_group [ { kind: KIND_GPU gpus: [ -1 ] } ]\n")
    assert not verdict.accepted
    assert verdict.judged == "python copy"
    assert verdict.message.startswith(
        "Invalid argument: instance group m_0 of model m specifies invalid or unsupported gpu id -1."
    )


def test_many_instances_and_warmup_runs_are_loaded_as_a_few(triton_oracle: TritonOracle, tmp_path: Path) -> None:
    """A valid config asking for thousands of python processes or warmup runs is judged, not run in full."""
    config = ONNX.replace('platform: "onnxruntime_onnx"', 'backend: "python"') + (
        "instance_group [ { kind: KIND_CPU count: 5000 } ]\n"
        'model_warmup [ { name: "w" batch_size: 1 count: 4000000000'
        ' inputs { key: "x" value: { data_type: TYPE_FP32 dims: [ 4 ] zero_data: true } } } ]\n'
    )
    verdict = _judge(triton_oracle, tmp_path, config)
    assert verdict == Verdict("m", True, "", "as written")


HANGS_AT_LOAD = """\
import time


class TritonPythonModel:
    def initialize(self, args):
        time.sleep(60)

    def execute(self, requests):
        return []
"""


def test_a_server_that_stops_answering_refuses_the_repository_and_is_restarted(tmp_path: Path) -> None:
    config = ONNX.replace('platform: "onnxruntime_onnx"', 'backend: "python"')
    with TritonOracle(tmp_path / "oracle", answer_timeout=5) as oracle:
        verdict = _judge(oracle, tmp_path / "hangs", config, {"1/model.py": HANGS_AT_LOAD})
        assert not verdict.accepted
        assert verdict.judged == "no answer"
        assert verdict.message.startswith("tritonserver did not answer while loading 'm' (as written) (TimeoutError")
        assert verdict.message.endswith("(it stopped answering on the first try too)")
        assert len(oracle.restarts) == 1  # the first try

        first = oracle.process
        assert first is not None and first.poll() is None  # the restarted server
        assert _judge(oracle, tmp_path / "valid", ONNX).accepted  # and it judges the next repository

        # tritonserver 2.51's own crash while unloading (now and then) restarts it too: count from here
        restarts, server = len(oracle.restarts), oracle.process
        assert server is not None
        server.kill()  # a crash between two repositories does not decide the next one's verdicts
        assert _judge(oracle, tmp_path / "after_crash", ONNX).accepted
        assert len(oracle.restarts) == restarts + 1
        assert "after_crash/repo: tritonserver exited while unloading every model" in oracle.restarts[-1]


#: crashes the server (its stubs are its children) the first time it is loaded
CRASHES_ONCE = """\
import os
import signal
from pathlib import Path


class TritonPythonModel:
    def initialize(self, args):
        marker = Path(args["model_repository"]).parents[1] / "crashed"  # outside the repository
        if not marker.exists():
            marker.write_text("")
            os.kill(os.getppid(), signal.SIGSEGV)

    def execute(self, requests):
        return []
"""


def test_a_crash_is_seen_at_once_and_the_repository_judged_again(tmp_path: Path) -> None:
    """tritonserver 2.51 crashes now and then while unloading python models; a crash logs `Signal (11)
    received.` and then hangs with the connection open, so the oracle kills it rather than wait for the
    answer timeout, and judges the repository once more on a fresh server."""
    config = ONNX.replace('platform: "onnxruntime_onnx"', 'backend: "python"')
    with TritonOracle(tmp_path / "oracle", answer_timeout=100) as oracle:
        started = time.monotonic()
        verdict = _judge(oracle, tmp_path / "crashes", config, {"1/model.py": CRASHES_ONCE})
        assert verdict == Verdict("m", True, "", "as written")
        assert time.monotonic() - started < 50  # not the answer timeout
        assert len(oracle.restarts) == 1
        assert "tritonserver crashed (signal 11) while " in oracle.restarts[0]  # the load answers first, at times
