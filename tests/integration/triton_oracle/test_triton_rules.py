"""What Triton's core (2.51) refuses, and what it accepts, for the rules the spec mirrors: each case is a
hand-written repository and Triton's own message. The spec's rules (spec/rules.py, spec/ensemble.py,
triton/rules.py) must refuse the first kind with Triton's reason and must not refuse the second kind (never
stricter than Triton)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.triton_oracle.oracle import TritonOracle, refusals

pytestmark = pytest.mark.server


def _model(name: str, inputs: str, outputs: str, extra: str = "", head: str = 'platform: "onnxruntime_onnx"') -> str:
    return f'name: "{name}"\n{head}\nmax_batch_size: 8\ninput [ {inputs} ]\noutput [ {outputs} ]\n{extra}'


def _t(name: str, dims: str = "4", extra: str = "", dtype: str = "TYPE_FP32") -> str:
    return f'{{ name: "{name}" data_type: {dtype} dims: [ {dims} ] {extra} }}'


X, Y = _t("x"), _t("y")
A = _model("a", _t("ai"), _t("ao"), head='backend: "python"')
B = _model("b", _t("bi") + ", " + _t("bj"), _t("bo"), head='backend: "python"')
C = _model("c", _t("ci"), _t("co") + ", " + _t("cp"), head='backend: "python"')


def _ensemble(name: str, steps: str, inputs: str = X, outputs: str = Y) -> str:
    return _model(name, inputs, outputs, f"ensemble_scheduling {{ {steps} }}\n", head='platform: "ensemble"')


def _step(model: str, inputs: str, outputs: str) -> str:
    return f'step {{ model_name: "{model}" model_version: -1 {inputs} {outputs} }} '


def _map(kind: str, pairs: dict[str, str]) -> str:
    return " ".join(f'{kind} {{ key: "{k}" value: "{v}" }}' for k, v in pairs.items())


def _db(body: str) -> str:
    return f"dynamic_batching {{ {body} }}\n"


DELAY = "timeout_action: DELAY default_timeout_microseconds: {}"

REFUSED = {
    "reshape element count": (
        {"m": _model("m", _t("x", "4", "reshape: { shape: [ 2, 3 ] }"), Y)},
        "m",
        "model input 'x' has different size for dims and reshape for m",
    ),
    "reshape variable segments": (
        {"m": _model("m", _t("x", "-1, 4", "reshape: { shape: [ -1, 2, -1 ] }"), Y)},
        "m",
        "model input 'x' has different number of variable-size dimensions for dims and reshape for m",
    ),
    "empty reshape of a non-batching input": (
        {
            "m": _model("m", _t("x", "1", "reshape: { shape: [ ] }"), Y).replace(
                "max_batch_size: 8", "max_batch_size: 0"
            )
        },
        "m",
        "model input 'x' cannot have empty reshape for non-batching model as scalar tensors are not supported for m",
    ),
    "empty reshape of a non-batching output": (
        {
            "m": _model("m", X, _t("y", "1", "reshape: { shape: [ ] }")).replace(
                "max_batch_size: 8", "max_batch_size: 0"
            )
        },
        "m",
        "model output 'y' cannot have empty reshape for non-batching model as scalar tensors are not supported for m",
    ),
    "preserve_ordering with two priority levels": (
        {"m": _model("m", X, Y, _db("preserve_ordering: true priority_levels: 2 default_priority_level: 1"))},
        "m",
        "Only one priority level is allowed when 'preserve_ordering' is true for m",
    ),
    "preserve_ordering with a DELAY default policy": (
        {"m": _model("m", X, Y, _db(f"preserve_ordering: true default_queue_policy {{ {DELAY.format(100)} }}"))},
        "m",
        "Queue policy can not have DELAY as timeout action when 'preserve_ordering' is true for m",
    ),
    "preserve_ordering with a DELAY priority policy": (
        {
            "m": _model(
                "m",
                X,
                Y,
                _db(
                    "preserve_ordering: true priority_levels: 1 default_priority_level: 1 "
                    f"priority_queue_policy {{ key: 1 value {{ {DELAY.format(100)} }} }}"
                ),
            )
        },
        "m",
        "Queue policy can not have DELAY as timeout action when 'preserve_ordering' is true for m",
    ),
    "warmup with a variable dim": (
        {
            "m": _model(
                "m",
                _t("x", "-1"),
                Y,
                'model_warmup [ { name: "w" batch_size: 1 inputs { key: "x" value: '
                "{ data_type: TYPE_FP32 dims: [ -1 ] zero_data: true } } } ]\n",
            )
        },
        "m",
        "Invalid argument: warmup setting expects all variable-size dimensions are specified for input 'x'",
    ),
    "a step input mapped to nothing": (
        {"b": B, "e": _ensemble("e", _step("b", _map("input_map", {"bi": "x"}), _map("output_map", {"bo": "y"})))},
        "e",
        "load failed for model 'e': in ensemble e, input bj in model b is not mapped to any ensemble tensors",
    ),
    "a dtype that differs across steps": (
        {
            "a": A,
            "e": _ensemble(
                "e",
                _step("a", _map("input_map", {"ai": "x"}), _map("output_map", {"ao": "y"})),
                inputs=_t("x", dtype="TYPE_INT32"),
            ),
        },
        "e",
        "load failed for model 'e': in ensemble e, ensemble tensor x: inconsistent data type: TYPE_INT32 is "
        "inferred from model e while TYPE_FP32 is inferred from model a",
    ),
    "a shape that differs across steps": (
        {
            "a": A,
            "e": _ensemble(
                "e", _step("a", _map("input_map", {"ai": "x"}), _map("output_map", {"ao": "y"})), inputs=_t("x", "5")
            ),
        },
        "e",
        "load failed for model 'e': in ensemble e, ensemble tensor x: inconsistent shape: [-1,5] is inferred "
        "from model e while [-1,4] is inferred from model a",
    ),
    "an ensemble input nothing reads": (
        {
            "a": A,
            "e": _ensemble(
                "e",
                _step("a", _map("input_map", {"ai": "x"}), _map("output_map", {"ao": "y"})),
                inputs=X + ", " + _t("z"),
            ),
        },
        "e",
        "ensemble input 'z' for ensemble e' is not used",  # Triton's quotes
    ),
    "an intermediate tensor nothing reads": (
        {
            "a": A,
            "c": C,
            "e": _ensemble(
                "e",
                _step("c", _map("input_map", {"ci": "x"}), _map("output_map", {"co": "t", "cp": "unused"}))
                + _step("a", _map("input_map", {"ai": "t"}), _map("output_map", {"ao": "y"})),
            ),
        },
        "e",
        "ensemble tensor 'unused' is unused in ensemble 'e'",
    ),
    "a tensor written by two steps": (
        {
            "a": A,
            "e": _ensemble("e", 2 * _step("a", _map("input_map", {"ai": "x"}), _map("output_map", {"ao": "y"}))),
        },
        "e",
        "ensemble tensor 'y' can appear in an output map only once for ensemble 'e' step 1",
    ),
    "an empty output_map": (
        {
            "a": A,
            "e": _ensemble(
                "e",
                _step("a", _map("input_map", {"ai": "x"}), _map("output_map", {"ao": "y"}))
                + _step("a", _map("input_map", {"ai": "x"}), ""),
            ),
        },
        "e",
        "must specify 'output_map' in step 1 of ensemble 'e'",
    ),
    "an empty input_map": (
        {
            "a": A,
            "e": _ensemble(
                "e",
                _step("a", _map("input_map", {"ai": "x"}), _map("output_map", {"ao": "y"}))
                + _step("a", "", _map("output_map", {"ao": "z"})),
            ),
        },
        "e",
        "must specify 'input_map' in step 1 of ensemble 'e'",
    ),
    "a warmup on an ensemble": (
        {
            "a": A,
            "e": _ensemble("e", _step("a", _map("input_map", {"ai": "x"}), _map("output_map", {"ao": "y"})))
            + 'model_warmup [ { name: "w" batch_size: 1 inputs { key: "x" value: '
            "{ data_type: TYPE_FP32 dims: [ 4 ] zero_data: true } } } ]\n",
        },
        "e",
        "model_warmup can not be specified for ensemble 'e'",
    ),
    "two ensembles in a cycle": (
        {
            "e1": _ensemble("e1", _step("e2", _map("input_map", {"x": "x"}), _map("output_map", {"y": "y"}))),
            "e2": _ensemble("e2", _step("e1", _map("input_map", {"x": "x"}), _map("output_map", {"y": "y"}))),
        },
        "e1",
        "load failed for model 'e1': circular dependency between ensembles: e1 -> ... -> e2 -> e1",
    ),
}

ACCEPTED = {
    # Triton refuses DELAY under preserve_ordering only with a non-zero default timeout
    "preserve_ordering with a DELAY policy and no timeout": _model(
        "m",
        X,
        Y,
        _db(
            f"preserve_ordering: true default_queue_policy {{ {DELAY.format(0)} }} priority_levels: 1 "
            f"default_priority_level: 1 priority_queue_policy {{ key: 1 value {{ {DELAY.format(0)} }} }}"
        ),
    ),
    # accelerators on CPU instances are ignored, not refused (a warning's business, never an error)
    "a TensorRT accelerator on a CPU instance": _model(
        "m",
        X,
        Y,
        "instance_group [ { kind: KIND_CPU } ]\noptimization { execution_accelerators { gpu_execution_accelerator "
        '[ { name: "tensorrt" } ] } }\n',
    ),
    # a scalar per request of a batching model: the model sees a [batch] vector
    "an empty reshape of a batching model": _model("m", _t("x", "1", "reshape: { shape: [ ] }"), Y),
}


def _write(root: Path, configs: dict[str, str]) -> Path:
    for name, text in configs.items():
        (root / name / "1").mkdir(parents=True)
        (root / name / "config.pbtxt").write_text(text)
    return root


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_triton_refuses(case: str, triton_oracle: TritonOracle, tmp_path: Path) -> None:
    configs, model, message = REFUSED[case]
    verdicts = triton_oracle.judge(_write(tmp_path / "repo", configs))
    assert not verdicts[model].accepted, verdicts[model]
    assert verdicts[model].message == message


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_triton_accepts(case: str, triton_oracle: TritonOracle, tmp_path: Path) -> None:
    verdicts = triton_oracle.judge(_write(tmp_path / "repo", {"m": ACCEPTED[case]}))
    assert refusals(verdicts) == {}
