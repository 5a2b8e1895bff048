"""Writing model folders: config, version folders, label files, warmup data; hashing what was written."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from repo_builder.errors import RepoBuilderError, SpecError
from repo_builder.repository.layout import MANIFEST_FORMAT, model_dir, version_dir
from repo_builder.repository.manifest import read_manifest, settings_of, write_manifest
from repo_builder.repository.staging import check_output, staged
from repo_builder.spec.models import ModelSpec, Spec
from repo_builder.triton.platforms import PLATFORMS


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


def render_repository(spec: Spec, output: str | Path | None = None, force: bool = False) -> list[Written]:
    """Write the layout and configs of a spec whose tensors are all given (no conversion)."""
    from repo_builder import __version__
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
