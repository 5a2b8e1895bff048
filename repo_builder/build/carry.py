"""What a build keeps of the previous repository: a failed model's previous build, else only its log; the
artifact of a model whose config settings alone changed (its config rendered again)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from repo_builder.build.results import ModelResult
from repo_builder.errors import RepoBuilderError, SpecError
from repo_builder.repository.layout import failed_log_path, logs_path
from repo_builder.repository.manifest import ManifestEntry, ModelStatus, model_entry
from repo_builder.repository.write import carry_model, rewrite_layout
from repo_builder.spec.models import InputSpec, ModelSpec, OutputSpec, Spec


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


def resolved_from(model: ModelSpec, entry: ManifestEntry) -> ModelSpec | None:
    """The model as its previous build resolved it (the tensors and max_batch_size inspection found, as
    the manifest recorded them), with the spec's settings of now; None when the record does not fit the
    spec (the model is then converted again)."""
    if entry.max_batch_size is None or entry.inputs is None or entry.outputs is None:
        return None
    resolved: dict[str, list[Any]] = {}
    for kind, given, recorded, cls in (
        ("inputs", model.inputs, entry.inputs, InputSpec),
        ("outputs", model.outputs, entry.outputs, OutputSpec),
    ):
        if given is None:  # the model's own tensors: no labels, none optional
            resolved[kind] = [cls(name=r.name, dtype=r.dtype, dims=r.dims, reshape=r.reshape) for r in recorded]
            continue
        by_name = {r.name: r for r in recorded}
        if [g.name for g in given] != [r.name for r in recorded]:
            return None
        tensors = []
        for g in given:
            r = by_name[g.name]
            if g.dtype != cls(name=r.name, dtype=r.dtype, dims=r.dims).dtype or list(g.dims) != list(r.dims):
                return None
            if g.reshape is not None and g.reshape != r.reshape:
                return None
            keep = g.reshape is not None or r.reshape is None
            tensors.append(g if keep else g.model_copy(update={"reshape": r.reshape}))
        resolved[kind] = tensors
    return model.model_copy(update={"max_batch_size": entry.max_batch_size, **resolved})


def rerender(spec: Spec, repo: Path, stage: Path, model: ModelSpec, old: ManifestEntry) -> ModelResult | None:
    """A model whose conversion settings are those of its previous build, and only its config settings
    changed: the previous folder carried over (artifacts, reference vectors, log), config.pbtxt, label
    files and warmup data written again from the spec and the tensors the manifest recorded, checked as a
    build checks them. RERENDERED; FAILED (with a log) when Triton would refuse the new config; None when
    the manifest's record does not fit the spec (convert it again)."""
    from repo_builder.render.config import render_config
    from repo_builder.spec.models import tensors_of
    from repo_builder.spec.rules import check_resolved

    resolved = resolved_from(model, old)
    if resolved is None:
        return None
    carry_model(repo, stage, model.name)
    log = logs_path(stage, model.name)
    previous_log = log.read_bytes() if log.is_file() else b""
    log.unlink(missing_ok=True)  # a hard link to the previous log: never write through it
    try:
        problems = check_resolved(resolved)
        if problems:
            raise SpecError(
                f"model {model.name}: with the tensors of its source Triton would refuse its config:\n  - "
                + "\n  - ".join(problems)
            )
        text = render_config(resolved, tensors_of(resolved))
    except RepoBuilderError as e:
        log.write_text(f"{_now()} ERROR re-rendering config.pbtxt FAILED: {e.message}\n", encoding="utf-8")
        return ModelResult(model.name, model.target, ModelStatus.FAILED, error=e.message, log=log)
    rewrite_layout(stage, spec, resolved, text)
    line = f"{_now()} INFO only config settings changed: config.pbtxt rendered again, the artifact kept\n"
    log.write_bytes(previous_log + line.encode())
    entry = old.updated(**model_entry(resolved, old.status or ModelStatus.BUILT, tensors=True).dump())
    return ModelResult(model.name, model.target, ModelStatus.RERENDERED, entry, size=size_of(stage / model.name))


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")
