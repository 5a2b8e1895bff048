"""Triton's rules on a parsed ModelConfig: each rule catches a hand-written config that breaks it."""

from __future__ import annotations

import importlib

import pytest

from repo_builder.errors import GeneratorBug
from repo_builder.spec import ModelSpec, spec_tensors
from repo_builder.triton import rules as triton_rules

# `from repo_builder import render` gives the API function of that name, not the module
render = importlib.import_module("repo_builder.render.config")

TENSORS = """\
input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 2 ] } ]
"""
ONNX = 'name: "m"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 8\n' + TENSORS
PLAN = 'name: "m"\nplatform: "tensorrt_plan"\nmax_batch_size: 8\n' + TENSORS
TF = 'name: "m"\nplatform: "tensorflow_savedmodel"\nmax_batch_size: 8\n' + TENSORS
NOBATCH = 'name: "m"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 0\n' + TENSORS
ENSEMBLE_STEPS = """\
ensemble_scheduling { step [ { model_name: "m" model_version: -1
  input_map { key: "x" value: "x" } output_map { key: "y" value: "y" } } ] }
"""
ENSEMBLE = 'name: "e"\nplatform: "ensemble"\nmax_batch_size: 8\n' + TENSORS
TRT_ACCEL = 'optimization { execution_accelerators { gpu_execution_accelerator [ { name: "tensorrt" %s } ] } }\n'

BAD = [
    pytest.param('platform: "onnxruntime_onnx"\n' + TENSORS, "name is empty", id="no-name"),
    pytest.param(
        ONNX + 'backend: "tensorflow"\n',
        "unexpected 'platform' and 'backend' pair, got:onnxruntime_onnx, tensorflow",
        id="mismatched-pair",
    ),
    pytest.param('name: "m"\n' + TENSORS, "must specify 'platform' or 'backend'", id="neither"),
    pytest.param(
        ONNX.replace("onnxruntime_onnx", "onnx_runtime"),
        "unknown platform 'onnx_runtime'",
        id="unknown-platform",
    ),
    pytest.param(ONNX.replace("max_batch_size: 8", "max_batch_size: -1"), "max_batch_size must be >= 0", id="mbs"),
    pytest.param(
        'name: "m"\nplatform: "onnxruntime_onnx"\n' + TENSORS.split("\n")[1],
        "no input tensors",
        id="no-inputs",
    ),
    pytest.param(
        'name: "m"\nplatform: "onnxruntime_onnx"\n' + TENSORS.split("\n")[0],
        "no output tensors",
        id="no-outputs",
    ),
    pytest.param(
        ONNX + 'input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]\n',
        "input 'x' is declared twice",
        id="twice",
    ),
    pytest.param(
        ONNX.replace("dims: [ 4 ]", "dims: [ ]"),
        "input 'x': dims must have rank >= 1 (use dims [1] with reshape [] for a scalar)",
        id="rank-0",
    ),
    pytest.param(ONNX.replace("dims: [ 2 ]", "dims: [ 0 ]"), "output 'y': dim 0 must be positive or -1", id="dim-0"),
    pytest.param(
        ONNX.replace("dims: [ 4 ]", "dims: [ -2 ]"),
        "input 'x': dim -2 must be positive or -1",
        id="dim-negative",
    ),
    pytest.param(
        ONNX.replace("data_type: TYPE_FP32 dims: [ 4 ]", "dims: [ 4 ]"),
        "input 'x': data_type is not set",
        id="no-dtype",
    ),
    pytest.param(NOBATCH + "dynamic_batching { }\n", "dynamic_batching needs max_batch_size > 0", id="db-mbs-0"),
    pytest.param(
        ONNX + "dynamic_batching { preferred_batch_size: [ 4, 16 ] }\n",
        "preferred_batch_size 16 is outside 1..8",
        id="preferred-too-large",
    ),
    pytest.param(
        ONNX + "dynamic_batching { preferred_batch_size: [ 0 ] }\n",
        "preferred_batch_size 0 is outside 1..8",
        id="preferred-zero",
    ),
    pytest.param(
        ONNX + "dynamic_batching { priority_levels: 2 default_priority_level: 3 }\n",
        "default_priority_level 3 is outside 1..2",
        id="default-priority",
    ),
    pytest.param(
        ONNX + "dynamic_batching { priority_levels: 2 default_priority_level: 1\n"
        "  priority_queue_policy { key: 5 value { max_queue_size: 1 } } }\n",
        "priority_queue_policy level 5 is outside 1..2",
        id="priority-queue-level",
    ),
    pytest.param(
        ENSEMBLE + ENSEMBLE_STEPS + "instance_group [ { kind: KIND_CPU } ]\n",
        "an ensemble has no instance_group",
        id="ensemble-instances",
    ),
    pytest.param(ENSEMBLE, "an ensemble needs ensemble_scheduling steps", id="ensemble-no-steps"),
    pytest.param(
        ONNX + "instance_group [ { kind: KIND_CPU gpus: [ 0 ] } ]\n",
        "instance group  has kind KIND_CPU but specifies one or more GPUs",
        id="gpus-cpu",
    ),
    pytest.param(
        ONNX + 'instance_group [ { name: "g" kind: KIND_MODEL gpus: [ 0 ] } ]\n',
        "instance group g has kind KIND_MODEL but specifies one or more GPUs",
        id="gpus-model",
    ),
    pytest.param(
        ONNX + 'instance_group [ { kind: KIND_GPU profile: [ "0" ] } ]\n',
        "instance_group profile is only for tensorrt_plan",
        id="profile-not-plan",
    ),
    pytest.param(
        ONNX + "instance_group [ { kind: KIND_CPU count: -1 } ]\n",
        "instance_group count must be >= 0 (0 or unset means 1)",
        id="count-negative",
    ),
    pytest.param(
        PLAN + TRT_ACCEL % "",
        "the tensorrt accelerator is not supported by tensorrt_plan",
        id="trt-accel-plan",
    ),
    pytest.param(
        ONNX + TRT_ACCEL % 'parameters { key: "max_cached_engines" value: "4" }',
        "tensorrt accelerator parameter 'max_cached_engines' is not one of ['max_workspace_size_bytes', "
        "'precision_mode', 'trt_engine_cache_enable', 'trt_engine_cache_path', "
        "'trt_max_partition_iterations', 'trt_min_subgraph_size']",
        id="trt-accel-onnx-key",
    ),
    pytest.param(
        TF + TRT_ACCEL % 'parameters { key: "precision_mode" value: "FP8" }',
        "precision_mode 'FP8' is not FP32, FP16 or INT8",
        id="precision-mode",
    ),
    pytest.param(
        ONNX + "optimization { execution_accelerators { gpu_execution_accelerator [ "
        '{ name: "auto_mixed_precision" } ] } }\n',
        "auto_mixed_precision is for the TensorFlow backend only",
        id="amp-onnx",
    ),
    pytest.param(
        TF + 'optimization { execution_accelerators { gpu_execution_accelerator [ { name: "tensorrt" }, '
        '{ name: "auto_mixed_precision" } ] } }\n',
        "auto_mixed_precision cannot be combined with tensorrt",
        id="amp-with-trt",
    ),
    pytest.param(
        ONNX + "optimization { cuda { graphs: true } }\n",
        "CUDA graphs are for tensorrt_plan only",
        id="cuda-graphs-onnx",
    ),
    pytest.param(
        PLAN.replace("max_batch_size: 8", "max_batch_size: 0")
        + "optimization { cuda { graphs: true graph_spec { batch_size: 1 } } }\n",
        "a graph_spec batch_size must be 0 when max_batch_size is 0",
        id="graph-spec-nobatch",
    ),
    pytest.param(
        PLAN + "optimization { cuda { graphs: true graph_spec { batch_size: 16 } } }\n",
        "graph_spec batch_size 16 is larger than max_batch_size 8",
        id="graph-spec-too-large",
    ),
    pytest.param(
        ONNX + 'model_warmup [ { name: "w" batch_size: 0 inputs { key: "x" value { data_type: TYPE_FP32 '
        "dims: [ 4 ] zero_data: true } } } ]\n",
        "model_warmup 'w': batch_size must be >= 1",
        id="warmup-batch-0",
    ),
    pytest.param(
        NOBATCH + 'model_warmup [ { name: "w" batch_size: 2 inputs { key: "x" value { data_type: TYPE_FP32 '
        "dims: [ 4 ] zero_data: true } } } ]\n",
        "model_warmup 'w': batch_size must be 1 when max_batch_size is 0",
        id="warmup-nobatch",
    ),
    pytest.param(
        ONNX + 'model_warmup [ { name: "w" batch_size: 9 inputs { key: "x" value { data_type: TYPE_FP32 '
        "dims: [ 4 ] zero_data: true } } } ]\n",
        "model_warmup 'w': batch_size 9 is larger than max_batch_size 8",
        id="warmup-too-large",
    ),
    pytest.param(
        ONNX + 'model_warmup [ { name: "w" batch_size: 1 } ]\n',
        "model_warmup 'w': no data for inputs ['x']",
        id="warmup-missing-input",
    ),
    pytest.param(
        ONNX + 'model_warmup [ { name: "w" batch_size: 1 inputs { key: "x" value { data_type: TYPE_FP32 '
        'dims: [ 4 ] zero_data: true } } inputs { key: "z" value { data_type: TYPE_FP32 dims: [ 1 ] '
        "zero_data: true } } } ]\n",
        "model_warmup 'w': 'z' is not an input",
        id="warmup-unknown-input",
    ),
    pytest.param(
        ONNX + 'cc_model_filenames { key: "8.6" value: "model.plan" }\n',
        "cc_model_filenames is for tensorrt_plan only",
        id="cc-not-plan",
    ),
    pytest.param(
        ONNX + "version_policy { specific { } }\n",
        "version_policy specific needs at least one version",
        id="specific-empty",
    ),
    pytest.param(
        ONNX + "version_policy { latest { num_versions: 0 } }\n",
        "version_policy latest needs num_versions >= 1",
        id="latest-0",
    ),
    pytest.param(
        ONNX.replace("dims: [ 4 ]", "dims: [ 4 ] reshape { shape: [ 2, 3 ] }"),
        "model input 'x' has different size for dims and reshape",
        id="reshape-size",
    ),
    pytest.param(
        ONNX.replace("dims: [ 4 ]", "dims: [ -1, 4 ] reshape { shape: [ -1, 2, -1 ] }"),
        "model input 'x' has different number of variable-size dimensions for dims and reshape",
        id="reshape-variable-count",
    ),
    pytest.param(
        ONNX.replace("dims: [ 4 ]", "dims: [ 2, -1, 6 ] reshape { shape: [ 2, -1, 3 ] }"),
        "model input 'x' has different size for dims and reshape",
        id="reshape-variable-runs",
    ),
    pytest.param(
        ONNX.replace("dims: [ 2 ]", "dims: [ 2 ] reshape { shape: [ 0, 2 ] }"),
        "model output 'y' reshape dimensions must be integer >= 1, or -1 to indicate a variable-size dimension",
        id="reshape-zero",
    ),
    pytest.param(
        NOBATCH.replace("dims: [ 4 ]", "dims: [ 1 ] reshape { shape: [ ] }"),
        "model input 'x' cannot have empty reshape for non-batching model as scalar tensors are not supported",
        id="reshape-scalar-nobatch",
    ),
    pytest.param(
        ONNX + "dynamic_batching { preserve_ordering: true priority_levels: 2 default_priority_level: 1 }\n",
        "Only one priority level is allowed when 'preserve_ordering' is true",
        id="preserve-ordering-levels",
    ),
    pytest.param(
        ONNX + "dynamic_batching { preserve_ordering: true priority_levels: 1 default_priority_level: 1\n"
        "  priority_queue_policy { key: 1 value { timeout_action: DELAY default_timeout_microseconds: 5 } } }\n",
        "Queue policy can not have DELAY as timeout action when 'preserve_ordering' is true",
        id="preserve-ordering-delay",
    ),
    pytest.param(
        ONNX + 'instance_group [ { name: "g" kind: KIND_GPU gpus: [ -1 ] } ]\n',
        "instance group g specifies invalid or unsupported gpu id -1",
        id="gpu-negative",
    ),
    pytest.param(
        ONNX + 'model_warmup [ { name: "w" batch_size: 1 inputs { key: "x" value { data_type: TYPE_FP32 '
        "dims: [ -1 ] zero_data: true } } } ]\n",
        "warmup setting expects all variable-size dimensions are specified for input 'x'",
        id="warmup-variable",
    ),
    pytest.param(
        ONNX + 'model_warmup [ { name: "w" batch_size: 1 inputs { key: "x" value { data_type: TYPE_FP32 '
        "dims: [ 0 ] zero_data: true } } } ]\n",
        "unexpected shape for input 'x' for model 'm'. Expected [-1,4], got [1,0]",
        id="warmup-zero",
    ),
    pytest.param(
        NOBATCH + 'model_warmup [ { name: "w" batch_size: 1 inputs { key: "x" value { data_type: TYPE_FP32 '
        "dims: [ 2, 2 ] zero_data: true } } } ]\n",
        "unexpected shape for input 'x' for model 'm'. Expected [4], got [2,2]",
        id="warmup-shape-nobatch",
    ),
    pytest.param(
        ENSEMBLE + ENSEMBLE_STEPS + 'backend: "python"\n',
        "Ensemble model 'e' must have platform type 'ensemble' and empty backend type",
        id="ensemble-backend",
    ),
    pytest.param(
        ENSEMBLE + ENSEMBLE_STEPS + "optimization { input_pinned_memory { enable: true } }\n",
        "optimization should not be specified for ensemble 'e'",
        id="ensemble-optimization",
    ),
    pytest.param(
        ENSEMBLE + ENSEMBLE_STEPS + 'model_warmup [ { name: "w" batch_size: 1 inputs { key: "x" value { '
        "data_type: TYPE_FP32 dims: [ 4 ] zero_data: true } } } ]\n",
        "model_warmup can not be specified for ensemble 'e'",
        id="ensemble-warmup",
    ),
    pytest.param(
        ENSEMBLE + ENSEMBLE_STEPS.replace('output_map { key: "y" value: "y" }', 'output_map { key: "y" value: "t" }'),
        "outputs[0] -> name: ensemble output 'y' is not produced by any step (Triton: ensemble output 'y' for "
        "ensemble 'e' is not used); map a step's output to it in an output_map",
        id="ensemble-output-not-written",
    ),
    pytest.param(
        ENSEMBLE + ENSEMBLE_STEPS.replace('input_map { key: "x" value: "x" }', 'input_map { key: "x" value: "q" }'),
        "inputs[0] -> name: ensemble input 'x' for ensemble 'e' is not used; map it in a step's input_map, or "
        "remove it from the inputs",
        id="ensemble-input-unused",
    ),
]


@pytest.mark.parametrize(
    "good",
    [
        pytest.param(ONNX, id="onnx"),
        pytest.param(ONNX + "instance_group [ { kind: KIND_AUTO gpus: [ 0 ] } ]\n", id="auto-with-gpus"),
        pytest.param(
            ONNX.replace("dims: [ 4 ]", "dims: [ -1 ]")
            + 'model_warmup [ { name: "w" batch_size: 2 inputs { key: "x" value { data_type: TYPE_FP32 '
            "dims: [ 0 ] zero_data: true } } } ]\n",
            id="warmup-empty-variable-dim",  # measured: tritonserver 2.51 loads it
        ),
        pytest.param(ONNX + 'backend: "onnxruntime"\n', id="platform-and-its-backend"),
        pytest.param(TF + 'backend: "python"\n', id="platform-and-an-unknown-backend"),
        pytest.param(NOBATCH, id="nobatch"),
        pytest.param(ENSEMBLE + ENSEMBLE_STEPS, id="ensemble"),
        pytest.param('name: "p"\nbackend: "python"\nmax_batch_size: 0\n', id="python-without-tensors"),
        pytest.param(TF + TRT_ACCEL % 'parameters { key: "max_cached_engines" value: "4" }', id="tf-trt-accel"),
        pytest.param(
            PLAN + 'cc_model_filenames { key: "8.6" value: "m86.plan" }\n'
            'instance_group [ { kind: KIND_GPU count: 1 gpus: [ 0 ] profile: [ "0" ] } ]\n'
            "optimization { cuda { graphs: true graph_spec { batch_size: 8 } } }\n",
            id="plan",
        ),
    ],
)
def test_good_configs_pass(good: str) -> None:
    assert triton_rules.check(triton_rules.parse(good)) == []


@pytest.mark.parametrize(("text", "problem"), BAD)
def test_rule_catches_bad_config(text: str, problem: str) -> None:
    problems = triton_rules.check(triton_rules.parse(text))
    assert problem in problems


def test_every_rule_has_a_bad_config() -> None:
    """A message of triton_rules.check that no case above produces means an untested rule."""
    import inspect
    import re

    source = inspect.getsource(triton_rules.check)
    rules = re.findall(r'add\(f?"([^"{]+)', source)
    covered = " | ".join(p.values[1] for p in BAD)  # type: ignore[misc]
    untested = [r for r in rules if r.split("{")[0] not in covered]
    assert untested == []


def test_parse_error_is_a_generator_bug() -> None:
    with pytest.raises(GeneratorBug) as caught:
        triton_rules.parse('name: "m"\nmax_batch_sizee: 4\n', origin="config.pbtxt of m")
    message = caught.value.message
    assert message.startswith(
        "config.pbtxt of m does not parse as Triton's ModelConfig: "
        '2:1 : Message type "inference.ModelConfig" has no field named "max_batch_sizee".'
    )
    assert message.endswith("This is a bug in repo-builder: please report it with the spec that caused it.")
    assert isinstance(caught.value.__cause__, Exception)


def test_rendered_config_that_does_not_parse_is_a_generator_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    model = ModelSpec.model_validate(
        {
            "name": "broken",
            "source": {"python": "model.py:build"},
            "target": "onnx",
            "inputs": [{"name": "x", "dtype": "FP32", "dims": [4]}],
            "outputs": [{"name": "y", "dtype": "FP32", "dims": [2]}],
        }
    )
    tensors = spec_tensors(model)
    assert tensors is not None
    monkeypatch.setattr(render, "render_template", lambda *a, **k: 'name: "broken"\nmax_batch_size: "eight"\n')
    with pytest.raises(GeneratorBug) as caught:
        render.render_config(model, tensors)
    assert caught.value.message.startswith("the config.pbtxt rendered for broken does not parse as Triton's")
    assert 'max_batch_size: "eight"' in caught.value.message


def test_rendered_config_that_breaks_a_rule_is_a_generator_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    model = ModelSpec.model_validate(
        {
            "name": "ruled",
            "source": {"python": "model.py:build"},
            "target": "onnx",
            "inputs": [{"name": "x", "dtype": "FP32", "dims": [4]}],
            "outputs": [{"name": "y", "dtype": "FP32", "dims": [2]}],
        }
    )
    tensors = spec_tensors(model)
    assert tensors is not None
    monkeypatch.setattr(render, "render_template", lambda *a, **k: 'name: "ruled"\nplatform: "onnxruntime_onnx"\n')
    with pytest.raises(GeneratorBug) as caught:
        render.render_config(model, tensors)
    assert caught.value.message == (
        "the config.pbtxt rendered for ruled breaks Triton's rules:\n"
        "  - no input tensors\n"
        "  - no output tensors\n"
        'name: "ruled"\n'
        'platform: "onnxruntime_onnx"\n'
        "\nThis is a bug in repo-builder: please report it with the spec that caused it."
    )


STEP_A = 'name: "a"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 8\n' + TENSORS
STEP_B = (
    'name: "b"\nbackend: "python"\nmax_batch_size: 0\n'
    'input [ { name: "u" data_type: TYPE_INT32 dims: [ -1, 2 ] }, '
    '{ name: "v" data_type: TYPE_FP32 dims: [ 3 ] optional: true } ]\n'
    'output [ { name: "w" data_type: TYPE_FP32 dims: [ -1, 2 ] } ]\n'
)
CHAIN = """\
name: "e"
platform: "ensemble"
max_batch_size: 16
input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 2 ] } ]
ensemble_scheduling { step [
  { model_name: "b" model_version: -1 input_map { key: "u" value: "t" } output_map { key: "w" value: "y" } },
  { model_name: "a" model_version: -1 input_map { key: "x" value: "x" } input_map { key: "z" value: "x" }
    output_map { key: "y" value: "t" } output_map { key: "q" value: "r" } }
] }
"""


def test_ensemble_against_its_steps() -> None:
    """Triton's ValidateEnsembleConfig and ValidateTensorMapping, on the configs of the steps."""
    steps = {"a": triton_rules.parse(STEP_A), "b": triton_rules.parse(STEP_B)}
    config = triton_rules.parse(CHAIN)
    assert triton_rules.check_ensemble(config, steps) == [
        "steps[1] -> model: ensemble e allows maximum batch size 16, but it contains model a which only allows "
        "maximum batch size to be 8; expected the ensemble's max_batch_size <= 8",
        "steps[1] -> input_map -> z: in ensemble e, ensemble tensor x is mapping to non-existing input z in model "
        "a; its inputs: x",
        "steps[1] -> output_map -> q: in ensemble e, ensemble tensor r is mapped from non-existing output q in "
        "model a; its outputs: y",
        "steps[1] -> output_map -> y: in ensemble e, ensemble tensor t: inconsistent data type: TYPE_INT32 is "
        "inferred from model b while TYPE_FP32 is inferred from model a; a tensor joined across steps has one dtype",
    ]
    # without the step models, the data flow alone: r is written and nothing reads it
    assert triton_rules.check(config) == [
        "steps[1] -> output_map -> q: ensemble tensor 'r' is unused in ensemble 'e': no step reads it and it is "
        "not an ensemble output; remove it from this output_map, or add it to the outputs"
    ]


def test_ensemble_shapes_across_batching_and_non_batching_steps() -> None:
    """A non-batching step's [-1, 2] joins a batching ensemble's [2] (Triton compares the full shapes)."""
    chain = (
        CHAIN.replace('value: "t" } output_map { key: "q" value: "r" }', 'value: "t" }')
        .replace('input_map { key: "z" value: "x" }', "")
        .replace("max_batch_size: 16", "max_batch_size: 8")
    )
    step_b = STEP_B.replace("TYPE_INT32", "TYPE_FP32").replace("dims: [ -1, 2 ] }, ", "dims: [ -1, 2 ] }, ")
    steps = {"a": triton_rules.parse(STEP_A), "b": triton_rules.parse(step_b)}
    assert triton_rules.check_ensemble(triton_rules.parse(chain), steps) == []
    wrong = step_b.replace(
        'name: "w" data_type: TYPE_FP32 dims: [ -1, 2 ]', 'name: "w" data_type: TYPE_FP32 dims: [ -1, 5 ]'
    )
    steps["b"] = triton_rules.parse(wrong)
    assert triton_rules.check_ensemble(triton_rules.parse(chain), steps) == [
        "steps[0] -> output_map -> w: in ensemble e, ensemble tensor y: inconsistent shape: [-1,2] is inferred "
        "from model e while [-1,5] is inferred from model b; a tensor joined across steps has one shape "
        "(-1 matches any size)"
    ]


def test_required_step_input_must_be_mapped() -> None:
    step_b = STEP_B.replace(" optional: true", "")
    chain = CHAIN.replace('input_map { key: "z" value: "x" }', "")
    problems = triton_rules.check_ensemble(triton_rules.parse(chain), {"b": triton_rules.parse(step_b)})
    assert (
        "steps[0] -> input_map: in ensemble e, input v in model b is not mapped to any ensemble tensors; add "
        "`v: <tensor>` to this step's input_map" in problems
    )


@pytest.mark.parametrize(
    ("dims", "reshape", "mbs", "accepted"),
    [
        ([4], [2, 2], 8, True),
        ([4], [2, 3], 8, False),
        ([1], [], 8, True),
        ([1], [], 0, False),
        ([2], [], 8, False),
        ([-1], [], 8, False),
        ([2, 4, -1, 6], [8, -1, 1, 6], 0, True),
        ([2, 4, -1, 6], [8, -1, 2, 6], 0, False),
        ([-1, 4], [-1, 2, -1], 8, False),
        ([-1, -1], [-1, 1, -1], 8, True),
        ([4], [-1], 8, False),
    ],
)
def test_reshape_as_triton_checks_it(dims: list[int], reshape: list[int], mbs: int, accepted: bool) -> None:
    assert (triton_rules.reshape_problem(dims, reshape, mbs) is None) == accepted
