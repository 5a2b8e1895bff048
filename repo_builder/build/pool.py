"""Worker processes: the pool the build hands each model's pipeline to, and the child side of it.

Workers are `spawn`ed (TensorFlow and fork do not mix), started on first use and shared by the build's
waves (conversions, then ensemble references), so that each imports TensorFlow once. The parent hands a
worker the pipeline function itself (build.pipeline.convert_model / ensemble_reference), the validated
Spec and ModelSpec (pydantic models pickle: the spec is parsed once) and the staging folder. In the
child, everything a model's pipeline says goes to `<model>/build.log` in the staging repository; a
failure comes back as a FAILED ModelResult, never as an exception.
"""

from __future__ import annotations

import logging
import shutil
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from repo_builder._process import native_output_to, quiet_tensorflow
from repo_builder.build.results import ModelResult
from repo_builder.repository.layout import logs_path, work_dir
from repo_builder.repository.manifest import ManifestEntry, ModelStatus
from repo_builder.spec.models import ModelSpec, Spec

Progress = Callable[[str, str], None]
#: reports a step of the model's pipeline (to its log and to the parent's progress display)
Step = Callable[[str], None]
#: a model's pipeline: (spec, model, staging repository, its log, step) -> its manifest entry
Task = Callable[[Spec, ModelSpec, Path, logging.Logger, Step], ManifestEntry]

# ------------------------------------------------------------------------------------------- child side

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


def run_task(task: Task, spec: Spec, model: ModelSpec, stage: str, events: Any = None) -> ModelResult:
    """One model's `task` in this process: its log file, progress events, timing, failures as results.
    Never raises."""
    from repo_builder.errors import RepoBuilderError
    from repo_builder.repository.write import clear_except

    quiet_tensorflow()
    events = events if events is not None else _events
    repo = Path(stage)
    name = model.name
    log_path = logs_path(repo, name)
    log = _logger(log_path, name)
    started = time.monotonic()

    def step(what: str) -> None:
        log.info("step: %s", what)
        if events is not None:
            events.put((name, what))

    try:
        with native_output_to(log_path):
            entry = task(spec, model, repo, log, step)
        seconds = round(time.monotonic() - started, 2)
        log.info("done in %.1f s", seconds)
        status = entry.status or ModelStatus.BUILT
        return ModelResult(name, model.target, status, entry, log=log_path, seconds=seconds)
    except BaseException as e:
        message = e.message if isinstance(e, RepoBuilderError) else f"{type(e).__name__}: {e}"
        log.error("FAILED: %s\n%s", message, traceback.format_exc())
        clear_except(repo / name, log_path)  # a failed model leaves only its log
        seconds = round(time.monotonic() - started, 2)
        return ModelResult(name, model.target, ModelStatus.FAILED, error=message, log=log_path, seconds=seconds)
    finally:
        shutil.rmtree(work_dir(repo) / name, ignore_errors=True)
        for h in log.handlers:
            h.close()


# ------------------------------------------------------------------------------------------ parent side


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


class Workers:
    """Spawned worker processes, started on first use and shared by the build's waves."""

    def __init__(self, spec: Spec, stage: Path, size: int, notify: Progress) -> None:
        self.spec = spec
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

            _start_resource_tracker()
            ctx = multiprocessing.get_context("spawn")
            self._events = ctx.Queue()  # given at start-up (initargs): no manager process to outlive us
            self._pool = ProcessPoolExecutor(
                max_workers=self.size, mp_context=ctx, initializer=init, initargs=(self._events,)
            )
        return self._pool

    def run(self, task: Task, models: list[ModelSpec], results: dict[str, ModelResult]) -> None:
        """`task(spec, model, stage, ...)` in the workers for each model; results by model name."""
        pool = self._executor()
        futures: dict[Future[ModelResult], ModelSpec] = {
            pool.submit(run_task, task, self.spec, m, str(self.stage)): m for m in models
        }
        pending = set(futures)
        while pending:
            _drain(self._events, self.notify)
            for f in [f for f in pending if f.done()]:
                pending.discard(f)
                m = futures[f]
                try:
                    result = f.result()
                except Exception as e:
                    error = f"the worker process died: {type(e).__name__}: {e}"
                    result = ModelResult(m.name, m.target, ModelStatus.FAILED, error=error)
                result.log = logs_path(self.stage, m.name)
                results[m.name] = result
                self.notify(m.name, result.status)
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
