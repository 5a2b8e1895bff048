"""Triton's own core as the judge of a model repository: the real tritonserver of the nvidia-pytriton wheel,
in explicit model-control mode, started once on an empty repository with auto-completion off.

    with TritonOracle(workdir) as oracle:
        verdicts = oracle.judge(repository)       # {model name: Verdict}
        refused = {n: v.message for n, v in verdicts.items() if not v.accepted}

How a model is judged (measured on Triton 2.51, docs/TRITON_FACTS.md "Triton's core as a test oracle"):

1. As written. The core parses and validates the config when it polls the model folder
   (ValidateModelConfig: dims, reshape, batching, queue policies, warmup, ...); a refusal is logged as
   `Poll failed for model directory 'NAME': MESSAGE` (the client only hears "failed to poll from model
   repository", so the message comes from the server log). Then it looks up the backend library. This
   server has only the python backend, so an onnxruntime, tensorflow or tensorrt model ends with
   `unable to find backend library for backend 'B'`: the core accepted the config.
2. As a python-backend copy. The checks that run once the backend is found (NormalizeInstanceGroup,
   ValidateInstanceGroup, label files, the instances, warmup) run on a copy whose config says
   `backend: "python"`; the `platform` stays, so platform-dependent rules (an instance group's `profile`
   only for `tensorrt_plan`) still apply. Each version folder gets a do-nothing `model.py`. This host has no
   GPU, so a KIND_GPU group becomes KIND_CPU without `gpus` in the copy (unless it names a negative id,
   which no host supports); whether the named GPUs exist is the one thing the oracle cannot judge here.
   Ensembles are judged in this pass, with their steps loaded as copies.
   A model that already uses the python backend is judged as written, with the do-nothing `model.py`
   in version folders that have none (a rendered repository has no artifacts).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from repo_builder.serve.binary import find_distribution, make_backend_dir
from repo_builder.serve.embedded import free_ports
from repo_builder.triton.server_args import ServerArgs

#: the backends this server does not have: failing on their library means the core accepted the config
MISSING_BACKENDS = ("onnxruntime", "tensorflow", "tensorrt")
_MISSING_BACKEND = re.compile(r"unable to find backend library for backend '(\w+)'")
_POLL_FAILED = "Poll failed for model directory '{name}': "
_CRASHED = b"Signal (11) received."
_UNAVAILABLE = re.compile(r"version \d+ is at UNAVAILABLE state: (.*?)(?:;version \d+ is at|;?\s*$)", re.S)

#: a python model that answers every request with an empty response (enough for warmup)
DUMMY_MODEL_PY = '''\
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """Stands in for the model's artifact: the oracle judges the config, not the model."""

    def execute(self, requests):
        return [pb_utils.InferenceResponse(output_tensors=[]) for _ in requests]
'''


class NoAnswer(Exception):
    """The server stopped answering while judging a repository (it has been restarted)."""


@dataclass(frozen=True)
class Verdict:
    model: str
    accepted: bool
    #: Triton's own message: the refusal, or why the model could not be loaded here (missing backend)
    message: str = ""
    #: which pass judged it: "as written" or "python copy"
    judged: str = "as written"


class _CrashWatch(threading.Thread):
    """Kills a tritonserver that crashed. On a crash it logs `Signal (11) received.` and its stack, then
    hangs with its connections open: a request would wait for the client's timeout (minutes)."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path, offset: int) -> None:
        super().__init__(daemon=True)
        self.process, self.log_path, self.offset = process, log_path, offset
        self.done, self.crashed = threading.Event(), threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            with self.log_path.open("rb") as f:
                f.seek(self.offset)
                new = f.read()
            if _CRASHED in new:
                self.crashed.set()
                self.done.wait(1)  # the stack trace
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.process.pid, 9)
                return
            self.offset += max(0, len(new) - len(_CRASHED))

    def stop(self) -> None:
        self.done.set()
        self.join()


class TritonOracle:
    """One tritonserver for many repositories; `judge()` loads each model through the repository API."""

    def __init__(self, workdir: Path, startup_timeout: float = 120.0, answer_timeout: float = 120.0) -> None:
        self.workdir = Path(workdir)
        #: how long a load or unload may take (a load waits for the python stubs of every instance: minutes
        #: on a busy 2-core host); past it the server is restarted and the repository's models refused
        self.answer_timeout = answer_timeout
        self.repo = self.workdir / "repository"
        self.log_path = self.workdir / "tritonserver.log"
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.http_port = 0
        self._client: object | None = None
        self._backends: Path | None = None
        self._watch: _CrashWatch | None = None
        #: why the server was restarted while judging a repository that was then judged again
        self.restarts: list[str] = []

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> TritonOracle:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def command(self) -> list[str]:
        dist = find_distribution()
        if self._backends is None:  # made once: a restart must not rewrite a stub a dying instance still runs
            self._backends = make_backend_dir(dist, self.workdir / "backends")
        backends = self._backends
        self.http_port, grpc_port, metrics_port = free_ports(3)
        args = ServerArgs(
            binary=str(dist.binary),
            model_repository=str(self.repo),
            backend_directory=str(backends),
            disable_auto_complete_config=True,  # what the config says is what Triton judges
            model_control_mode="explicit",
            address="127.0.0.1",
            http_port=self.http_port,
            grpc_port=grpc_port,
            metrics_port=metrics_port,
            allow_gpu_metrics=False,
            backend_configs=(f"python,shm-region-prefix-name=triton_python_backend_shm_region_oracle{os.getpid()}_",),
            exit_timeout_secs=5,
        )
        # no --load-model: nothing is loaded at start (ServerArgs writes `--load-model=*` in explicit mode)
        return [a for a in args.to_args_list() if not a.startswith("--load-model=")]

    def start(self) -> None:
        self.repo.mkdir(parents=True, exist_ok=True)
        dist = find_distribution()
        cmd = self.command()
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(dist.libs), env.get("LD_LIBRARY_PATH")]))
        env["PATH"] = os.pathsep.join([str(Path(sys.prefix) / "bin"), env.get("PATH", "")])
        log = self.log_path.open("ab")
        offset = log.tell()
        try:
            self.process = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        finally:
            log.close()
        self._watch = _CrashWatch(self.process, self.log_path, offset)
        self._watch.start()
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"tritonserver exited while starting:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"tritonserver was not ready in {self.startup_timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.2)
        import tritonclient.http as httpclient

        self._client = httpclient.InferenceServerClient(
            f"127.0.0.1:{self.http_port}", network_timeout=self.answer_timeout
        )

    def stop(self) -> None:
        process, self.process = self.process, None
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.stop()
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait(5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, 9)  # python backend stubs of the same group, if any are left
        for region in Path("/dev/shm").glob(f"triton_python_backend_shm_region_oracle{os.getpid()}_*"):
            region.unlink(missing_ok=True)

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # -- judging -----------------------------------------------------------------------------
    def judge(self, repository: Path) -> dict[str, Verdict]:
        """Every model folder of `repository` (folders holding a config.pbtxt), loaded into the core.

        A server that stops answering (a load or unload past the client's timeout, or a crash) is restarted
        and the repository judged once more: tritonserver 2.51 now and then crashes (signal 11) while it
        unloads python-backend models that loaded fine (3 times in 270 judgments of one repository:
        docs/TRITON_FACTS.md). A server that stops answering on the second try too is a verdict: the models
        of the repository that no answer judged are refused with what the server logged, so that one
        repository never decides the verdicts of the next ones. `restarts` keeps the first try's reason."""
        models = sorted(p.parent.name for p in Path(repository).glob("*/config.pbtxt"))
        for last_try in (False, True):
            verdicts: dict[str, Verdict] = {}
            try:
                return self._judge(Path(repository), models, verdicts)
            except NoAnswer as e:
                if not last_try:
                    self.restarts.append(f"{repository}: {e}")
                    continue
                for name in models:
                    if name not in verdicts or verdicts[name].accepted:
                        verdicts[name] = Verdict(
                            name, False, f"{e}\n(it stopped answering on the first try too)", "no answer"
                        )
        return verdicts

    def _judge(self, repository: Path, models: list[str], verdicts: dict[str, Verdict]) -> dict[str, Verdict]:
        self._reset()
        for name in models:
            shutil.copytree(repository / name, self.repo / name)
            _bound_processes(self.repo / name)
        ensembles = [n for n in models if _is_ensemble(self.repo / n)]
        written = [n for n in models if n not in ensembles]
        for name in written:
            if _backend(self.repo / name) == "python":
                _add_dummy_model(self.repo / name)
            verdicts[name] = self._load(name, "as written")
        # second pass: python copies of the models whose backend is missing here, then the ensembles
        missing = [n for n in written if verdicts[n].accepted and _MISSING_BACKEND.search(verdicts[n].message)]
        if missing or ensembles:
            self._unload_all()
            for name in missing:
                _make_python_copy(self.repo / name)
            for name in missing:
                copy = self._load(name, "python copy")
                if not copy.accepted:
                    verdicts[name] = copy
            for name in ensembles:  # explicit mode loads an ensemble's steps with it
                verdicts[name] = self._load(name, "python copy")
        self._unload_all()
        return verdicts

    def _load(self, name: str, judged: str) -> Verdict:
        from tritonclient.utils import InferenceServerException

        offset = self.log_path.stat().st_size
        try:
            with self._answered(f"loading {name!r} ({judged})"):
                self._client.load_model(name)  # type: ignore[attr-defined]
        except InferenceServerException as e:
            message = self._message(name, e.message() or str(e), offset)
            backend = _MISSING_BACKEND.search(message)
            if backend and backend.group(1) in MISSING_BACKENDS and judged == "as written":
                return Verdict(name, True, message, judged)
            return Verdict(name, False, message, judged)
        return Verdict(name, True, "", judged)

    def _message(self, name: str, client_message: str, offset: int) -> str:
        """Triton's reason: the client's, or for a config refused at poll time the server log's."""
        with self.log_path.open("rb") as f:
            f.seek(offset)
            new = f.read().decode(errors="replace")
        marker = _POLL_FAILED.format(name=name)
        for line in new.splitlines():
            if marker in line:
                return line.split(marker, 1)[1].rstrip().rstrip('"')
        found = _UNAVAILABLE.search(client_message)
        return found.group(1).strip() if found else client_message.strip()

    @contextlib.contextmanager
    def _answered(self, what: str) -> Iterator[None]:
        """Raises NoAnswer, after restarting the server, when it times out, refuses or drops the connection."""
        from geventhttpclient.response import HTTPParseError  # tritonclient.http's transport

        try:
            yield
        except (OSError, HTTPParseError) as e:  # timed out, refused, or closed (tritonclient passes them on)
            state = "did not answer"
            if self.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(2)  # a refused connection: the process may still be on its way out
                    crashed = self._watch is not None and self._watch.crashed.is_set()
                    state = "crashed (signal 11)" if crashed else "exited"
            tail = self.log_tail(40)
            self.stop()
            self.start()
            message = f"tritonserver {state} while {what} ({type(e).__name__}: {e}); its log ended:\n{tail}"
            raise NoAnswer(message) from e

    def _unload_all(self) -> None:
        with self._answered("unloading every model"):
            self._unload_all_models()

    def _unload_all_models(self) -> None:
        client = self._client
        for entry in client.get_model_repository_index():  # type: ignore[attr-defined]
            if entry.get("state") in ("READY", "LOADING", "UNAVAILABLE") and entry.get("name"):
                with contextlib.suppress(Exception):  # an unavailable model has nothing to unload
                    client.unload_model(entry["name"])  # type: ignore[attr-defined]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            index = client.get_model_repository_index()  # type: ignore[attr-defined]
            if not any(e.get("state") in ("READY", "LOADING", "UNLOADING") for e in index):
                return
            time.sleep(0.1)

    def _reset(self) -> None:
        self._unload_all()
        for item in self.repo.iterdir():
            shutil.rmtree(item) if item.is_dir() else item.unlink()


# --------------------------------------------------------------------------------------------- copies


def _config(folder: Path):  # type: ignore[no-untyped-def]
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    return text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())


def _is_ensemble(folder: Path) -> bool:
    return _config(folder).platform == "ensemble"


def _backend(folder: Path) -> str:
    return str(_config(folder).backend)


def _version_folders(folder: Path) -> list[Path]:
    config = _config(folder)
    numbers = {int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()}
    if config.version_policy.HasField("specific"):
        numbers |= set(config.version_policy.specific.versions)
    if not numbers:
        numbers = {1}
    return [folder / str(n) for n in sorted(numbers)]


#: the most instances of a group, and runs of a warmup, the oracle loads (see _bound_processes)
MAX_INSTANCES = 4
MAX_WARMUP_RUNS = 2


def _bound_processes(folder: Path) -> None:
    """At most MAX_INSTANCES instances per group and MAX_WARMUP_RUNS runs per warmup sample.

    Each instance of a python-backend model is a process, and each warmup run a request: a valid config
    asking for thousands of either would judge the host, not the config. The core's rules on these counts
    are `count >= 1` (instances) and none (warmup runs), so a lower bound above them keeps every verdict."""
    from google.protobuf import text_format

    config = _config(folder)
    changed = False
    for group in config.instance_group:
        if group.count > MAX_INSTANCES:
            group.count, changed = MAX_INSTANCES, True
    for warmup in config.model_warmup:
        if warmup.count > MAX_WARMUP_RUNS:
            warmup.count, changed = MAX_WARMUP_RUNS, True
    if changed:
        (folder / "config.pbtxt").write_text(text_format.MessageToString(config))


def _add_dummy_model(folder: Path) -> None:
    for version in _version_folders(folder):
        version.mkdir(exist_ok=True)
        if not (version / "model.py").exists():
            (version / "model.py").write_text(DUMMY_MODEL_PY)


def _make_python_copy(folder: Path) -> None:
    """The config served by the python backend (platform kept), KIND_GPU as KIND_CPU on this GPU-less host."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as pb

    config = _config(folder)
    config.backend = "python"
    config.default_model_filename = "model.py"  # the core names the platform's file (model.savedmodel, ...)
    for group in config.instance_group:
        # a negative id is unsupported on every host: the group stays as written for the core to refuse it
        if group.kind == pb.ModelInstanceGroup.KIND_GPU and all(gpu >= 0 for gpu in group.gpus):
            group.kind = pb.ModelInstanceGroup.KIND_CPU
            del group.gpus[:]
    (folder / "config.pbtxt").write_text(text_format.MessageToString(config))
    for version in _version_folders(folder):
        version.mkdir(exist_ok=True)
        (version / "model.py").write_text(DUMMY_MODEL_PY)


def refusals(verdicts: dict[str, Verdict]) -> dict[str, str]:
    """The models the core refused, with Triton's messages (an empty dict when it accepted all)."""
    return {name: f"{v.message} ({v.judged})" for name, v in sorted(verdicts.items()) if not v.accepted}
