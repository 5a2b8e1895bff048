"""Where each file of a model repository lives: the one place that names them.

Everything repo-builder writes lives where the real tritonserver (2.51, measured) ignores it; see
docs/ARCHITECTURE.md for the layout and why.
"""

from __future__ import annotations

from pathlib import Path

from repo_builder.spec.models import ModelSpec
from repo_builder.triton.platforms import PLATFORMS

MANIFEST_NAME = "repo_builder_manifest.json"
MANIFEST_FORMAT = 1


def manifest_path(repo: Path) -> Path:
    return repo / MANIFEST_NAME


def references_path(repo: Path, model: str) -> Path:
    return repo / model / "reference.npz"


def logs_path(repo: Path, model: str) -> Path:
    return repo / model / "build.log"


def failed_log_path(repo: Path, model: str) -> Path:
    """Log of a model that failed with no previous build to keep: a top-level file, which Triton
    ignores (a model folder holding only a log would make Triton refuse to start)."""
    return repo / f"{model}.build.log"


def tensorrt_dir(repo: Path, model: str, version: int) -> Path:
    """The version folder: the ONNX a plan is built from, build_plan.sh and the caches sit by model.plan."""
    return repo / model / str(version)


def work_dir(stage: Path) -> Path:
    """Build scratch, inside the staging folder only; removed before the swap."""
    return stage / ".work"


def model_dir(repo: Path, model: str) -> Path:
    return repo / model


def version_dir(repo: Path, model: str, version: int) -> Path:
    return repo / model / str(version)


def artifact_path(repo: Path, model: ModelSpec, version: int) -> Path | None:
    filename = PLATFORMS[model.target].model_file
    return version_dir(repo, model.name, version) / filename if filename else None
