"""Where each file of a model repository lives: the one place that names them.

Everything repo-builder writes lives where the real tritonserver (2.51, measured) ignores it; see
docs/ARCHITECTURE.md for the layout and why.
"""

from __future__ import annotations

from pathlib import Path

from repo_builder.triton.platforms import artifact_name

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
ONNX_NAME = artifact_name("onnx")
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


#: the folder of a model's warmup data files (Triton reads `input_data_file` from there)
WARMUP_DIR = "warmup"


def _reserved_in_model_dir(name: str) -> bool:
    """Names a model folder holds besides label files: the config, reference, log, warmup folder and
    numeric version folders (compared without case: a case-insensitive disk would make them one)."""
    folded = name.casefold()
    return folded in {n.casefold() for n in (CONFIG_NAME, REFERENCE_NAME, LOG_NAME, WARMUP_DIR)} or name.isdigit()


def data_file_names(paths: list[str], reserved: bool = False) -> dict[str, str]:
    """The file name in the model folder (or its warmup folder) of each data file the spec names.

    A file keeps its own name when no other file of the model has that name and it is not one of the
    folder's own (config.pbtxt, a version number... when `reserved`); otherwise it is named after its
    path (`a/labels.txt` -> `a_labels.txt`), and numbered if that is taken too. The names depend only
    on the set of paths, so the config and the writer agree, and two files never share a name.
    """
    distinct = sorted(set(paths))

    def base(path: str) -> str:
        return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]

    def clashes(name: str) -> bool:
        return reserved and _reserved_in_model_dir(name)

    counts: dict[str, int] = {}
    for p in distinct:
        counts[base(p).casefold()] = counts.get(base(p).casefold(), 0) + 1
    names: dict[str, str] = {}
    taken: set[str] = set()
    for p in distinct:  # first the unique names, so a flattened path never takes one of them
        if counts[base(p).casefold()] == 1 and not clashes(base(p)):
            names[p] = base(p)
            taken.add(base(p).casefold())
    for p in distinct:
        if p in names:
            continue
        parts = [s for s in p.replace("\\", "/").split("/") if s not in ("", ".", "..")]
        candidate = "_".join(parts) or "data"
        stem, dot, suffix = candidate.rpartition(".")
        stem, suffix = (stem, f".{suffix}") if dot and stem else (candidate, "")
        n = 1
        while candidate.casefold() in taken or clashes(candidate):
            n += 1
            candidate = f"{stem}.{n}{suffix}"
        names[p] = candidate
        taken.add(candidate.casefold())
    return names
