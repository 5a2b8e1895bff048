"""What makes a model convert again (build.inputs_hash), without TensorFlow."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from repo_builder.build.hashing import inputs_hash, library_versions, model_hashes
from repo_builder.spec import load_spec


def write(tmp_path: Path, models: list[dict[str, object]], code: str = "def f():\n    return None\n") -> Path:
    (tmp_path / "models.py").write_text(code)
    spec = tmp_path / "models.yaml"
    spec.write_text(yaml.safe_dump({"models": models}))
    return spec


MODEL: dict[str, object] = {"name": "m", "source": {"python": "models.py:f"}, "target": "onnx"}


def digest(spec_path: Path, libraries: dict[str, str] | None = None) -> str:
    spec = load_spec(spec_path)
    return inputs_hash(spec, spec.models[0], libraries if libraries is not None else {"tensorflow": "2.21.0"})


def test_same_inputs_same_hash(tmp_path: Path) -> None:
    spec = write(tmp_path, [MODEL])
    assert digest(spec) == digest(spec)


def test_source_settings_and_libraries_change_the_hash(tmp_path: Path) -> None:
    spec = write(tmp_path, [MODEL])
    base = digest(spec)
    assert digest(spec, {"tensorflow": "2.20.0"}) != base
    write(tmp_path, [MODEL], code="def f():\n    return 1\n")
    assert digest(spec) != base
    write(tmp_path, [{**MODEL, "opset": 15}])
    assert digest(spec) != base
    write(tmp_path, [MODEL])
    assert digest(spec) == base


def test_library_versions_come_from_metadata() -> None:
    versions = library_versions()
    assert "numpy" in versions and "pydantic" not in versions


def hashes(spec_path: Path) -> tuple[str, str | None]:
    spec = load_spec(spec_path)
    return model_hashes(spec, spec.models[0], {"tensorflow": "2.21.0"})


TENSORS: dict[str, object] = {
    "max_batch_size": 8,
    "inputs": [{"name": "x", "dtype": "FP32", "dims": [4]}],
    "outputs": [{"name": "y", "dtype": "FP32", "dims": [2]}],
}


@pytest.mark.parametrize(
    "change",
    [
        {"instance_groups": [{"kind": "KIND_CPU", "count": 2}]},
        {"dynamic_batching": {"max_queue_delay_microseconds": 100}},
        {"dynamic_batching": False},
        {"version_policy": {"latest": 1}},
        {"response_cache": True},
        {"parameters": {"k": "v"}},
        {"validation": {"p99_latency_ms": 5}},
        {"optimization": {"input_pinned_memory": False}},
        {"warmup": [{"name": "w", "batch_size": 2}]},
        {"outputs": [{"name": "y", "dtype": "FP32", "dims": [2], "labels": "labels.txt"}]},
        {"inputs": [{"name": "x", "dtype": "FP32", "dims": [4], "optional": True}]},
    ],
    ids=lambda c: next(iter(c)) + (":" + str(c[next(iter(c))])[:20] if next(iter(c)) in ("inputs", "outputs") else ""),
)
def test_a_config_setting_changes_the_inputs_hash_not_the_conversion_hash(
    tmp_path: Path, change: dict[str, object]
) -> None:
    (tmp_path / "labels.txt").write_text("a\nb\n")
    spec = write(tmp_path, [{**MODEL, **TENSORS}])
    before = hashes(spec)
    write(tmp_path, [{**MODEL, **TENSORS, **change}])
    after = hashes(spec)
    assert after[0] != before[0]
    assert after[1] == before[1] is not None


def test_a_label_file_is_config_its_content_counts(tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    outputs = [{"name": "y", "dtype": "FP32", "dims": [2], "labels": "labels.txt"}]
    spec = write(tmp_path, [{**MODEL, **TENSORS, "outputs": outputs}])
    before = hashes(spec)
    labels.write_text("b\na\n")
    after = hashes(spec)
    assert after[0] != before[0] and after[1] == before[1]


@pytest.mark.parametrize(
    "change",
    [
        {"opset": 15},
        {"max_batch_size": 4},
        {"versions": [1, 2]},
        {"signature": "other"},
        {"precision": "fp16", "optimization": {"tensorrt": True}},  # the tolerance of the check
        {"verify": {"atol": 0.5}},
        {"verify": False},
        {"target": "python"},
        {"inputs": [{"name": "x", "dtype": "FP32", "dims": [-1]}]},
        {"inputs": [{"name": "x", "dtype": "FP32", "dims": [4], "reshape": [2, 2]}]},
        {"outputs": [{"name": "z", "dtype": "FP32", "dims": [2]}]},
    ],
    ids=lambda c: next(iter(c)) + ":" + str(c[next(iter(c))])[:30],
)
def test_a_conversion_setting_changes_the_conversion_hash(tmp_path: Path, change: dict[str, object]) -> None:
    spec = write(tmp_path, [{**MODEL, **TENSORS}])
    before = hashes(spec)
    write(tmp_path, [{**MODEL, **TENSORS, **change}])
    after = hashes(spec)
    assert after[0] != before[0] and after[1] != before[1]


def test_the_source_and_a_given_max_batch_size_change_the_conversion_hash(tmp_path: Path) -> None:
    """max_batch_size: 8 written out is not the default 8: the build keeps a given one and detects the other."""
    spec = write(tmp_path, [MODEL])
    before = hashes(spec)
    write(tmp_path, [{**MODEL, "max_batch_size": 8}])
    assert hashes(spec)[1] != before[1]
    write(tmp_path, [MODEL], code="def f():\n    return 2\n")
    assert hashes(spec)[1] != before[1]


def test_an_ensemble_has_no_conversion_hash(tmp_path: Path) -> None:
    models: list[dict[str, object]] = [
        {**MODEL, **TENSORS},
        {
            "name": "e",
            "target": "ensemble",
            "inputs": [{"name": "x", "dtype": "FP32", "dims": [4]}],
            "outputs": [{"name": "y", "dtype": "FP32", "dims": [2]}],
            "steps": [{"model": "m", "input_map": {"x": "x"}, "output_map": {"y": "y"}}],
        },
    ]
    spec = load_spec(write(tmp_path, models))
    full, conversion = model_hashes(spec, spec.models[1], {})
    assert conversion is None and full


def test_the_strings_module_a_python_model_includes_changes_its_conversion_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A python model's model.py includes verify/strings.py's text (the template _strings.py.j2): the hash
    follows that file, as it followed the template's; an onnx model does not include it."""
    from repo_builder.render import config
    from repo_builder.verify import strings

    assert config.template_path("_strings.py.j2") == Path(strings.__file__).resolve()
    copy = tmp_path / "strings.py"
    copy.write_text(Path(strings.__file__).read_text())
    monkeypatch.setitem(config.MODULE_TEMPLATES, "_strings.py.j2", copy)
    (tmp_path / "p").mkdir()
    (tmp_path / "o").mkdir()
    python = write(tmp_path / "p", [{**MODEL, **TENSORS, "target": "python"}])
    onnx = write(tmp_path / "o", [{**MODEL, **TENSORS}])
    before, onnx_before = hashes(python), hashes(onnx)
    copy.write_text(copy.read_text().replace("(UTF-8)", "(UTF-8, strictly)"))
    after = hashes(python)
    assert after[0] != before[0] and after[1] != before[1]
    assert hashes(onnx) == onnx_before
