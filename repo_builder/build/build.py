"""Plans and runs a build: incremental, in child processes (-j), atomic, with live progress.

1. Hash each model's inputs (source files, the spec's settings, repo-builder and library versions) without
   importing TensorFlow; a model whose hash matches the previous manifest is carried over unchanged.
2. Convert the others in `spawn`ed worker processes (worker.convert_model), into a staging folder.
3. Render ensembles, write the manifest, swap the staging folder in (repository.staged).
A failing model is reported with its log; the others still build; the exit code is 1. A failed model
that the previous repository had is kept at its previous build, so the repository stays whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform as _platform
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from repo_builder import __version__
from repo_builder.errors import RepoBuilderError, SpecError
from repo_builder.repository.layout import MANIFEST_FORMAT, failed_log_path, logs_path, work_dir
from repo_builder.repository.manifest import read_manifest, settings_of, write_manifest
from repo_builder.repository.staging import check_output, staged
from repo_builder.repository.write import sha256_tree, write_model_layout
from repo_builder.spec.models import ModelSpec, Spec
from repo_builder.triton.platforms import PLATFORMS

#: libraries whose version changes what a conversion produces (read from metadata, never imported)
LIBRARIES = ("tensorflow", "keras", "tf-keras", "tf2onnx", "onnx", "onnxruntime", "tensorrt", "numpy")

Progress = Callable[[str, str], None]


def library_versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def source_sha256(spec: Spec, model: ModelSpec) -> str | None:
    from repo_builder.inspect.sources import source_path

    if model.source is None:
        return None
    path = source_path(model.source, spec.base_dir)
    return sha256_tree(path) if path is not None and path.exists() else None


def inputs_hash(spec: Spec, model: ModelSpec, libraries: dict[str, str]) -> str:
    """Everything a model's conversion depends on; equal hashes mean the previous result is still valid."""
    from repo_builder.render.config import templates_dir

    files: dict[str, str | None] = {"source": source_sha256(spec, model)}
    for out in model.outputs or []:
        if out.labels:
            files[f"labels:{out.labels}"] = sha256_tree(spec.resolve(out.labels))
    for w in model.warmup:
        for wi in w.inputs.values():
            if wi.file:
                files[f"warmup:{wi.file}"] = sha256_tree(spec.resolve(wi.file))
    if model.calibration is not None:
        files["calibration"] = sha256_tree(spec.resolve(model.calibration.data))
    templates = templates_dir()
    template_files = [PLATFORMS[model.target].template, "_macros.pbtxt.j2"]
    if model.target == "python":
        template_files.append("python_model.py.j2")
    for name in template_files:
        files[f"template:{name}"] = sha256_tree(templates / name)
    payload = {
        "repo_builder": __version__,
        "settings": settings_of(model),
        "files": files,
        "libraries": libraries if model.target != "ensemble" else {},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass
class ModelResult:
    name: str
    target: str
    status: str  # built, recipe, carried, failed, kept (failed now, previous build kept)
    entry: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    log: Path | None = None
    seconds: float = 0.0
    size: int = 0


@dataclass
class BuildResult:
    repository: Path
    models: list[ModelResult]

    @property
    def ok(self) -> bool:
        return all(m.status not in ("failed", "kept") for m in self.models)

    @property
    def converted(self) -> list[str]:
        # an ensemble counts when its reference was computed (its config alone is no conversion)
        return [
            m.name
            for m in self.models
            if m.status in ("built", "recipe") and (m.target != "ensemble" or m.entry.get("reference"))
        ]


def _link_tree(src: Path, dest: Path) -> None:
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


def _carry(old: Path, stage: Path, model: ModelSpec) -> None:
    """The previous build of a model: its whole folder, which holds everything repo-builder wrote for it
    (config, versions with the TensorRT recipe files, reference.npz, build.log).

    A model that failed now keeps its previous build but the log of this failure, which explains it.
    """
    log = logs_path(stage, model.name)
    failure_log = log.read_bytes() if log.is_file() else None
    shutil.rmtree(stage / model.name, ignore_errors=True)  # what a failed conversion left: its log
    _link_tree(old / model.name, stage / model.name)
    if failure_log is not None:
        log.unlink(missing_ok=True)  # a hard link to the previous log: never write through it
        log.write_bytes(failure_log)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def build(
    spec: Spec,
    output: str | Path | None = None,
    jobs: int = 1,
    force: bool = False,
    only: list[str] | None = None,
    progress: Progress | None = None,
) -> BuildResult:
    """Build the repository of `spec`. `force` converts every model again (and replaces a foreign folder);
    `only` converts just those models and carries the others from the previous repository."""
    repo = Path(os.path.normpath(Path(spec.repository_path(output)).absolute()))
    check_output(repo, force)
    if only:
        unknown = sorted(set(only) - {m.name for m in spec.models})
        if unknown:
            raise SpecError(
                f"--only {', '.join(unknown)}: not in the spec; models: " + ", ".join(m.name for m in spec.models)
            )
    previous = read_manifest(repo) or {}
    old_models: dict[str, Any] = previous.get("models", {}) if isinstance(previous.get("models"), dict) else {}
    spec_path = str(spec.path) if spec.path else ""
    dropped = sorted(set(old_models) - {m.name for m in spec.models})
    if dropped and previous.get("spec") and previous["spec"] != spec_path and not force:
        raise RepoBuilderError(
            f"{repo} was built from another spec ({previous['spec']}); its models {', '.join(dropped)} are not "
            f"in {spec_path} and would be removed. Choose another output with -o, or pass --force."
        )
    libraries = library_versions()
    hashes = {m.name: inputs_hash(spec, m, libraries) for m in spec.models}
    notify: Progress = progress or (lambda _n, _s: None)

    def reusable(m: ModelSpec) -> bool:
        old = old_models.get(m.name)
        if not old or old.get("status") not in ("built", "recipe") or not (repo / m.name).is_dir():
            return False
        if only:
            return m.name not in only
        return not force and old.get("inputs_hash") == hashes[m.name]

    results: dict[str, ModelResult] = {}
    with staged(repo) as stage:
        to_convert = []
        for m in spec.models:
            if m.target == "ensemble":
                continue
            if reusable(m):
                _carry(repo, stage, m)
                entry = dict(old_models[m.name])
                results[m.name] = ModelResult(m.name, m.target, "carried", entry, size=_size(stage / m.name))
                notify(m.name, "unchanged")
            elif only and m.name not in only:
                continue
            else:
                to_convert.append(m)
                notify(m.name, "queued")
        size = len(to_convert) + sum(m.target == "ensemble" for m in spec.models)
        workers = _Workers(spec_path, stage, min(jobs, size), notify)
        try:
            if to_convert:
                workers.run("convert_model", to_convert, results)
            for m in spec.models:
                r = results.get(m.name)
                if r is not None and m.target != "ensemble":
                    _settle_failure(repo, stage, m, r, old_models)
            _ensembles(spec, repo, stage, workers, force, results, hashes, old_models, notify)
        except BaseException:
            workers.close(abort=True)
            raise
        workers.close()
        failed: dict[str, Any] = {}
        models: dict[str, Any] = {}
        manifest: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "generator": {
                "repo_builder": __version__,
                "python": _platform.python_version(),
                "libraries": libraries,
            },
            "triton": spec.triton.model_dump(mode="json"),
            "spec": spec_path,
            "models": models,
            "failed": failed,
        }
        for m in spec.models:
            r = results.get(m.name)
            if r is None:
                continue
            if r.status == "failed":
                failed[m.name] = {"error": r.error, "log": failed_log_path(Path(), m.name).as_posix()}
                continue
            entry = dict(r.entry)
            entry.pop("name", None)
            entry.pop("seconds", None)
            if r.status != "kept":
                entry["inputs_hash"] = hashes[m.name]
                entry["settings"] = settings_of(m)
                if m.source is not None:
                    entry["source"] = {
                        "kind": m.source.kind,
                        "ref": m.source.ref,
                        "sha256": source_sha256(spec, m),
                    }
                    entry["tools"] = {"repo_builder": __version__, **libraries}
            else:
                failed[m.name] = {
                    "error": r.error,
                    "log": logs_path(Path(), m.name).as_posix(),
                    "kept": "the previous build of this model",
                }
            models[m.name] = entry
        shutil.rmtree(work_dir(stage), ignore_errors=True)
        write_manifest(stage, manifest)
    for r in results.values():
        if r.log is not None:
            r.log = repo / r.log.relative_to(stage)
        if r.size == 0 and (repo / r.name).exists():
            r.size = _size(repo / r.name)
    ordered = [results[m.name] for m in spec.models if m.name in results]
    return BuildResult(repo, ordered)


def _settle_failure(repo: Path, stage: Path, m: ModelSpec, r: ModelResult, old_models: dict[str, Any]) -> None:
    """A model that failed keeps its previous build when there is one, else leaves only its log."""
    if r.status != "failed":
        return
    if m.name in old_models and (repo / m.name).is_dir():
        _carry(repo, stage, m)
        r.status = "kept"
        r.entry = dict(old_models[m.name])
    else:
        _park_failure(stage, m.name, r)


def _ensembles(
    spec: Spec,
    repo: Path,
    stage: Path,
    workers: _Workers,
    force: bool,
    results: dict[str, ModelResult],
    hashes: dict[str, str],
    old_models: dict[str, Any],
    notify: Progress,
) -> None:
    """Ensembles: their config, and reference vectors computed by running their built steps (in workers),
    carried over when neither the ensemble nor any step changed."""
    ensembles = _ensemble_order(spec)
    memo: dict[str, str] = {}

    def step_hash(name: str) -> str:
        m = spec.model(name)
        if m.target == "ensemble":
            if name not in memo:
                steps = {s.model: step_hash(s.model) for s in m.steps or []}
                memo[name] = hashlib.sha256(json.dumps([hashes[name], steps], sort_keys=True).encode()).hexdigest()
            return memo[name]
        r = results.get(name)
        return str(r.entry.get("inputs_hash")) if r is not None and r.status == "kept" else hashes[name]

    pending = []
    for m in ensembles:
        r = results[m.name] = _ensemble(spec, m, stage)
        hashes[m.name] = step_hash(m.name)
        if r.status != "built" or not m.verify.enabled:
            _settle_failure(repo, stage, m, r, old_models)
            notify(m.name, r.status)
            continue
        old = old_models.get(m.name) or {}
        ref = old.get("reference")
        if not force and old.get("inputs_hash") == hashes[m.name] and ref and (repo / ref).is_file():
            for path in (Path(ref), logs_path(Path(), m.name)):  # the reference and the log that made it
                _link_tree(repo / path, stage / path)
            r.entry.update(reference=ref, tolerance=old.get("tolerance"))
            if old.get("notes"):
                r.entry["notes"] = old["notes"]
            r.status = "carried"
            notify(m.name, "unchanged")
        else:
            pending.append(m)
            notify(m.name, "queued")
    if not pending:
        return
    computed: dict[str, ModelResult] = {}
    workers.run("ensemble_reference", pending, computed)
    for m in pending:
        got, r = computed[m.name], results[m.name]
        if got.status == "failed":
            r.status, r.error, r.log, r.entry = "failed", got.error, got.log, {}
            _settle_failure(repo, stage, m, r, old_models)
            continue
        r.seconds = got.seconds
        r.entry.update(reference=got.entry.get("reference"), tolerance=got.entry.get("tolerance"))
        if got.entry.get("notes"):
            r.entry["notes"] = got.entry["notes"]


def _ensemble_order(spec: Spec) -> list[ModelSpec]:
    """The spec's ensembles, each after the ensembles it has as steps (whatever the order in the spec)."""
    ordered: list[ModelSpec] = []
    seen: set[str] = set()

    def visit(m: ModelSpec) -> None:
        if m.name in seen:
            return
        seen.add(m.name)
        for step in m.steps or []:
            inner = spec.model(step.model)
            if inner.target == "ensemble":
                visit(inner)
        ordered.append(m)

    for m in spec.models:
        if m.target == "ensemble":
            visit(m)
    return ordered


def _park_failure(stage: Path, name: str, result: ModelResult) -> None:
    """A model that failed with no previous build leaves no folder (Triton would refuse to start on a
    model folder without config.pbtxt); its log moves to a top-level file."""
    folder = stage / name
    log = logs_path(stage, name)
    parked = failed_log_path(stage, name)
    if log.is_file():
        shutil.move(str(log), parked)
        result.log = parked
    shutil.rmtree(folder, ignore_errors=True)


def _ensemble(spec: Spec, m: ModelSpec, stage: Path) -> ModelResult:
    """Ensembles need no conversion: their config and an empty version folder."""
    from repo_builder.render.config import render_config
    from repo_builder.spec.models import spec_tensors

    missing = [s.model for s in m.steps or [] if not (stage / s.model / "config.pbtxt").is_file()]
    if missing:
        return ModelResult(m.name, m.target, "failed", error=f"step model(s) {', '.join(missing)} did not build")
    tensors = spec_tensors(m)
    assert tensors is not None
    write_model_layout(stage, spec, m, render_config(m, tensors))
    entry = {
        "target": "ensemble",
        "platform": "ensemble",
        "backend": None,
        "versions": list(m.versions),
        "max_batch_size": m.max_batch_size,
        "dynamic_batching": False,
        "inputs": [{"name": t.name, "dtype": t.dtype, "dims": list(t.dims)} for t in tensors.inputs],
        "outputs": [{"name": t.name, "dtype": t.dtype, "dims": list(t.dims)} for t in tensors.outputs],
        "source": None,
        "artifacts": {},
        "reference": None,
        "max_error": None,
        "validation": m.validation.model_dump(mode="json"),
        "status": "built",
        "steps": [s.model for s in m.steps or []],
    }
    return ModelResult(m.name, m.target, "built", entry)


def _drain(events: Any, notify: Progress) -> None:
    import queue

    while True:
        try:
            name, what = events.get_nowait()
        except queue.Empty:
            return
        notify(name, what)


def _start_resource_tracker() -> None:
    """multiprocessing's resource tracker unlinks the pool's semaphores once every process is gone; started
    with SIGHUP ignored (inherited), it outlives a closed terminal and still does so."""
    import signal
    import threading
    from multiprocessing import resource_tracker

    if threading.current_thread() is not threading.main_thread():
        resource_tracker.ensure_running()
        return
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        resource_tracker.ensure_running()
    finally:
        signal.signal(signal.SIGHUP, previous)


class _Workers:
    """Spawned worker processes (TensorFlow and fork do not mix), started on first use and shared by the
    build's waves (conversions, then ensemble references), so that each imports TensorFlow once."""

    def __init__(self, spec_path: str, stage: Path, size: int, notify: Progress) -> None:
        self.spec_path = spec_path
        self.stage = stage
        self.size = max(1, size)
        self.notify = notify
        self._pool: ProcessPoolExecutor | None = None
        self._events: Any = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is not None and getattr(self._pool, "_broken", False):  # a worker died: start afresh
            self.close(abort=True)
        if self._pool is None:
            import multiprocessing

            from repo_builder.build import worker

            _start_resource_tracker()
            ctx = multiprocessing.get_context("spawn")
            self._events = ctx.Queue()  # given at start-up (initargs): no manager process to outlive us
            self._pool = ProcessPoolExecutor(
                max_workers=self.size, mp_context=ctx, initializer=worker.init, initargs=(self._events,)
            )
        return self._pool

    def run(self, task: str, models: list[ModelSpec], results: dict[str, ModelResult]) -> None:
        """`worker.<task>(spec_path, name, stage)` for each model; results by model name."""
        from repo_builder.build import worker

        pool = self._executor()
        futures: dict[Future[dict[str, Any]], ModelSpec] = {
            pool.submit(getattr(worker, task), self.spec_path, m.name, str(self.stage)): m for m in models
        }
        pending = set(futures)
        while pending:
            _drain(self._events, self.notify)
            for f in [f for f in pending if f.done()]:
                pending.discard(f)
                m = futures[f]
                try:
                    entry = f.result()
                except Exception as e:
                    entry = {"status": "failed", "error": f"the worker process died: {type(e).__name__}: {e}"}
                status = entry.get("status", "failed")
                results[m.name] = ModelResult(
                    m.name,
                    m.target,
                    status,
                    entry,
                    error=entry.get("error"),
                    log=logs_path(self.stage, m.name),
                    seconds=float(entry.get("seconds", 0.0)),
                )
                self.notify(m.name, status)
            time.sleep(0.05)
        _drain(self._events, self.notify)

    def close(self, abort: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if abort:
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
        else:
            pool.shutdown(wait=True)
