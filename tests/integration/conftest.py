"""Session fixtures of the integration tests, used by name: the examples built once (`built_examples`) and the
hand-written repository served once by the embedded tritonserver (`model_repository`, `embedded_server`,
`served_configs`). What they build lives in examples.py and sample_repository.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from repo_builder.serve import EmbeddedServer
from tests.integration.examples import BuiltExamples, copy_examples, run_build
from tests.integration.sample_repository import make_repository


@pytest.fixture(scope="session")
def built_examples(tmp_path_factory: pytest.TempPathFactory) -> BuiltExamples:
    """examples/models.yaml built once per session (about 10 s on 2 cores). Tests must not change it."""
    base = tmp_path_factory.mktemp("examples")
    spec = copy_examples(base / "examples")
    repo = base / "model_repository"
    started = time.monotonic()
    done = run_build(spec, repo)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        pytest.fail(f"building the examples failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return BuiltExamples(spec, repo, seconds, done.returncode, done.stdout + done.stderr)


@pytest.fixture(scope="session")
def model_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository of sample_repository.py, written once per session. Tests must not change it."""
    return make_repository(tmp_path_factory.mktemp("repository"))


@pytest.fixture(scope="session")
def embedded_server(model_repository: Path) -> Iterator[EmbeddedServer]:
    """One embedded tritonserver serving `model_repository` for the session."""
    server = EmbeddedServer(model_repository, startup_timeout=180)
    server.start()
    yield server
    server.stop()  # idempotent


@pytest.fixture(scope="session")
def served_configs(embedded_server: EmbeddedServer) -> dict[str, Any]:
    """What the server serves, by model name: each preview's config."""
    return {p.name: p.config() for p in embedded_server.previews}
