"""The per-model pipeline (build.pipeline) as named steps, and its check before loading, without TensorFlow:
the steps are replaced by recorders (test doubles for the step functions only)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from repo_builder.build import pipeline
from repo_builder.build.pool import run_task
from repo_builder.converters import CONVERTERS
from repo_builder.errors import MissingDependencyError
from repo_builder.repository.manifest import ManifestEntry, ModelStatus
from repo_builder.spec import Spec, load_spec


def _spec(tmp_path: Path) -> Spec:
    (tmp_path / "m.py").write_text("def f():\n    return None\n")
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"models": [{"name": "a", "source": {"python": "m.py:f"}, "target": "onnx"}]}))
    return load_spec(path)


def test_steps_run_in_the_pipeline_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def recorder(name: str, result: Any) -> Any:
        def step(*_args: Any) -> Any:
            calls.append(name)
            return result

        return step

    spec = _spec(tmp_path)
    model = spec.model("a")
    entry = ManifestEntry(status=ModelStatus.BUILT)
    for name, result in [
        ("check", []),
        ("load", object()),
        ("inspect", (model, object(), {})),
        ("convert", [object()]),
        ("write", None),
        ("verify", object()),
        ("write_reference", None),
        ("entry", entry),
    ]:
        monkeypatch.setattr(pipeline, name, recorder(name, result))
    reported: list[str] = []
    got = pipeline.convert_model(spec, model, tmp_path / "stage", logging.getLogger("test"), reported.append)
    assert got is entry
    assert calls == ["check", "load", "inspect", "convert", "write", "verify", "write_reference", "entry"]
    assert reported == ["load", "inspect", "write", "verify"]


def test_a_missing_library_fails_before_the_source_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build without TensorFlow fails the model with the install hint, not a ModuleNotFoundError."""
    spec = _spec(tmp_path)
    converter = CONVERTERS["tensorflow2savedmodel"]
    monkeypatch.setattr(converter, "available", lambda: "TensorFlow is missing: pip install 'repo-builder[convert]'")

    def load(*_args: Any) -> Any:
        raise AssertionError("the source must not load when a converter is unusable")

    monkeypatch.setattr(pipeline, "load", load)
    with pytest.raises(MissingDependencyError, match=r"pip install 'repo-builder\[convert\]'"):
        pipeline.convert_model(spec, spec.model("a"), tmp_path, logging.getLogger("test"), lambda _s: None)
    result = run_task(pipeline.convert_model, spec, spec.model("a"), str(tmp_path / "stage"))
    assert result.status is ModelStatus.FAILED
    assert result.error is not None and "pip install 'repo-builder[convert]'" in result.error
    assert result.log is not None and "pip install 'repo-builder[convert]'" in result.log.read_text()


def test_a_full_disk_in_a_model_is_a_located_message(tmp_path: Path) -> None:
    """A full disk while a worker writes a model (simulated: the task raises ENOSPC as the file system
    would) fails that model with the disk and its free space, not a bare OSError."""
    import errno

    spec = _spec(tmp_path)

    def task(*_args: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "stage" / "a" / "1" / "model.onnx"))

    result = run_task(task, spec, spec.model("a"), str(tmp_path / "stage"))
    assert result.status is ModelStatus.FAILED
    assert result.error is not None
    assert "no space left on the disk mounted at" in result.error and "free of" in result.error
    assert "OSError" not in result.error
