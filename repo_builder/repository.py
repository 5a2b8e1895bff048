"""The model repository on disk: layout, manifest, reference vectors and atomic writes.

A repository is built aside in a staging folder next to the target and swapped in at the end, so an
interrupted or failed build never leaves a half-written repository and never destroys the previous one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repo_builder.errors import RepoBuilderError, SpecError
from repo_builder.platforms import PLATFORMS
from repo_builder.spec import ModelSpec, Spec

MANIFEST_NAME = "repo_builder_manifest.json"
MANIFEST_FORMAT = 1

# Everything repo-builder writes lives where the real tritonserver (2.51, measured) ignores it: the
# manifest is a top-level FILE, the reference vectors and the log are files in the model folder next to
# config.pbtxt, and the TensorRT recipe files sit in the version folder next to model.plan (backends load
# only their default model file). Never a top-level folder: Triton tries to load every one, hidden ones
# included, and exits; never a sub-folder of a model folder: Triton warns about each non-numeric one.


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


def read_manifest(repo: Path) -> dict[str, Any] | None:
    path = manifest_path(repo)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("format") == MANIFEST_FORMAT else None


def write_manifest(repo: Path, manifest: dict[str, Any]) -> None:
    path = manifest_path(repo)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_manifest(manifest))


def dump_manifest(manifest: dict[str, Any]) -> str:
    """Sorted JSON, one line per model entry: readable and diffable, and written by json's C encoder
    (an indented dump goes through the pure-Python encoder: ~0.3 s for 1,000 models)."""

    def compact(value: Any) -> str:
        return json.dumps(value, sort_keys=True, separators=(", ", ": "))

    lines = []
    for key in sorted(manifest):
        value = manifest[key]
        if isinstance(value, dict) and key in ("models", "failed") and value:
            entries = ",\n".join(f"    {compact(name)}: {compact(value[name])}" for name in sorted(value))
            lines.append(f"  {compact(key)}: {{\n{entries}\n  }}")
        else:
            lines.append(f"  {compact(key)}: {compact(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_tree(path: Path) -> str:
    """Hash of a file, or of every file under a folder (names and contents, in sorted order)."""
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(item.relative_to(path)).encode())
        h.update(sha256_file(item).encode())
    return h.hexdigest()


# --------------------------------------------------------------------------------------------- atomic


#: where releases before the layout change kept the manifest: such a repository is still ours to replace
LEGACY_MANIFEST = (".repo_builder", "manifest.json")


def _is_ours(repo: Path) -> bool:
    return manifest_path(repo).is_file() or repo.joinpath(*LEGACY_MANIFEST).is_file()


def check_output(repo: Path, force: bool = False) -> None:
    """Refuse to replace a non-empty folder that repo-builder did not write (unless forced)."""
    recover(repo)
    if repo.exists() and not repo.is_dir():
        raise RepoBuilderError(f"{repo} exists and is not a folder; choose another output with -o")
    foreign = any(p.name != "README.md" for p in repo.iterdir()) if repo.is_dir() else False
    if foreign and not _is_ours(repo) and not force:
        raise RepoBuilderError(
            f"{repo} is not empty and was not written by repo-builder (no {MANIFEST_NAME}); "
            "it would be replaced. Choose another output with -o, or pass --force to replace it."
        )


def recover(repo: Path) -> None:
    """Finish or undo a swap that was interrupted between its two renames."""
    old = repo.parent / f".{repo.name}.old"
    if old.exists() and not repo.exists():
        old.rename(repo)
    elif old.exists():
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged(repo: Path) -> Iterator[Path]:
    """Yield an empty staging folder beside `repo`; on success swap it in, on any failure drop it.

    The previous repository stays in place until the new one is complete. The swap is two renames in
    the same folder; `recover()` completes it if the process dies between them.
    """
    repo = repo.absolute()
    repo.parent.mkdir(parents=True, exist_ok=True)
    recover(repo)
    stage = repo.parent / f".{repo.name}.staging-{os.getpid()}"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir()
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    # keep files the user placed in the output folder that are not ours (e.g. a README)
    if repo.is_dir():
        for keep in ("README.md",):
            if (repo / keep).is_file() and not (stage / keep).exists():
                shutil.copy2(repo / keep, stage / keep)
    shutil.rmtree(work_dir(stage), ignore_errors=True)  # never in a finished repository
    old = repo.parent / f".{repo.name}.old"
    if repo.exists():
        repo.rename(old)
    stage.rename(repo)
    shutil.rmtree(old, ignore_errors=True)
    for leftover in repo.parent.glob(f".{repo.name}.staging-*"):
        # stages of builds that were killed: their pid is gone
        pid = leftover.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class Written:
    model: str
    config: Path


def write_model_layout(stage: Path, spec: Spec, model: ModelSpec, config_text: str) -> Written:
    """config.pbtxt, numeric version folders, label files and warmup data of one model."""
    folder = model_dir(stage, model.name)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.pbtxt").write_text(config_text)
    for v in model.versions:
        version_dir(stage, model.name, v).mkdir(exist_ok=True)
    for out in model.outputs or []:
        if out.labels:
            shutil.copy2(spec.resolve(out.labels), folder / Path(out.labels).name)
    for w in model.warmup:
        for wi in w.inputs.values():
            if wi.file:
                (folder / "warmup").mkdir(exist_ok=True)
                shutil.copy2(spec.resolve(wi.file), folder / "warmup" / Path(wi.file).name)
    return Written(model.name, folder / "config.pbtxt")


def settings_of(model: ModelSpec) -> dict[str, Any]:
    """The spec's settings of a model, as recorded in the manifest."""
    return model.model_dump(mode="json", exclude_none=True)


def render_repository(spec: Spec, output: str | Path | None = None, force: bool = False) -> list[Written]:
    """Write the layout and configs of a spec whose tensors are all given (no conversion)."""
    from repo_builder import __version__
    from repo_builder.render import render_config, spec_tensors

    texts: dict[str, str] = {}
    missing = []
    for i, model in enumerate(spec.models):
        tensors = spec_tensors(model)
        if tensors is None:
            missing.append(f"models[{i}] ({model.name}): inputs and outputs are not both given")
            continue
        texts[model.name] = render_config(model, tensors)
    if missing:
        where = spec.path or "the spec"
        raise SpecError(
            f"{where}: render writes configs from the tensors the spec gives, and these models lack them:\n  "
            + "\n  ".join(missing)
            + "\nList their inputs and outputs, or use `repo-builder build`, "
            "which reads them from the models."
        )
    repo = spec.repository_path(output)
    check_output(repo, force)
    built = sorted(
        name
        for name, entry in ((read_manifest(repo) or {}).get("models") or {}).items()
        if isinstance(entry, dict) and entry.get("status") in ("built", "recipe")
    )
    if built and not force:
        raise RepoBuilderError(
            f"{repo} holds models built by `repo-builder build` ({', '.join(built)}); render writes configs "
            "only and would replace them. Choose another output with -o, or pass --force to replace them."
        )
    written = []
    with staged(repo) as stage:
        for model in spec.models:
            written.append(write_model_layout(stage, spec, model, texts[model.name]))
        write_manifest(
            stage,
            {
                "format": MANIFEST_FORMAT,
                "generator": {"repo_builder": __version__},
                "triton": spec.triton.model_dump(mode="json"),
                "models": {
                    m.name: {
                        "target": m.target,
                        "platform": PLATFORMS[m.target].platform,
                        "backend": PLATFORMS[m.target].backend,
                        "versions": list(m.versions),
                        "max_batch_size": m.max_batch_size,
                        "dynamic_batching": m.dynamic_batching_on,
                        "settings": settings_of(m),
                        "validation": m.validation.model_dump(mode="json"),
                        "status": "rendered",
                    }
                    for m in spec.models
                },
            },
        )
    return [Written(w.model, repo / w.model / "config.pbtxt") for w in written]
