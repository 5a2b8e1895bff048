"""Worker processes: the pool the build hands each model's pipeline to, and the child side of it.

Each model builds as if it were alone. Keras', tf2onnx's and TensorFlow's global name counters would
otherwise carry from one model to the next in a reused process and change the artifacts' bytes (node
names in model.onnx, function names in saved_model.pb), so a worker imports TensorFlow once and then
forks a fresh child for each model it is handed: every model starts from the same state, whatever ran
before it, at the cost of a fork instead of a TensorFlow import (about 5 s) per model. The worker itself
never runs a TensorFlow op, so nothing it forks holds TensorFlow's runtime threads.

Workers are plain child processes of this interpreter (`python -c`), joined to the parent by a socket
pair each, over which tasks go out and progress events and results come back. No multiprocessing queue,
lock or resource tracker: nothing in /dev/shm, no helper process. Every worker, and every model's child,
ends when its parent does, however it ends (PR_SET_PDEATHSIG on Linux; elsewhere a thread watching the
parent pid). A model that runs past the build's time limit has its worker killed (its child with it) and
fails with a message that says where it was; the other models go on.

The parent hands a worker the pipeline function itself (build.pipeline.convert_model /
ensemble_reference), the validated Spec and ModelSpec (pydantic models pickle: the spec is parsed once)
and the staging folder. In the child, everything a model's pipeline says goes to `<model>/build.log` in
the staging repository; a failure comes back as a FAILED ModelResult, never as an exception.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
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

#: a model's build time limit by default (seconds): generous, a large net converts in minutes
DEFAULT_MODEL_TIMEOUT = 3600.0
#: the environment variable every worker carries: the build process's pid
WORKER_MARK = "REPO_BUILDER_WORKER_OF"

# ------------------------------------------------------------------------------------------- child side

_PR_SET_PDEATHSIG = 1


def _end_with_parent(parent: int) -> None:
    """End this process the moment `parent` does (kill -9 included), so that no worker outlives a build
    holding its TensorFlow memory. Linux: the kernel sends SIGKILL (PR_SET_PDEATHSIG); elsewhere a thread
    polls the parent pid."""
    armed = False
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    if not armed:
        import threading

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, name="repo-builder-parent-watch", daemon=True).start()


class _Events:
    """The worker's side of progress events: (model, step) sent to the parent."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def put(self, event: tuple[str, str]) -> None:
        self.conn.send(("step", *event))


def worker_main(parent: int, fd: int, warm: list[str]) -> None:
    """A worker's life: import `warm` (TensorFlow) once, then for each task handed to it fork a child that
    runs it and sends back its result; after the child, ("end", how it ended). Ends when the parent
    closes the connection."""
    _end_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent decides
    quiet_tensorflow()
    conn = Connection(fd)
    for module in warm:
        with contextlib.suppress(Exception):  # a missing library fails the model in its check step
            __import__(module)
    me = os.getpid()
    while True:
        try:
            task, spec, model, stage = conn.recv()
        except (EOFError, OSError):
            os._exit(0)
        sys.stdout.flush()
        sys.stderr.flush()
        child = os.fork()
        if child == 0:
            try:
                _end_with_parent(me)
                conn.send(("begin", model.name))
                result = run_task(task, spec, model, stage, events=_Events(conn))
                conn.send(("result", result))
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(0)  # no interpreter teardown: TensorFlow's takes seconds and has nothing to save
        _, status = os.waitpid(child, 0)
        try:
            conn.send(("end", _ended(status)))
        except OSError:
            os._exit(0)


def _ended(status: int) -> str:
    """How a child ended, from its wait status: "" when it exited 0."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
        return f"was killed by {name}" + (" (out of memory?)" if sig == signal.SIGKILL else "")
    code = os.waitstatus_to_exitcode(status)
    return "" if code == 0 else f"exited with code {code}"


_BOOT = (
    "import sys, json; sys.path[:] = json.loads(sys.argv[1]); "
    "from repo_builder.build.pool import worker_main; "
    "worker_main(int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4]))"
)


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
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            from repo_builder.repository.disk import output_error

            e = output_error(e, repo, f"model {name} into the staging folder")
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


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    conn: Connection
    errors: Path  # the worker's own stdout and stderr (start-up, a crash), in the staging scratch folder
    model: ModelSpec | None = None
    #: when the model's pipeline began (the worker had imported what it warms), monotonic
    began: float | None = None
    step: str = "start"
    #: the model's result came back (its child may still be ending)
    result: bool = False

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        with contextlib.suppress(OSError):
            self.conn.close()

    def died(self) -> str:
        """Why the worker is gone: its exit status and the last lines it printed."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        code = self.process.returncode
        if code is None:
            how = "closed its connection"
        elif code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            how = f"was killed by {name}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
        else:
            how = f"exited with code {code}"
        try:
            lines = self.errors.read_text(errors="replace").strip().splitlines()[-5:]
        except OSError:
            lines = []
        return f"the worker process {how}" + (": " + " | ".join(lines) if lines else "")


class Workers:
    """Worker processes, started on first use and shared by the build's waves; each model runs in a fresh
    fork of one. `timeout`: seconds a model's pipeline may run (None: no limit)."""

    def __init__(
        self,
        spec: Spec,
        stage: Path,
        size: int,
        notify: Progress,
        timeout: float | None = DEFAULT_MODEL_TIMEOUT,
    ) -> None:
        self.spec = spec
        self.stage = stage
        self.size = max(1, size)
        self.notify = notify
        self.timeout = timeout if timeout and timeout > 0 else None
        self._idle: list[_Worker] = []
        self._busy: list[_Worker] = []
        self._started = 0
        self._warm: tuple[str, ...] = ()

    def _spawn(self, warm: tuple[str, ...]) -> _Worker:
        scratch = work_dir(self.stage)
        scratch.mkdir(parents=True, exist_ok=True)
        self._started += 1
        errors = scratch / f"worker-{self._started}.out"
        ours, theirs = socket.socketpair()
        env = dict(os.environ, **{WORKER_MARK: str(os.getpid())})
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        argv = [sys.executable, "-c", _BOOT, json.dumps(sys.path), str(os.getpid()), str(theirs.fileno())]
        try:
            with open(errors, "wb") as out:
                process = subprocess.Popen(
                    [*argv, json.dumps(list(warm))],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    pass_fds=(theirs.fileno(),),
                    env=env,
                )
        finally:
            theirs.close()
        return _Worker(process, Connection(ours.detach()), errors)

    def run(
        self,
        task: Task,
        models: list[ModelSpec],
        results: dict[str, ModelResult],
        warm: tuple[str, ...] = (),
    ) -> None:
        """`task(spec, model, stage, ...)` for each model, `size` at a time, each in a fresh fork of a
        worker; results by model name. `warm`: modules a worker imports once, before its first model."""
        if not set(warm) <= set(self._warm):  # the workers started so far did not import these
            self.close()
            self._warm = warm
        queue = list(models)
        while queue or self._busy:
            while queue and len(self._busy) < self.size:
                self._hand(self._idle.pop(0) if self._idle else self._spawn(self._warm), task, queue.pop(0))
            for conn in wait([w.conn for w in self._busy], timeout=0.25):
                self._receive(next(w for w in self._busy if w.conn is conn), results)
            self._enforce_timeout(results)

    def _hand(self, worker: _Worker, task: Task, model: ModelSpec) -> None:
        worker.model, worker.began, worker.step, worker.result = model, None, "start", False
        self._busy.append(worker)
        # a worker that is gone: its connection reads EOF next, and the model fails with why
        with contextlib.suppress(OSError):
            worker.conn.send((task, self.spec, model, str(self.stage)))

    def _receive(self, worker: _Worker, results: dict[str, ModelResult]) -> None:
        assert worker.model is not None
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            self._fail(worker, results, worker.died())
            return
        kind = message[0]
        if kind == "begin":
            worker.began = time.monotonic()
        elif kind == "step":
            worker.step = message[2]
            self.notify(message[1], message[2])
        elif kind == "result":
            result: ModelResult = message[1]
            result.log = logs_path(self.stage, worker.model.name)
            results[worker.model.name] = result
            worker.result = True
            self.notify(result.name, result.status)
        elif worker.result:  # "end" after the result: the worker takes the next model
            self._busy.remove(worker)
            worker.model = None
            self._idle.append(worker)
        else:  # "end" without a result: the model's process died (a crash in native code, the OOM killer)
            self._fail(worker, results, f"the model's process {message[1] or 'ended without a result'}", keep=True)

    def _enforce_timeout(self, results: dict[str, ModelResult]) -> None:
        if self.timeout is None:
            return
        now = time.monotonic()
        for w in [w for w in self._busy if w.began is not None and not w.result and now - w.began > self.timeout]:
            assert w.model is not None
            source = f", source {w.model.source.kind} {w.model.source.ref}" if w.model.source else ""
            self._fail(
                w,
                results,
                f"did not finish within the build's time limit of {self.timeout:g} s (at step {w.step!r}{source}); "
                "its process was stopped. If the model needs longer, raise the limit: "
                "repo-builder build --model-timeout SECONDS (0: no limit)",
            )

    def _fail(self, worker: _Worker, results: dict[str, ModelResult], error: str, keep: bool = False) -> None:
        """The model of a worker that died or ran out of time: FAILED, with only its log left. The worker is
        killed (its child with it), unless `keep`: its child ended and it waits for the next model."""
        from repo_builder.repository.write import clear_except

        assert worker.model is not None
        model = worker.model
        self._busy.remove(worker)
        worker.model = None
        if keep:
            self._idle.append(worker)
        else:
            worker.kill()
        log = logs_path(self.stage, model.name)
        with contextlib.suppress(OSError):
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a", encoding="utf-8") as f:
                f.write(f"FAILED: {error}\n")
        clear_except(self.stage / model.name, log)
        shutil.rmtree(work_dir(self.stage) / model.name, ignore_errors=True)
        seconds = round(time.monotonic() - worker.began, 2) if worker.began is not None else 0.0
        results[model.name] = ModelResult(
            model.name, model.target, ModelStatus.FAILED, error=error, log=log, seconds=seconds
        )
        self.notify(model.name, ModelStatus.FAILED)

    def close(self, abort: bool = False) -> None:
        """Stop the workers: the idle ones (their connection closes and they exit), and with `abort` the
        busy ones too (killed at once, their model's child with them)."""
        for w in self._idle:
            w.conn.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                w.process.wait(5)
            w.kill()
        self._idle.clear()
        if abort:
            for w in self._busy:
                w.kill()
            self._busy.clear()
