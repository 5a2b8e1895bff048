"""What a build keeps of the previous repository: a failed model's previous build, else only its log."""

from __future__ import annotations

import shutil
from pathlib import Path

from repo_builder.build.results import ModelResult
from repo_builder.repository.layout import failed_log_path, logs_path
from repo_builder.repository.manifest import ManifestEntry, ModelStatus
from repo_builder.repository.write import carry_model
from repo_builder.spec.models import ModelSpec


def settle_failure(repo: Path, stage: Path, m: ModelSpec, r: ModelResult, old_models: dict[str, ManifestEntry]) -> None:
    """A model that failed keeps its previous build when there is one (KEPT), else leaves only its log."""
    if r.status != ModelStatus.FAILED:
        return
    if m.name in old_models and (repo / m.name).is_dir():
        carry_model(repo, stage, m.name)
        r.status = ModelStatus.KEPT
        r.entry = old_models[m.name]
    else:
        park_failure(stage, m.name, r)


def park_failure(stage: Path, name: str, result: ModelResult) -> None:
    """A model that failed with no previous build leaves no folder (Triton would refuse to start on a
    model folder without config.pbtxt); its log moves to a top-level file."""
    folder = stage / name
    log = logs_path(stage, name)
    parked = failed_log_path(stage, name)
    if log.is_file():
        shutil.move(str(log), parked)
        result.log = parked
    shutil.rmtree(folder, ignore_errors=True)


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0
