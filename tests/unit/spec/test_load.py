"""Invalid specs: each exits 1 with its full, located message (asserted to the letter) and writes nothing.

The messages are the product here: a reviewer reads a change to one of them as a change to what users see.
`{tmp}` in an expected message stands for the test's folder (absolute paths of missing files).
"""

# ruff: noqa: E501  (expected messages are compared whole, long lines included)

from __future__ import annotations

from pathlib import Path

import pytest

from repo_builder.errors import SpecError
from repo_builder.spec import load_spec
from tests.unit.cli_runner import run_cli

INVALID = [
    pytest.param(
        """\
models:
  - name: a
    target: [onnx
""",
        """\
spec.yaml:4:1: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence)
""",
        id="yaml_syntax",
    ),
    pytest.param(
        "",
        """\
spec.yaml: the file is empty; expected a mapping with at least `models:`
""",
        id="empty_file",
    ),
    pytest.param(
        """\
# nothing here yet
""",
        """\
spec.yaml: the file is empty; expected a mapping with at least `models:`
""",
        id="comment_only",
    ),
    pytest.param(
        """\
- name: a
- name: b
""",
        """\
spec.yaml:1:1: the document is a list, expected a mapping with keys such as repository, triton and models
""",
        id="non_mapping_list",
    ),
    pytest.param(
        """\
models
""",
        """\
spec.yaml:1:1: the document is a str, expected a mapping with keys such as repository, triton and models
""",
        id="non_mapping_scalar",
    ),
    pytest.param(
        """\
models:
  - name: base
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
    target: python
""",
        """\
spec.yaml:7:5: invalid YAML: key 'target' is given twice in one mapping (first on line 4)
""",
        id="duplicate_key",
    ),
    pytest.param(
        """\
models:
  - name: base
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
    max_batch: 4
""",
        """\
spec.yaml: 1 problem in the spec
spec.yaml:7:5: models[0] (base) -> max_batch
  unknown field 'max_batch'; did you mean 'max_batch_size'? Expected one of: name, source, target, versions, max_batch_size, signature, inputs, outputs, precision, opset, python_runtime, dynamic_batching, instance_groups, version_policy, warmup, response_cache, optimization, parameters, cc_model_filenames, calibration, tensorrt, tftrt, steps, verify, validation
""",
        id="unknown_field_suggestion",
    ),
    pytest.param(
        """\
triton: {zzz: 1}
models:
  - name: base
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
""",
        """\
spec.yaml: 1 problem in the spec
spec.yaml:1:10: triton -> zzz
  unknown field 'zzz'; expected one of: image_tag, http_port, grpc_port, metrics_port, bind_address, shm_size, model_control_mode, restricted_api_key_env, prometheus, cache_size_bytes
""",
        id="unknown_field_no_suggestion",
    ),
    pytest.param(
        """\
models:
  - name: base
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: float33, dims: [2]}]
""",
        """\
spec.yaml: 1 problem in the spec
spec.yaml:6:32: models[0] (base) -> outputs[0] -> dtype
  unknown datatype 'float33'; expected a Triton name (TYPE_FP32 or FP32) or a numpy name (float32): BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BF16, STRING
""",
        id="wrong_dtype",
    ),
    pytest.param(
        """\
models:
  - name: base
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
  - name: base
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
""",
        """\
spec.yaml: 1 problem in the spec
spec.yaml:7:11: models[1] (base) -> name
  model name 'base' is already used by models[0]
""",
        id="duplicate_model_names",
    ),
    pytest.param(
        """\
models:
  - name: base
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [0]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
  - name: base
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
""",
        """\
spec.yaml: 2 problems in the spec
spec.yaml:5:43: models[0] (base) -> inputs[0] -> dims
  dims [0] contain 0; each dim must be a positive size or -1 (variable)
spec.yaml:7:11: models[1] (base) -> name
  model name 'base' is already used by models[0]
""",
        id="duplicate_model_names_with_other_problems",
    ),
    pytest.param(
        """\
models:
  - name: a
    source: exported/resnet.keras
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
""",
        """\
spec.yaml: 1 problem in the spec
spec.yaml:3:13: models[0] (a) -> source
  got str 'exported/resnet.keras'; expected a mapping with one of python, saved_model, keras_file, e.g. source: {keras_file: exported/resnet.keras}
""",
        id="source_as_a_plain_string",
    ),
    pytest.param(
        """\
models:
  - name: models/base
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
""",
        """\
spec.yaml: 1 problem in the spec
spec.yaml:2:11: models[0] (models/base) -> name
  'models/base' contains a path separator; a model name is a single folder name
""",
        id="name_path_separator",
    ),
    pytest.param(
        """\
models:
  - name: '..'
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
""",
        """\
spec.yaml: 1 problem in the spec
spec.yaml:2:11: models[0] (..) -> name
  '..' is not a usable folder name
""",
        id="name_dotdot",
    ),
    pytest.param(
        """\
models:
  - name: .cache
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
""",
        """\
spec.yaml: 1 problem in the spec
spec.yaml:2:11: models[0] (.cache) -> name
  '.cache' starts with '.'; hidden folders are not models
""",
        id="name_hidden",
    ),
    pytest.param(
        """\
models:
  - name: ''
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
""",
        """\
spec.yaml: 1 problem in the spec
spec.yaml:2:11: models[0] () -> name
  name is empty; expected a folder name such as resnet50
""",
        id="name_empty",
    ),
    pytest.param(
        """\
models:
  - name: my model
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
""",
        """\
spec.yaml: 1 problem in the spec
spec.yaml:2:11: models[0] (my model) -> name
  'my model' has characters other than letters, digits, '_', '-' and '.'
""",
        id="name_bad_characters",
    ),
    pytest.param(
        """\
models:
  - name: base
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
  - name: resnet
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
    max_batch_size: 32
    dynamic_batching: {preferred_batch_size: [64, 16]}
""",
        """\
spec.yaml: 1 problem in the spec
spec.yaml:13:47: models[1] (resnet) -> dynamic_batching -> preferred_batch_size[0]
  64 is larger than max_batch_size (32); each preferred size must be in 1..32
""",
        id="preferred_batch_size_too_large",
    ),
    pytest.param(
        """\
models:
  - name: base
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
    max_batch_size: 0
    dynamic_batching: {max_queue_delay_microseconds: 100}
""",
        """\
spec.yaml: 1 problem in the spec
spec.yaml:8:23: models[0] (base) -> dynamic_batching
  dynamic batching needs max_batch_size > 0; set max_batch_size or dynamic_batching: false
""",
        id="dynamic_batching_without_batching",
    ),
    pytest.param(
        """\
models:
  - name: base
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
    instance_groups: [{kind: cpu, gpus: [0]}]
""",
        """\
spec.yaml: 1 problem in the spec
spec.yaml:7:41: models[0] (base) -> instance_groups[0] -> gpus
  gpus is only allowed with kind KIND_GPU, not KIND_CPU
""",
        id="gpus_without_kind_gpu",
    ),
    pytest.param(
        """\
models:
  - name: base
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: []}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
""",
        """\
spec.yaml: 1 problem in the spec
spec.yaml:5:43: models[0] (base) -> inputs[0] -> dims
  dims is empty; Triton needs rank >= 1 (a tensor that is only the batch dimension is dims: [1] with reshape: [])
""",
        id="dims_empty",
    ),
    pytest.param(
        """\
models:
  - name: base
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4, 0]}]
    outputs: [{name: y, dtype: FP32, dims: [-2]}]
""",
        """\
spec.yaml: 2 problems in the spec
spec.yaml:5:43: models[0] (base) -> inputs[0] -> dims
  dims [4, 0] contain 0; each dim must be a positive size or -1 (variable)
spec.yaml:6:44: models[0] (base) -> outputs[0] -> dims
  dims [-2] contain -2; each dim must be a positive size or -1 (variable)
""",
        id="dims_zero_and_negative",
    ),
    pytest.param(
        """\
models:
  - name: base
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
    dynamic_batching: {priority_levels: 2, default_priority_level: 3}
""",
        """\
spec.yaml: 1 problem in the spec
spec.yaml:7:68: models[0] (base) -> dynamic_batching -> default_priority_level
  3 is outside 1..2; with priority_levels 2 the default level must be in 1..2
""",
        id="default_priority_level_outside",
    ),
    pytest.param(
        """\
models:
  - name: base
    source: {python: model.py:build}
    target: tensorrt
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
    precision: int8
""",
        """\
spec.yaml: 1 problem in the spec
spec.yaml:7:16: models[0] (base) -> precision
  int8 needs calibration data: add calibration: {data: calib.npz} (one array per input)
""",
        id="int8_without_calibration",
    ),
    pytest.param(
        """\
models:
  - name: base
    source: {python: model.py:build}
    target: tftrt
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
    instance_groups: [{kind: gpu}, {kind: cpu, count: 2}]
""",
        """\
spec.yaml: 1 problem in the spec
spec.yaml:7:43: models[0] (base) -> instance_groups[1] -> kind
  target tftrt runs only on a GPU; use KIND_GPU, or a CPU target (onnx, python, savedmodel)
""",
        id="tftrt_on_cpu",
    ),
    pytest.param(
        """\
models:
  - name: base
    source: {python: model.py:build}
    target: tensorrt
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
    instance_groups: [{kind: KIND_CPU}]
""",
        """\
spec.yaml: 1 problem in the spec
spec.yaml:7:30: models[0] (base) -> instance_groups[0] -> kind
  target tensorrt runs only on a GPU; use KIND_GPU, or a CPU target (onnx, python)
""",
        id="tensorrt_on_cpu",
    ),
    pytest.param(
        """\
models:
  - name: base
    source: {python: model.py:build}
    target: tflite
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
""",
        """\
spec.yaml: 1 problem in the spec
spec.yaml:4:13: models[0] (base) -> target
  got 'tflite'; expected one of: savedmodel, tftrt, onnx, tensorrt, python, ensemble
""",
        id="unknown_target",
    ),
    pytest.param(
        """\
models:
  - name: base
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
  - name: chain
    target: ensemble
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
    steps:
      - {model: bsae, input_map: {x: x}, output_map: {y: y}}
""",
        """\
spec.yaml: 2 problems in the spec
spec.yaml:10:22: models[1] (chain) -> outputs[0] -> name
  ensemble output 'y' is not produced by any step
spec.yaml:12:17: models[1] (chain) -> steps[0] -> model
  'bsae' is not a model in this spec; models: base
""",
        id="ensemble_unknown_model",
    ),
    pytest.param(
        """\
models:
  - name: base
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
  - name: chain
    target: ensemble
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}, {name: z, dtype: FP32, dims: [2]}]
    steps:
      - {model: base, input_map: {x: image, w: x}, output_map: {y: y, q: z2}}
""",
        """\
spec.yaml: 4 problems in the spec
spec.yaml:10:57: models[1] (chain) -> outputs[1] -> name
  ensemble output 'z' is not produced by any step
spec.yaml:12:38: models[1] (chain) -> steps[0] -> input_map -> x
  tensor 'image' is neither an ensemble input nor produced by an earlier step; available: x
spec.yaml:12:48: models[1] (chain) -> steps[0] -> input_map -> w
  'w' is not an input of base; its inputs: x
spec.yaml:12:74: models[1] (chain) -> steps[0] -> output_map -> q
  'q' is not an output of base; its outputs: y
""",
        id="ensemble_unknown_tensors",
    ),
    pytest.param(
        """\
models:
  - name: base
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
    max_batch_size: 4
  - name: chain
    target: ensemble
    max_batch_size: 16
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
    steps:
      - {model: base, version: 2, input_map: {x: x}, output_map: {y: y}}
""",
        """\
spec.yaml: 2 problems in the spec
spec.yaml:14:17: models[1] (chain) -> steps[0] -> model
  base allows batches up to max_batch_size 4, less than this ensemble's 16; expected the ensemble's max_batch_size <= 4
spec.yaml:14:32: models[1] (chain) -> steps[0] -> version
  version 2 of base is not built; its versions: 1 (or -1 for the latest)
""",
        id="ensemble_batch_and_version",
    ),
    pytest.param(
        """\
models: []
""",
        """\
spec.yaml: 1 problem in the spec
spec.yaml:1:9: models
  got []; expected at least 1 item
""",
        id="models_empty",
    ),
    pytest.param(
        """\
models:
  - name: a
    source: {python: model.py:build}
  - target: onnx
    source: {python: model.py:build}
""",
        """\
spec.yaml: 2 problems in the spec
spec.yaml:2:5: models[0] (a) -> target
  required field 'target' is missing; add it (Conversion target: savedmodel, tftrt, onnx, tensorrt, python, ensemble)
spec.yaml:4:5: models[1] -> name
  required field 'name' is missing; add it (Model name; also its folder in the repository)
""",
        id="missing_required_fields",
    ),
    pytest.param(
        """\
models:
  - name: base
    source: {saved_model: exported/resnet}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
  - name: other
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
    max_batch_size: -1
""",
        """\
spec.yaml: 2 problems in the spec
spec.yaml:3:27: models[0] (base) -> source -> saved_model
  exported/resnet does not exist (looked in {tmp}/exported/resnet); expected a SavedModel folder
spec.yaml:12:21: models[1] (other) -> max_batch_size
  got -1; input should be greater than or equal to 0
""",
        id="missing_source_file",
    ),
    pytest.param(
        """\
models:
  - name: a
    source: {python: model.py:build}
    target: onnx
""",
        """\
{tmp}/spec.yaml: render writes configs from the tensors the spec gives, and these models lack them:
  models[0] (a): inputs and outputs are not both given
List their inputs and outputs, or use `repo-builder build`, which reads them from the models.
""",
        id="render_needs_tensors",
    ),
    pytest.param(
        """\
models:
  - name: base
    source: {python: model.py:build}
    target: onnx
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
    '[bold]x': 1
""",
        """\
spec.yaml: 1 problem in the spec
spec.yaml:7:5: models[0] (base) -> [bold]x
  unknown field '[bold]x'; expected one of: name, source, target, versions, max_batch_size, signature, inputs, outputs, precision, opset, python_runtime, dynamic_batching, instance_groups, version_policy, warmup, response_cache, optimization, parameters, cc_model_filenames, calibration, tensorrt, tftrt, steps, verify, validation
""",
        id="markup_in_message",
    ),
    pytest.param(
        """\
repository: out
triton: {http_port: 70000}
models:
  - name: a
    source: {python: model.py:build}
    target: onnx
    max_batch_size: 4
    inputs: [{name: x, dtype: FP32, dims: [0]}]
    outputs: [{name: y, dtype: FP23, dims: [2]}]
  - name: resnet
    source: {python: model.py:build}
    target: tensorrt
    max_batch_size: 32
    inputs: [{name: x, dtype: FP32, dims: [4]}]
    outputs: [{name: y, dtype: FP32, dims: [2]}]
    dynamic_batching: {preferred_batch_size: [64]}
    instance_groups: [{kind: cpu}]
    precision: int8
  - name: ../c
    source: {python: model.py:build}
    target: onnx
    verison: 2
""",
        """\
spec.yaml: 8 problems in the spec
spec.yaml:2:21: triton -> http_port
  got 70000; input should be less than or equal to 65535
spec.yaml:8:43: models[0] (a) -> inputs[0] -> dims
  dims [0] contain 0; each dim must be a positive size or -1 (variable)
spec.yaml:9:32: models[0] (a) -> outputs[0] -> dtype
  unknown datatype 'FP23'; expected a Triton name (TYPE_FP32 or FP32) or a numpy name (float32): BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BF16, STRING
spec.yaml:16:47: models[1] (resnet) -> dynamic_batching -> preferred_batch_size[0]
  64 is larger than max_batch_size (32); each preferred size must be in 1..32
spec.yaml:17:30: models[1] (resnet) -> instance_groups[0] -> kind
  target tensorrt runs only on a GPU; use KIND_GPU, or a CPU target (onnx, python)
spec.yaml:18:16: models[1] (resnet) -> precision
  int8 needs calibration data: add calibration: {data: calib.npz} (one array per input)
spec.yaml:19:11: models[2] (../c) -> name
  '../c' contains a path separator; a model name is a single folder name
spec.yaml:22:5: models[2] (../c) -> verison
  unknown field 'verison'; did you mean 'versions'? Expected one of: name, source, target, versions, max_batch_size, signature, inputs, outputs, precision, opset, python_runtime, dynamic_batching, instance_groups, version_policy, warmup, response_cache, optimization, parameters, cc_model_filenames, calibration, tensorrt, tftrt, steps, verify, validation
""",
        id="many_problems",
    ),
]


def _write(tmp_path: Path, text: str) -> None:
    (tmp_path / "spec.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "model.py").write_text('"""Placeholder model source."""\n')


def test_enough_invalid_specs() -> None:
    assert len(INVALID) >= 25


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_render_reports_and_writes_nothing(
    text: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _write(tmp_path, text)
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_cli(capsys, "render", "spec.yaml", "-o", "out")
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr == "error: " + message.replace("{tmp}", str(tmp_path))
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no out/, no staging folder


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_check_reports_the_same(
    text: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _write(tmp_path, text)
    monkeypatch.chdir(tmp_path)
    result = run_cli(capsys, "check", "spec.yaml")
    if "render writes configs" in message:
        assert result.code == 0  # check accepts models whose tensors come from the model at build time
        return
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == "error: " + message.replace("{tmp}", str(tmp_path))


def test_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli(capsys, "render", "nowhere.yaml", "-o", "out")
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == "error: nowhere.yaml: no such file; expected a YAML spec (see `repo-builder schema`)\n"
    assert list(tmp_path.iterdir()) == []


def test_folder_instead_of_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").mkdir()
    result = run_cli(capsys, "check", "specs")
    assert (result.code, result.stderr) == (1, "error: specs: is a folder; expected a YAML spec file\n")


def test_invalid_spec_leaves_an_existing_repository_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    good = INVALID[[p.id for p in INVALID].index("duplicate_model_names")].values[0]
    assert isinstance(good, str)
    _write(tmp_path, good.split("  - name: base", 2)[0] + "  - name: base" + good.split("  - name: base", 2)[1])
    assert run_cli(capsys, "render", "spec.yaml", "-o", "out").code == 0
    snapshot = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    _write(tmp_path, good)  # now invalid: the name is used twice
    assert run_cli(capsys, "render", "spec.yaml", "-o", "out").code == 1
    after = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert after == snapshot
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.py", "out", "spec.yaml"]


def test_api_raises_spec_error_with_the_same_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text, message = next((p.values[0], p.values[1]) for p in INVALID if p.id == "preferred_batch_size_too_large")
    assert isinstance(text, str) and isinstance(message, str)
    _write(tmp_path, text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as caught:
        load_spec("spec.yaml")
    assert caught.value.message + "\n" == message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no pydantic trace attached
