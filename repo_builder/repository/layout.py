"""Where each file of a model repository lives: the one place that names them.

Everything repo-builder writes lives where the real tritonserver (2.51, measured) ignores it; see
docs/ARCHITECTURE.md for the layout and why.
"""

from __future__ import annotations

from pathlib import Path

MANIFEST_NAME = "repo_builder_manifest.json"
MANIFEST_FORMAT = 1
#: a model folder's Triton config
CONFIG_NAME = "config.pbtxt"
#: the trtexec recipe that builds a TensorRT plan at deployment, in each version folder
RECIPE_NAME = "build_plan.sh"
#: target tftrt converted at deployment: the Python recipe, the SavedModel it converts and its INT8
#: calibration data, in each version folder (TF-TRT writes model.savedmodel beside them)
TFTRT_RECIPE_NAME = "build_tftrt.py"
TFTRT_SOURCE_NAME = "tftrt_source.savedmodel"
CALIBRATION_DATA_NAME = "calibration.npz"
#: what the deployment's builder writes next to a model file it built: the hash of the recipe and of
#: what the recipe reads (`model.plan.stamp`), so an unchanged one is not built again
STAMP_SUFFIX = ".stamp"
#: the ONNX model: the onnx target's artifact, and what a TensorRT plan is built from
ONNX_NAME = "model.onnx"
#: TensorRT's caches, next to the ONNX a plan is built from
TIMING_CACHE_NAME = "timing.cache"
CALIBRATION_CACHE_NAME = "calibration.cache"
#: a model folder's reference inputs and outputs, and its build log
REFERENCE_NAME = "reference.npz"
LOG_NAME = "build.log"


def manifest_path(repo: Path) -> Path:
    return repo / MANIFEST_NAME


def config_path(repo: Path, model: str) -> Path:
    return repo / model / CONFIG_NAME


def references_path(repo: Path, model: str) -> Path:
    return repo / model / REFERENCE_NAME


def logs_path(repo: Path, model: str) -> Path:
    return repo / model / LOG_NAME


def failed_log_path(repo: Path, model: str) -> Path:
    """Log of a model that failed with no previous build to keep: a top-level file, which Triton
    ignores (a model folder holding only a log would make Triton refuse to start)."""
    return repo / f"{model}.{LOG_NAME}"


def work_dir(stage: Path) -> Path:
    """Build scratch, inside the staging folder only; removed before the swap."""
    return stage / ".work"


def model_dir(repo: Path, model: str) -> Path:
    return repo / model


def version_dir(repo: Path, model: str, version: int) -> Path:
    """A numeric version folder: the artifact, and for a TensorRT plan the ONNX it is built from, the
    recipe and the caches beside model.plan."""
    return repo / model / str(version)
