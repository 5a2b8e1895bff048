"""The spec's rules that mirror Triton's core: what Triton accepts passes (nothing is stricter than Triton),
the settings Triton ignores are warned about, and the rules run again on the tensors inspection finds.

The refusals themselves, each with its full located message, are the cases in tests/golden/spec_errors
(reshape_*, preserve_ordering_*, warmup_dims_*, gpus_negative, ensemble_*, parameters_missing_file,
every_problem_of_a_model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from repo_builder.errors import SpecError
from repo_builder.inspect.resolve import resolve
from repo_builder.inspect.tensors import Tensor
from repo_builder.spec import ModelSpec, load_spec
from repo_builder.spec.models import Spec
from repo_builder.spec.rules import check_resolved
from tests.unit.cli_runner import run_cli

X = {"name": "x", "dtype": "FP32", "dims": [4]}
Y = {"name": "y", "dtype": "FP32", "dims": [2]}


def _model(**fields: Any) -> dict[str, Any]:
    return {
        "name": "m",
        "source": {"python": "model.py:build"},
        "target": "onnx",
        "inputs": [X],
        "outputs": [Y],
    } | fields


def _spec(*models: dict[str, Any]) -> Spec:
    return Spec.model_validate({"models": list(models)})


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"inputs": [{**X, "dims": [2, 4, -1, 6], "reshape": [8, -1, 1, 6]}]}, id="reshape-variable-runs"),
        pytest.param({"inputs": [{**X, "dims": [1], "reshape": []}]}, id="scalar-per-batch-item"),
        pytest.param({"inputs": [{**X, "dims": [-1], "reshape": [-1, 1]}]}, id="reshape-adds-a-1"),
        pytest.param({"max_batch_size": 0, "inputs": [{**X, "dims": [6], "reshape": [2, 3]}]}, id="nobatch-reshape"),
        pytest.param(
            {"dynamic_batching": {"preserve_ordering": True, "priority_levels": 1, "default_priority_level": 1}},
            id="preserve-ordering-one-level",
        ),
        pytest.param(
            {
                "dynamic_batching": {
                    "preserve_ordering": True,
                    "default_queue_policy": {"timeout_action": "DELAY", "default_timeout_microseconds": 0},
                }
            },
            id="delay-without-timeout",
        ),
        pytest.param(
            {
                "dynamic_batching": {
                    "default_queue_policy": {"timeout_action": "DELAY", "default_timeout_microseconds": 9}
                }
            },
            id="delay-without-preserve-ordering",
        ),
        pytest.param({"warmup": [{"name": "w", "inputs": {"x": {"dims": [4]}}}]}, id="warmup-concrete"),
        pytest.param(
            {"inputs": [{**X, "dims": [-1]}], "warmup": [{"name": "w", "inputs": {"x": {"dims": [0]}}}]},
            id="warmup-empty-variable-dim",  # measured: tritonserver 2.51 loads it (a warning here)
        ),
        pytest.param({"instance_groups": [{"kind": "gpu", "gpus": [0, 1]}]}, id="gpus"),
        pytest.param(
            {
                "parameters": {
                    "A": "$$TRITON_MODEL_DIRECTORY/1/model.onnx",
                    "B": "$$TRITON_MODEL_DIRECTORY",
                    "C": "/opt/env",
                }
            },
            id="parameters-written-files",
        ),
    ],
)
def test_what_triton_accepts_passes(fields: dict[str, Any]) -> None:
    ModelSpec.model_validate(_model(**fields))


def _ensemble(steps: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {"name": "e", "target": "ensemble", "inputs": [X], "outputs": [Y], "steps": steps} | fields


def test_ensembles_triton_accepts_pass() -> None:
    """Steps in any order, an optional input left out, a non-batching step in a batching ensemble whose
    shapes agree with the batch dimension, an ensemble as a step, a step whose tensors come from the model."""
    first = _model(
        name="first",
        inputs=[X, {"name": "mask", "dtype": "INT32", "dims": [4], "optional": True}],
        outputs=[{"name": "mid", "dtype": "FP32", "dims": [3]}],
    )
    second = _model(
        name="second",
        max_batch_size=0,
        inputs=[{"name": "mid", "dtype": "FP32", "dims": [-1, 3]}],
        outputs=[{"name": "y", "dtype": "FP32", "dims": [-1, 2]}],
    )
    inspected = {"name": "inspected", "source": {"python": "model.py:build"}, "target": "onnx"}
    spec = _spec(
        first,
        second,
        inspected,
        _ensemble(
            [
                {"model": "second", "input_map": {"mid": "t"}, "output_map": {"y": "y"}},
                {"model": "first", "input_map": {"x": "x"}, "output_map": {"mid": "t"}},
            ]
        ),
        _ensemble(
            [
                {"model": "e", "input_map": {"x": "x"}, "output_map": {"y": "a"}},
                {"model": "inspected", "input_map": {"whatever": "a"}, "output_map": {"anything": "y"}},
            ],
            name="outer",
        ),
    )
    assert [m.name for m in spec.models] == ["first", "second", "inspected", "e", "outer"]


def test_a_two_ensemble_cycle_is_refused_without_a_crash() -> None:
    base = _model(name="base")
    with pytest.raises(ValueError) as caught:
        _spec(
            base,
            _ensemble([{"model": "b", "input_map": {"x": "x"}, "output_map": {"y": "y"}}], name="a"),
            _ensemble([{"model": "a", "input_map": {"x": "x"}, "output_map": {"y": "y"}}], name="b"),
        )
    assert "circular dependency between ensembles: a -> ... -> b -> a" in str(caught.value)


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "model.py").write_text("")
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return path


WARNED = """\
models:
  - name: m
    source: {python: model.py:build}
    target: savedmodel
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
    instance_groups: [{kind: cpu, count: 2}]
    optimization: {tensorrt: true}
    dynamic_batching: {preferred_batch_size: [4]}
  - name: n
    source: {python: model.py:build}
    target: savedmodel
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
    instance_groups: [{kind: cpu}]
    optimization: {auto_mixed_precision: true}
"""


def test_check_warns_of_settings_triton_ignores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, WARNED)
    monkeypatch.chdir(tmp_path)
    result = run_cli(capsys, "check", "spec.yaml")
    assert result.code == 0
    assert result.stderr == (
        "warning: spec.yaml:8:30: models[0] (m) -> optimization -> tensorrt\n"
        "  the TensorRT accelerator runs only on a GPU, and every instance group of m is KIND_CPU: Triton "
        "ignores it. Add a KIND_GPU instance group, or remove the setting\n"
        "warning: spec.yaml:9:46: models[0] (m) -> dynamic_batching -> preferred_batch_size\n"
        "  Triton's batcher documentation: for most models, preferred_batch_size should not be specified; an "
        "exception is TensorRT models that specify multiple optimization profiles for different batch sizes. "
        "m is a savedmodel model: without preferred sizes the batcher forms batches as large as possible up "
        "to max_batch_size (8). Remove it unless measurements show it helps\n"
        "warning: spec.yaml:16:42: models[1] (n) -> optimization -> auto_mixed_precision\n"
        "  auto_mixed_precision runs only on a GPU, and every instance group of n is KIND_CPU: Triton ignores "
        "it. Add a KIND_GPU instance group, or remove the setting\n"
    )
    assert result.stdout.startswith("spec.yaml: ok, 2 models")


def test_no_warning_when_a_gpu_may_run_it(tmp_path: Path) -> None:
    text = WARNED.replace("[{kind: cpu, count: 2}]", "[{kind: cpu}, {kind: gpu}]").replace(
        "    dynamic_batching: {preferred_batch_size: [4]}\n", ""
    )
    text = text.replace("    instance_groups: [{kind: cpu}]\n", "")
    assert load_spec(_write(tmp_path, text)).warnings == []


def test_quiet_check_prints_no_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, WARNED)
    monkeypatch.chdir(tmp_path)
    result = run_cli(capsys, "-q", "check", "spec.yaml")
    assert (result.code, result.stderr) == (0, "")


def test_scalar_input_of_a_non_batching_model_from_inspection_is_refused() -> None:
    """A model with a scalar input and no batch dimension (TensorFlow's VarsAndArithmeticObjectGraph):
    inspection gives dims [1] with reshape [], which Triton refuses; the build says what to do instead."""
    model = ModelSpec.model_validate(
        {"name": "arith", "source": {"python": "model.py:build"}, "target": "onnx", "max_batch_size": 0}
    )
    resolved = resolve(model, [Tensor("x", "FP32", ())], [Tensor("y", "FP32", (2,))])
    assert check_resolved(resolved) == [
        "inputs[0] (x) -> reshape: model input 'x' cannot have empty reshape for non-batching model as scalar "
        "tensors are not supported; a model that does not batch (max_batch_size 0) cannot take or return a "
        "scalar in Triton: give the tensor dims [1] without reshape and reshape it inside the model (e.g. "
        "tf.reshape(x, [])), or let the model batch (max_batch_size > 0: dims [1] with reshape [] is then one "
        "scalar per batch item)"
    ]


def test_scalar_per_batch_item_from_inspection_passes() -> None:
    model = ModelSpec.model_validate({"name": "m", "source": {"python": "model.py:build"}, "target": "onnx"})
    resolved = resolve(model, [Tensor("x", "FP32", (None,))], [Tensor("y", "FP32", (None, 2))])
    assert check_resolved(resolved) == []


def test_load_error_is_a_spec_error(tmp_path: Path) -> None:
    text = WARNED.replace("dims: [4]}]\n    outputs", "dims: [4], reshape: [5]}]\n    outputs", 1)
    with pytest.raises(SpecError) as caught:
        load_spec(_write(tmp_path, text))
    assert "model input 'x' has different size for dims and reshape" in caught.value.message


def test_batch_size_of_a_step_whose_tensors_come_from_the_model() -> None:
    """An explicit max_batch_size stays after inspection, so the spec checks it; the default may become 0."""
    base = {"name": "base", "source": {"python": "model.py:build"}, "target": "onnx"}
    chain = _ensemble([{"model": "base", "input_map": {"x": "x"}, "output_map": {"y": "y"}}], max_batch_size=16)
    _spec(base, chain)  # the default 8 may resolve to 0 (a model without a batch dimension): accepted
    with pytest.raises(ValueError, match="ensemble e allows maximum batch size 16, but it contains model base"):
        _spec({**base, "max_batch_size": 4}, chain)


def test_warmup_without_data_is_a_warning(tmp_path: Path) -> None:
    text = WARNED.split("  - name: n")[0].replace("dims: [4]}]\n    outputs", "dims: [-1]}]\n    outputs", 1)
    text = text.replace("    instance_groups: [{kind: cpu, count: 2}]\n    optimization: {tensorrt: true}\n", "")
    text = text.replace(
        "    dynamic_batching: {preferred_batch_size: [4]}\n",
        "    warmup: [{name: w, inputs: {x: {dims: [0]}}}]\n",
    )
    assert load_spec(_write(tmp_path, text)).warnings == [
        f"{tmp_path / 'spec.yaml'}:7:43: models[0] (m) -> warmup[0] -> inputs -> x -> dims\n"
        "  dims [0] give input 'x' no data: Triton accepts it, and the warmup warms nothing for it; give each "
        "dim a size >= 1"
    ]


def test_gpus_of_an_auto_group_is_a_warning(tmp_path: Path) -> None:
    """Triton accepts KIND_AUTO with gpus where those GPUs exist (the group becomes KIND_GPU)."""
    text = WARNED.split("  - name: n")[0].replace("[{kind: cpu, count: 2}]", "[{kind: auto, gpus: [0]}]")
    text = text.replace("    dynamic_batching: {preferred_batch_size: [4]}\n", "")
    assert load_spec(_write(tmp_path, text)).warnings == [
        f"{tmp_path / 'spec.yaml'}:7:30: models[0] (m) -> instance_groups[0] -> kind\n"
        "  KIND_AUTO with gpus [0]: on a host without these GPUs Triton makes this group KIND_CPU and then refuses "
        'the model ("has kind KIND_CPU but specifies one or more GPUs"); say KIND_GPU if it needs them'
    ]


def test_preferred_batch_size_of_a_plan_with_several_profiles_is_no_warning(tmp_path: Path) -> None:
    text = """\
models:
  - name: p
    source: {python: model.py:build}
    target: tensorrt
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
    dynamic_batching: {preferred_batch_size: [4, 8]}
    instance_groups: [{kind: gpu, profile: ["0"]}, {kind: gpu, profile: ["1"]}]
"""
    assert load_spec(_write(tmp_path, text)).warnings == []
    one = text.replace('{kind: gpu, profile: ["1"]}', '{kind: gpu, profile: ["0"]}')
    assert "is a TensorRT plan with one optimization profile" in load_spec(_write(tmp_path, one)).warnings[0]
