"""`build()`: plans and runs a build: incremental, in worker processes (-j), atomic, with live progress.

The modules of build/ and what each holds: hashing.py (what a conversion depends on), pipeline.py (one
model's named steps, run in a worker), pool.py (the worker processes), ensembles.py (the ensemble wave),
carry.py (what is kept of the previous repository), results.py (what a build reports).
"""

from __future__ import annotations

import os
import platform as _platform
import shutil
from pathlib import Path

from repo_builder import __version__
from repo_builder.build.carry import rerender, settle_failure, size_of
from repo_builder.build.ensembles import ensembles
from repo_builder.build.hashing import library_versions, model_hashes, source_sha256
from repo_builder.build.pipeline import convert_model
from repo_builder.build.pool import DEFAULT_MODEL_TIMEOUT, Progress, Workers
from repo_builder.build.results import BuildResult, ModelResult
from repo_builder.errors import RepoBuilderError, SpecError
from repo_builder.repository.disk import writing
from repo_builder.repository.layout import MANIFEST_FORMAT, failed_log_path, logs_path, work_dir
from repo_builder.repository.lock import repo_lock
from repo_builder.repository.manifest import (
    BUILT_STATUSES,
    FailedRecord,
    Manifest,
    ManifestEntry,
    ModelStatus,
    read_manifest,
    settings_of,
    write_manifest,
)
from repo_builder.repository.staging import check_output, staged
from repo_builder.repository.write import carry_model
from repo_builder.spec.models import ModelSpec, Spec

__all__ = ["BuildResult", "ModelResult", "Progress", "build"]

#: what a worker imports once, before the first model it forks a child for (each model's child starts there)
WARM = ("tensorflow", "keras", "onnx", "tf2onnx", "tf2onnx.tf_loader", "tf2onnx.convert")


def build(
    spec: Spec,
    output: str | Path | None = None,
    jobs: int = 1,
    force: bool = False,
    only: list[str] | None = None,
    progress: Progress | None = None,
    model_timeout: float | None = DEFAULT_MODEL_TIMEOUT,
) -> BuildResult:
    """Build the repository of `spec` (into `output`, else the spec's `repository`) and return what became
    of each model.

    1. Hash each model's inputs (source files, the spec's settings, repo-builder and library versions)
       without importing TensorFlow; a model whose hash matches the previous manifest is carried over
       unchanged (CARRIED). A model whose conversion hash matches (only config settings changed, see
       hashing.CONFIG_FIELDS) keeps its previous artifact and reference and has its config.pbtxt rendered
       again (RERENDERED), still without TensorFlow.
    2. Convert the others in `jobs` worker processes, each model in a fresh fork of one, so it builds as
       if alone (pipeline.convert_model), into a staging folder. Models of one source that go through
       ONNX share one tf2onnx conversion (build/shared.py).
    3. Write the ensembles (ensembles.py), the manifest, and swap the staging folder in (repository.staged).

    A failing model is reported with its log and the others still build (BuildResult.ok is False). A
    failed model that the previous repository had keeps its previous build (KEPT), so the repository stays
    whole. `force` converts every model again (and writes into a folder holding what repo-builder did not write,
    keeping it); `only`
    converts just those models and carries the others over. `progress(model, step)` is called with each
    step of each model, in this process. `model_timeout`: seconds one model's pipeline may run before its
    process is stopped and the model fails (None or 0: no limit).

    Raises SpecError for an `--only` name the spec lacks, RepoBuilderError for an output that is not ours
    to replace (entries repo-builder did not write, without `force`; with it they are kept, see
    repository.staging), OutputError for a disk that cannot be written (full, read-only) or a repository
    another repo-builder is writing; an interrupt drops the staging folder and leaves the previous
    repository in place.
    """
    repo = Path(os.path.normpath(Path(spec.repository_path(output)).absolute()))
    with repo_lock(repo), writing(repo, replaced=repo):  # the whole build: two writers would interleave
        return _build(spec, repo, jobs, force, only, progress, model_timeout)


def _build(
    spec: Spec,
    repo: Path,
    jobs: int,
    force: bool,
    only: list[str] | None,
    progress: Progress | None,
    model_timeout: float | None,
) -> BuildResult:
    notes: list[str] = []
    check_output(repo, force, spec.path, notes)
    if only:
        unknown = sorted(set(only) - {m.name for m in spec.models})
        if unknown:
            raise SpecError(
                f"--only {', '.join(unknown)}: not in the spec; models: " + ", ".join(m.name for m in spec.models)
            )
    previous = read_manifest(repo) or Manifest()
    old_models: dict[str, ManifestEntry] = previous.models or {}
    spec_path = str(spec.path) if spec.path else ""
    dropped = sorted(set(old_models) - {m.name for m in spec.models})
    if dropped and previous.spec and previous.spec != spec_path and not force:
        raise RepoBuilderError(
            f"{repo} was built from another spec ({previous.spec}); its models {', '.join(dropped)} are not "
            f"in {spec_path} and would be removed. Choose another output with -o, or pass --force."
        )
    libraries = library_versions()
    both = {m.name: model_hashes(spec, m, libraries) for m in spec.models}
    hashes = {name: h[0] for name, h in both.items()}
    conversions = {name: h[1] for name, h in both.items() if h[1] is not None}
    notify: Progress = progress or (lambda _n, _s: None)

    def reusable(m: ModelSpec) -> bool:
        old = old_models.get(m.name)
        if not old or old.status not in BUILT_STATUSES or not (repo / m.name).is_dir():
            return False
        if only:
            return m.name not in only
        return not force and old.inputs_hash == hashes[m.name]

    def config_only(m: ModelSpec) -> bool:
        """Only its config settings changed since the previous build (`--only` converts what it names)."""
        old = old_models.get(m.name)
        if force or only or not old or old.status not in BUILT_STATUSES or not (repo / m.name).is_dir():
            return False
        return old.conversion_hash is not None and old.conversion_hash == conversions.get(m.name)

    results: dict[str, ModelResult] = {}
    with staged(repo, force, notes) as stage:
        to_convert = []
        for m in spec.models:
            if m.target == "ensemble":
                continue
            if reusable(m):
                carry_model(repo, stage, m.name)
                entry = old_models[m.name]
                results[m.name] = ModelResult(
                    m.name, m.target, ModelStatus.CARRIED, entry, size=size_of(stage / m.name)
                )
                notify(m.name, "unchanged")
            elif only and m.name not in only:
                continue
            elif config_only(m) and (r := rerender(spec, repo, stage, m, old_models[m.name])) is not None:
                results[m.name] = r
                notify(m.name, str(r.status))
            else:
                to_convert.append(m)
                notify(m.name, "queued")
        size = len(to_convert) + sum(m.target == "ensemble" for m in spec.models)
        workers = Workers(spec, stage, min(jobs, size), notify, timeout=model_timeout)
        try:
            if to_convert:
                workers.run(convert_model, to_convert, results, warm=WARM)
            for m in spec.models:
                r = results.get(m.name)
                if r is not None and m.target != "ensemble":
                    settle_failure(repo, stage, m, r, old_models)
            ensembles(spec, repo, stage, workers, force, results, hashes, conversions, old_models, notify)
        except BaseException:
            workers.close(abort=True)
            raise
        workers.close()
        shutil.rmtree(work_dir(stage), ignore_errors=True)
        write_manifest(stage, _manifest(spec, results, hashes, conversions, libraries))
    for r in results.values():
        if r.log is not None:
            r.log = repo / r.log.relative_to(stage)
        if r.size == 0 and (repo / r.name).exists():
            r.size = size_of(repo / r.name)
    ordered = [results[m.name] for m in spec.models if m.name in results]
    return BuildResult(repo, ordered, notes)


def _manifest(
    spec: Spec,
    results: dict[str, ModelResult],
    hashes: dict[str, str],
    conversions: dict[str, str],
    libraries: dict[str, str],
) -> Manifest:
    """The repository's manifest: each model's entry, with what its build depended on (a KEPT model's
    entry is its previous one), and the models that failed."""
    failed: dict[str, FailedRecord] = {}
    models: dict[str, ManifestEntry] = {}
    for m in spec.models:
        r = results.get(m.name)
        if r is None:
            continue
        if r.status == ModelStatus.FAILED:
            failed[m.name] = FailedRecord(error=r.error, log=failed_log_path(Path(), m.name).as_posix())
            continue
        entry = r.entry
        if r.status != ModelStatus.KEPT:
            recorded: dict[str, object] = {"inputs_hash": hashes[m.name], "settings": settings_of(m)}
            if m.name in conversions:
                recorded["conversion_hash"] = conversions[m.name]
            if m.source is not None:
                recorded["source"] = {"kind": m.source.kind, "ref": m.source.ref, "sha256": source_sha256(spec, m)}
                recorded["tools"] = {"repo_builder": __version__, **libraries}
            entry = entry.updated(**recorded)
        else:
            failed[m.name] = FailedRecord(
                error=r.error, log=logs_path(Path(), m.name).as_posix(), kept="the previous build of this model"
            )
        models[m.name] = entry
    return Manifest(
        format=MANIFEST_FORMAT,
        generator={"repo_builder": __version__, "python": _platform.python_version(), "libraries": libraries},
        triton=spec.triton.model_dump(mode="json"),
        spec=str(spec.path) if spec.path else "",
        models=models,
        failed=failed,
    )
