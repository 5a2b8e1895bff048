"""Writing model folders: config, version folders, label files, warmup data, the converters' artifacts;
hashing what was written. The only writer of a model folder's layout and artifacts (the build adds its
log and reference file, named in layout.py)."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from repo_builder.errors import RepoBuilderError, SpecError
from repo_builder.repository.disk import writing
from repo_builder.repository.layout import (
    LOG_NAME,
    MANIFEST_FORMAT,
    REFERENCE_NAME,
    WARMUP_DIR,
    config_path,
    data_file_names,
    logs_path,
    model_dir,
    version_dir,
)
from repo_builder.repository.lock import repo_lock
from repo_builder.repository.manifest import (
    BUILT_STATUSES,
    Manifest,
    ModelStatus,
    model_entry,
    read_manifest,
    settings_of,
    write_manifest,
)
from repo_builder.repository.staging import check_output, staged
from repo_builder.spec.models import ModelSpec, Spec


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


@dataclass(frozen=True)
class Written:
    model: str
    config: Path


def write_model_layout(stage: Path, spec: Spec, model: ModelSpec, config_text: str) -> Written:
    """config.pbtxt, numeric version folders, label files and warmup data of one model."""
    folder = model_dir(stage, model.name)
    folder.mkdir(parents=True, exist_ok=True)
    config_path(stage, model.name).write_text(config_text)
    for v in model.versions:
        version_dir(stage, model.name, v).mkdir(exist_ok=True)
    # the names the config refers to (render/config.py): never config.pbtxt, never one file for two paths
    labels = data_file_names([out.labels for out in model.outputs or [] if out.labels], reserved=True)
    for path, name in labels.items():
        shutil.copy2(spec.resolve(path), folder / name)
    warmup = data_file_names([wi.file for w in model.warmup for wi in w.inputs.values() if wi.file])
    for path, name in warmup.items():
        (folder / WARMUP_DIR).mkdir(exist_ok=True)
        shutil.copy2(spec.resolve(path), folder / WARMUP_DIR / name)
    return Written(model.name, config_path(stage, model.name))


def rewrite_layout(stage: Path, spec: Spec, model: ModelSpec, config_text: str) -> Written:
    """A model folder carried into the staging repository (its files hard links into the previous one),
    given a new config: everything but its version folders, reference vectors and log is removed (the
    links, never the files they point to) and written again by write_model_layout (config.pbtxt, label
    files, warmup data)."""
    folder = model_dir(stage, model.name)
    keep = {str(v) for v in model.versions} | {REFERENCE_NAME, LOG_NAME}
    for item in folder.iterdir():
        if item.name not in keep:
            shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()
    return write_model_layout(stage, spec, model, config_text)


def place_artifacts(
    stage: Path, model: ModelSpec, files: dict[str, Path], version_files: dict[int, dict[str, Path]] | None = None
) -> None:
    """Put a conversion's artifacts into the model's version folders: `files` (name in the version folder ->
    path produced) into every version, `version_files` into the one version each names. The last use of
    a produced path moves it; the others copy."""
    placements = [(v, name, path) for v in model.versions for name, path in files.items()]
    placements += [(v, name, path) for v, named in (version_files or {}).items() for name, path in named.items()]
    last = {path: i for i, (_, _, path) in enumerate(placements)}
    for i, (v, name, path) in enumerate(placements):
        folder = version_dir(stage, model.name, v)
        folder.mkdir(parents=True, exist_ok=True)
        _place(path, folder / name, move=last[path] == i)


def _place(src: Path, dest: Path, move: bool) -> None:
    if dest.exists():
        shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
    if move:
        shutil.move(str(src), str(dest))
    elif src.is_dir():
        shutil.copytree(src, dest)
    else:
        shutil.copy2(src, dest)


def clear_except(folder: Path, keep: Path) -> None:
    """Remove everything in `folder` but the file `keep` (and the folder itself when nothing is kept)."""
    if not folder.is_dir():
        return
    for item in folder.iterdir():
        if item != keep:
            shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink(missing_ok=True)
    if not any(folder.iterdir()):
        folder.rmdir()


def render_repository(
    spec: Spec, output: str | Path | None = None, force: bool = False, notes: list[str] | None = None
) -> list[Written]:
    """Write the layout and configs of a spec whose tensors are all given (no conversion). `notes` gets a
    line for each entry repo-builder did not write that `force` kept or moved aside."""
    from repo_builder.render.config import render_config
    from repo_builder.spec.models import spec_tensors

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
    given = spec.repository_path(output)
    repo = Path(os.path.normpath(given.absolute()))
    with repo_lock(repo), writing(repo, replaced=repo):
        written = _render(spec, repo, texts, force, notes)
    return [Written(w.model, config_path(given, w.model)) for w in written]


def _render(spec: Spec, repo: Path, texts: dict[str, str], force: bool, notes: list[str] | None) -> list[Written]:
    from repo_builder import __version__

    check_output(repo, force, spec.path, notes)
    previous = read_manifest(repo)
    built = sorted(
        name
        for name, entry in ((previous.models if previous else None) or {}).items()
        if entry.status in BUILT_STATUSES
    )
    if built and not force:
        raise RepoBuilderError(
            f"{repo} holds models built by `repo-builder build` ({', '.join(built)}); render writes configs "
            "only and would replace them. Choose another output with -o, or pass --force to replace them."
        )
    written = []
    with staged(repo, force, notes) as stage:
        for model in spec.models:
            written.append(write_model_layout(stage, spec, model, texts[model.name]))
        manifest = Manifest(
            format=MANIFEST_FORMAT,
            generator={"repo_builder": __version__},
            triton=spec.triton.model_dump(mode="json"),
            models={m.name: model_entry(m, ModelStatus.RENDERED, settings=settings_of(m)) for m in spec.models},
        )
        write_manifest(stage, manifest)
    return written


def link_tree(src: Path, dest: Path) -> None:
    """Hard-link a file or folder into the staging repository (copy where links are not possible)."""
    dest.parent.mkdir(parents=True, exist_ok=True)

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    if src.is_dir():
        shutil.copytree(src, dest, copy_function=link, dirs_exist_ok=True)
    elif src.exists():
        link(str(src), str(dest))


def carry_model(old: Path, stage: Path, name: str) -> None:
    """The previous build of a model: its whole folder, which holds everything repo-builder wrote for it
    (config, versions with the TensorRT recipe files, reference.npz, build.log).

    A model that failed now keeps its previous build but the log of this failure, which explains it.
    """
    log = logs_path(stage, name)
    failure_log = log.read_bytes() if log.is_file() else None
    shutil.rmtree(stage / name, ignore_errors=True)  # what a failed conversion left: its log
    link_tree(old / name, stage / name)
    if failure_log is not None:
        log.unlink(missing_ok=True)  # a hard link to the previous log: never write through it
        log.write_bytes(failure_log)
