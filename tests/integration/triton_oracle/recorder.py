"""A pytest plugin that keeps every config.pbtxt the tests render, for Triton's core to judge.

    REPO_BUILDER_RECORD_CONFIGS=DIR pytest tests/unit -p tests.integration.triton_oracle.recorder

Every successful `render_config` (check, render, build and the tests that call it: the tool accepted the
spec and the config) is recorded with the model's version folders, label files and warmup files. The
configs of one loaded spec form one repository (an ensemble needs its steps): DIR/<n>/<model>/... with
DIR/<n>/SOURCES naming the tests that rendered it. Identical repositories are written once.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ENV = "REPO_BUILDER_RECORD_CONFIGS"


@dataclass
class _Model:
    config: str
    versions: list[int]
    files: dict[str, bytes]  # path in the model folder -> content


@dataclass
class _Repository:
    models: dict[str, _Model] = field(default_factory=dict)
    sources: set[str] = field(default_factory=set)


class Recorder:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.specs: list[Any] = []  # every spec loaded, newest last
        self.repositories: dict[int, _Repository] = {}  # by id of the spec (or the lone model)
        self.test = "(collection)"
        self._keep: list[Any] = []  # keeps the keys' objects alive, so their ids stay unique

    def spec_loaded(self, spec: Any) -> None:
        self.specs.append(spec)

    def rendered(self, model: Any, text: str) -> None:
        spec = next((s for s in reversed(self.specs) if any(m is model for m in s.models)), None)
        owner = spec if spec is not None else model
        self._keep.append(owner)
        repository = self.repositories.setdefault(id(owner), _Repository())
        repository.sources.add(self.test)
        files: dict[str, bytes] = {}
        if spec is not None:  # named as the repository's writer names them (the config says those names)
            from repo_builder.repository.layout import data_file_names

            labels = data_file_names([t.labels for t in model.outputs or [] if t.labels], reserved=True)
            for path, name in labels.items():
                files[name] = _read(spec.resolve(path))
            warmup = data_file_names([wi.file for w in model.warmup for wi in w.inputs.values() if wi.file])
            for path, name in warmup.items():
                files[f"warmup/{name}"] = _read(spec.resolve(path))
        repository.models[model.name] = _Model(text, list(model.versions), files)

    def write(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        seen: dict[str, Path] = {}
        for repository in self.repositories.values():
            if _missing_steps(repository):
                continue  # an ensemble whose steps a test wrote by hand: nothing for the core to load it with
            key = hashlib.sha256(
                repr(
                    sorted((n, m.config, m.versions, sorted(m.files.items())) for n, m in repository.models.items())
                ).encode()
            ).hexdigest()
            folder = seen.get(key)
            if folder is None:
                folder = seen[key] = self.out / f"{len(seen):04d}"
                for name, m in repository.models.items():
                    (folder / name).mkdir(parents=True)
                    (folder / name / "config.pbtxt").write_text(m.config)
                    for v in m.versions:
                        (folder / name / str(v)).mkdir()
                    for rel, content in m.files.items():
                        (folder / name / rel).parent.mkdir(parents=True, exist_ok=True)
                        (folder / name / rel).write_bytes(content)
            with (folder / "SOURCES").open("a") as f:
                f.writelines(f"{s}\n" for s in sorted(repository.sources))


def _missing_steps(repository: _Repository) -> bool:
    """Whether an ensemble of `repository` names a step model whose config was not rendered with it."""
    from google.protobuf import text_format
    from tritonclient.grpc.model_config_pb2 import ModelConfig

    for m in repository.models.values():
        config = text_format.Parse(m.config, ModelConfig())
        if any(step.model_name not in repository.models for step in config.ensemble_scheduling.step):
            return True
    return False


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


_recorder: Recorder | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _recorder
    out = os.environ.get(ENV)
    if not out or _recorder is not None:
        return
    _recorder = recorder = Recorder(Path(out))

    import repo_builder.render.config as render
    import repo_builder.spec as spec_package
    import repo_builder.spec.load as load

    original_load, original_render = load.load_spec, render.render_config

    def load_spec(*args: Any, **kwargs: Any) -> Any:
        spec = original_load(*args, **kwargs)
        recorder.spec_loaded(spec)
        return spec

    def render_config(model: Any, *args: Any, **kwargs: Any) -> str:
        text = original_render(model, *args, **kwargs)
        recorder.rendered(model, text)
        return text

    load.load_spec = spec_package.load_spec = load_spec  # type: ignore[assignment]
    render.render_config = render_config  # type: ignore[assignment]


def pytest_runtest_setup(item: pytest.Item) -> None:
    if _recorder is not None:
        _recorder.test = item.nodeid


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _recorder is not None:
        _recorder.write()
