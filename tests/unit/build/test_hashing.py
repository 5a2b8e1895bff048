"""What makes a model convert again (build.inputs_hash), without TensorFlow."""

from __future__ import annotations

from pathlib import Path

import yaml

from repo_builder.build.hashing import inputs_hash, library_versions
from repo_builder.spec import load_spec


def write(tmp_path: Path, models: list[dict[str, object]], code: str = "def f():\n    return None\n") -> Path:
    (tmp_path / "models.py").write_text(code)
    spec = tmp_path / "models.yaml"
    spec.write_text(yaml.safe_dump({"models": models}))
    return spec


MODEL = {"name": "m", "source": {"python": "models.py:f"}, "target": "onnx"}


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
