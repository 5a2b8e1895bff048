"""The GPU-free, TensorFlow-free parts of an ensemble's reference: inputs, reshapes between steps, and the
steps that cannot run here. The reference itself is computed with the real converters in
tests/integration/build/test_build.py and checked through the real server in test_examples_served.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from repo_builder.spec import Spec
from repo_builder.triton import rules as triton_rules
from repo_builder.verify import ensemble as verify
from repo_builder.verify.compare import Feed


def spec(*models: dict[str, object]) -> Spec:
    return Spec.model_validate({"models": list(models)})


TFTRT = {
    "name": "trt",
    "source": {"python": "m.py:f"},
    "target": "tftrt",
    "max_batch_size": 4,
    "inputs": [{"name": "x", "dtype": "FP32", "dims": [3]}, {"name": "ids", "dtype": "INT32", "dims": [-1]}],
    "outputs": [{"name": "y", "dtype": "FP32", "dims": [3]}],
    "instance_groups": [{"kind": "KIND_GPU"}],
}
ENSEMBLE = {
    "name": "ens",
    "target": "ensemble",
    "max_batch_size": 4,
    "inputs": [{"name": "a", "dtype": "FP32", "dims": [3]}, {"name": "ids", "dtype": "INT32", "dims": [-1]}],
    "outputs": [{"name": "b", "dtype": "FP32", "dims": [3]}],
    "steps": [{"model": "trt", "input_map": {"x": "a", "ids": "ids"}, "output_map": {"y": "b"}}],
}


def test_ensemble_inputs_have_the_config_shapes_and_a_full_batch() -> None:
    feed = verify.ensemble_inputs(spec(TFTRT, ENSEMBLE).model("ens"), Path("."))
    assert feed["a"].shape == (4, 3) and feed["a"].dtype == np.float32
    assert feed["ids"].shape == (4, 8) and feed["ids"].dtype == np.int32  # a variable dim becomes 8
    assert np.array_equal(verify.ensemble_inputs(spec(TFTRT, ENSEMBLE).model("ens"), Path("."))["a"], feed["a"])


def test_a_tftrt_step_gives_no_reference_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(verify.NoReference, match="trt is a TF-TRT SavedModel, which runs only where TensorRT is"):
        verify.ensemble_runner(spec(TFTRT, ENSEMBLE), spec(TFTRT, ENSEMBLE).model("ens"), tmp_path)


def test_a_step_without_its_onnx_gives_no_reference(tmp_path: Path) -> None:
    onnx_step = {**TFTRT, "target": "onnx", "instance_groups": []}
    s = spec(onnx_step, ENSEMBLE)
    with pytest.raises(verify.NoReference, match=r"step trt has no model\.onnx in version 1"):
        verify.ensemble_runner(s, s.model("ens"), tmp_path)


def test_reshapes_go_to_the_model_and_back_to_the_config_dims() -> None:
    config = triton_rules.parse(
        """
        name: "m"
        max_batch_size: 4
        input [ { name: "x" data_type: TYPE_FP32 dims: [ 1 ] reshape: { shape: [ ] } } ]
        output [ { name: "y" data_type: TYPE_FP32 dims: [ 2, 2 ] reshape: { shape: [ 4 ] } } ]
        """
    )
    seen: list[tuple[int, ...]] = []

    def model(feed: Feed) -> Feed:  # what a model with x: [batch], y: [batch, 4] computes
        seen.append(feed["x"].shape)
        return {"y": np.repeat(feed["x"][:, None], 4, axis=1)}

    out = verify.with_reshapes(model, config)({"x": np.arange(3, dtype=np.float32).reshape(3, 1)})
    assert seen == [(3,)]
    assert out["y"].shape == (3, 2, 2)
    assert out["y"][2].tolist() == [[2.0, 2.0], [2.0, 2.0]]
