"""Child-process entry: converts, verifies and writes one model into the staging repository.

Runs in a `spawn`ed process (TensorFlow and fork do not mix); one TensorFlow import per worker. Everything
the conversion says goes to `<model>/build.log` in the staging repository, which starts with
the command that reproduces it. Returns a JSON-able dict: the model's manifest entry, or its failure.
"""

from __future__ import annotations

import logging
import shutil
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from repo_builder._process import native_output_to, quiet_tensorflow


def _logger(path: Path, name: str) -> logging.Logger:
    path.parent.mkdir(parents=True, exist_ok=True)
    log = logging.getLogger(f"repo_builder.model.{name}")
    log.handlers.clear()
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return log


def _place(src: Path, dest: Path, move: bool) -> None:
    if dest.exists():
        shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
    if move:
        shutil.move(str(src), str(dest))
    elif src.is_dir():
        shutil.copytree(src, dest)
    else:
        shutil.copy2(src, dest)


def _clear_except(folder: Path, keep: Path) -> None:
    """Remove everything in `folder` but the file `keep` (and the folder itself when nothing is kept)."""
    if not folder.is_dir():
        return
    for item in folder.iterdir():
        if item != keep:
            shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink(missing_ok=True)
    if not any(folder.iterdir()):
        folder.rmdir()


def final_repo(stage: Path) -> Path:
    """The repository a staging folder (`.<name>.staging-<pid>`, see repository.staged) becomes."""
    if stage.name.startswith(".") and ".staging-" in stage.name:
        return stage.parent / stage.name[1:].rsplit(".staging-", 1)[0]
    return stage


_events: Any = None


def init(events: Any) -> None:
    """Worker start-up: keep the queue that carries (model, step) progress events to the parent."""
    global _events
    _events = events
    quiet_tensorflow()
    _exit_with_parent()


def _exit_with_parent(interval: float = 0.5) -> None:
    """End this worker when the build process is gone (`kill -9`): the pool's queues are shared by all the
    processes, so a worker whose parent died would wait on them forever, holding its TensorFlow memory."""
    import os
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="repo-builder-parent-watch", daemon=True).start()


def convert_model(spec_path: str, name: str, stage: str, events: Any = None) -> dict[str, Any]:
    """Build one model into `stage`. Never raises: failures come back as {"status": "failed", ...}."""
    return _run(_convert, spec_path, name, stage, events)


def ensemble_reference(spec_path: str, name: str, stage: str, events: Any = None) -> dict[str, Any]:
    """Reference vectors of an ensemble whose steps are built in `stage`. Never raises, like convert_model."""
    return _run(_ensemble_reference, spec_path, name, stage, events)


Task = Callable[[str, str, Path, logging.Logger, Callable[[str], None]], dict[str, Any]]


def _run(task: Task, spec_path: str, name: str, stage: str, events: Any) -> dict[str, Any]:
    """One model's work in this process: its log file, progress events, timing, failures as results."""
    quiet_tensorflow()
    events = events if events is not None else _events
    from repo_builder.repository.layout import logs_path, work_dir

    repo = Path(stage)
    log_path = logs_path(repo, name)
    log = _logger(log_path, name)
    started = time.monotonic()

    def step(what: str) -> None:
        log.info("step: %s", what)
        if events is not None:
            events.put((name, what))

    try:
        with native_output_to(log_path):
            entry = task(spec_path, name, repo, log, step)
        entry["seconds"] = round(time.monotonic() - started, 2)
        log.info("done in %.1f s", entry["seconds"])
        return entry
    except BaseException as e:
        from repo_builder.errors import RepoBuilderError

        message = e.message if isinstance(e, RepoBuilderError) else f"{type(e).__name__}: {e}"
        log.error("FAILED: %s\n%s", message, traceback.format_exc())
        _clear_except(repo / name, log_path)  # a failed model leaves only its log
        return {
            "name": name,
            "status": "failed",
            "error": message,
            "log": log_path.relative_to(repo).as_posix(),
            "seconds": round(time.monotonic() - started, 2),
        }
    finally:
        shutil.rmtree(work_dir(repo) / name, ignore_errors=True)
        for h in log.handlers:
            h.close()


def _convert(spec_path: str, name: str, repo: Path, log: logging.Logger, step: Any) -> dict[str, Any]:
    import numpy as np

    from repo_builder.converters import plan
    from repo_builder.converters.base import Context
    from repo_builder.errors import MissingDependencyError
    from repo_builder.inspect.resolve import apply_spec_names, resolve
    from repo_builder.inspect.sources import load_source
    from repo_builder.render.config import render_config
    from repo_builder.repository.layout import references_path, version_dir, work_dir
    from repo_builder.repository.write import sha256_tree, write_model_layout
    from repo_builder.spec import load_spec, tensors_of
    from repo_builder.triton.platforms import PLATFORMS
    from repo_builder.verify.compare import tolerance, verify
    from repo_builder.verify.ensemble import input_tensors
    from repo_builder.verify.runners import artifact_runner, source_runner

    spec = load_spec(spec_path)
    model = spec.model(name)
    log.info("model %s, target %s, source %s", name, model.target, model.source.ref if model.source else None)
    log.info("reproduce with: repo-builder build %s -o %s --only %s", spec_path, final_repo(repo), name)
    assert model.source is not None

    step("load")
    loaded = load_source(model.source, spec.base_dir, model.signature)
    log.info("source inputs %s", loaded.inputs)
    log.info("source outputs %s", loaded.outputs)
    step("inspect")
    loaded, renamed = apply_spec_names(model, loaded)
    if renamed:
        log.info("serving the spec's names for the model's made-up ones: %s", renamed)
    resolved = resolve(model, loaded.inputs, loaded.outputs)
    log.info(
        "resolved max_batch_size %d, inputs %s, outputs %s",
        resolved.max_batch_size,
        resolved.inputs,
        resolved.outputs,
    )

    chain = plan(resolved)
    for c in chain:
        problem = c.available()
        if problem and c.name != "onnx2plan":  # no TensorRT: onnx2plan writes the recipe instead
            raise MissingDependencyError(f"model {name}: {c.name}: {problem}")
    work = work_dir(repo) / name
    work.mkdir(parents=True, exist_ok=True)
    ctx = Context(spec_dir=spec.base_dir, work=work, repo=repo, log=log, loaded=loaded)
    src: Path = spec.base_dir
    results = []
    for c in chain:
        step(c.name)
        out = work / c.name
        out.mkdir(parents=True, exist_ok=True)
        log.info("converter %s: %s -> %s", c.name, src, out)
        converted = c.convert(resolved, src, out, ctx)
        results.append(converted)
        src = converted.path
    final = results[-1]

    # the layout first, so the python runner can load model.py from its version folder
    step("write")
    text = render_config(resolved, tensors_of(resolved))
    write_model_layout(repo, spec, resolved, text)
    for i, v in enumerate(resolved.versions):
        for fname, path in final.files.items():
            _place(path, version_dir(repo, name, v) / fname, move=(i == len(resolved.versions) - 1))

    tol = tolerance(resolved)
    verification = None
    if resolved.verify.enabled:
        step("verify")
        runner, what = artifact_runner(resolved, version_dir(repo, name, resolved.versions[0]))
        if resolved.target == "tensorrt":  # running a plan needs a CUDA runtime binding
            final.notes.append(
                "verified the ONNX the plan is built from; check the plan itself through Triton with "
                "`repo-builder validate`"
            )
        # inputs of the shapes the config promises (a dim the spec fixes is that size, not a made-up one)
        inputs = input_tensors(resolved)
        verification = verify(resolved, inputs, source_runner(loaded.call), runner, tol, what)
        for e in verification.errors.values():
            log.info(
                "verified %s: max abs %.3g max rel %.3g over batch sizes %s",
                e.name,
                e.max_abs,
                e.max_rel,
                verification.batch_sizes,
            )
        ref = references_path(repo, name)
        ref.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {}
        tensors: list[tuple[str, Any, dict[str, Any]]] = [
            *(("input", t, verification.reference_inputs) for t in resolved.inputs or []),
            *(("output", t, verification.reference_outputs) for t in resolved.outputs or []),
        ]
        for kind, t, values in tensors:
            value = values[t.name]
            lead = [value.shape[0]] if resolved.max_batch_size > 0 else []
            if t.reshape is not None:  # stored with the config's dims, as a client sends them
                value = value.reshape([*lead, *t.dims])
            arrays[f"{kind}/{t.name}"] = value
        np.savez(ref, **arrays)

    artifacts = {}
    for v in resolved.versions:
        vdir = version_dir(repo, name, v)
        for item in sorted(vdir.iterdir()):
            artifacts[f"{v}/{item.name}"] = sha256_tree(item)
    platform = PLATFORMS[resolved.target]
    entry: dict[str, Any] = {
        "name": name,
        "target": resolved.target,
        "platform": platform.platform,
        "backend": platform.backend,
        "versions": list(resolved.versions),
        "max_batch_size": resolved.max_batch_size,
        "dynamic_batching": resolved.dynamic_batching_on,
        "inputs": [{"name": t.name, "dtype": t.dtype, "dims": list(t.dims)} for t in resolved.inputs or []],
        "outputs": [{"name": t.name, "dtype": t.dtype, "dims": list(t.dims)} for t in resolved.outputs or []],
        "artifacts": artifacts,
        "reference": references_path(Path(), name).as_posix() if verification else None,
        "tolerance": tol,
        "max_error": verification.max_error if verification else None,
        "errors": {k: {"max_abs": e.max_abs, "max_rel": e.max_rel} for k, e in verification.errors.items()}
        if verification
        else {},
        "validation": resolved.validation.model_dump(mode="json"),
        "status": final.status,
        "notes": [n for r in results for n in r.notes],
        "converters": [c.name for c in chain],
    }
    if renamed:
        entry["renamed"] = renamed
    if resolved.target == "python":
        entry["python_runtime"] = resolved.python_runtime or "onnxruntime"
    for r in results:
        entry.update(r.manifest)
    return entry


def _ensemble_reference(spec_path: str, name: str, repo: Path, log: logging.Logger, step: Any) -> dict[str, Any]:
    """Run the ensemble's steps on their built artifacts and store the result as the ensemble's reference,
    so that `validate` checks what the served ensemble computes, wiring included."""
    import numpy as np

    from repo_builder.repository.layout import references_path
    from repo_builder.spec import load_spec
    from repo_builder.verify.compare import tolerance
    from repo_builder.verify.ensemble import NoReference, ensemble_inputs, ensemble_runner

    spec = load_spec(spec_path)
    model = spec.model(name)
    steps = [s.model for s in model.steps or []]
    log.info("ensemble %s: steps %s", name, " -> ".join(steps))
    log.info("reproduce with: repo-builder build %s -o %s --only %s", spec_path, final_repo(repo), name)
    step("reference")
    try:
        runner = ensemble_runner(spec, model, repo)
    except NoReference as e:
        log.warning("no reference for this ensemble: %s", e)
        return {"name": name, "status": "built", "reference": None, "notes": [f"no reference: {e}"]}
    feed = ensemble_inputs(model)
    outputs = runner(feed)
    for k, v in outputs.items():
        log.info("output %s: shape %s dtype %s", k, list(v.shape), v.dtype)
    arrays = {**{f"input/{k}": v for k, v in feed.items()}, **{f"output/{k}": v for k, v in outputs.items()}}
    ref = references_path(repo, name)
    np.savez(ref, **arrays)
    # the served steps run these same artifacts: the steps' own tolerances bound the difference
    tols = [tolerance(spec.model(s)) for s in steps if spec.model(s).target != "ensemble"] or [tolerance(model)]
    tol = {k: max(t[k] for t in tols) for k in ("atol", "rtol")}
    tol.update({k: v for k, v in (("atol", model.verify.atol), ("rtol", model.verify.rtol)) if v is not None})
    return {
        "name": name,
        "status": "built",
        "reference": references_path(Path(), name).as_posix(),
        "tolerance": tol,
    }
