"""Run the tritonserver from the nvidia-pytriton wheel as a child process, bound to 127.0.0.1 by default.

    with EmbeddedServer(Path("model_repository")) as server:
        print(server.http_url, server.grpc_url)

Start-up builds a backend folder and the served repository (see preview.py) in a temporary
directory, starts tritonserver in its own process group with the python backend's shared-memory
regions under a prefix unique to this server (its arguments from triton/server_args.py, the one
tritonserver argument builder, as the docker-compose deployment's), and waits for /v2/health/ready with a deadline.
Stopping sends SIGTERM, then SIGKILL to the whole process group after a grace period, and removes
the /dev/shm regions with this server's prefix and the temporary directory.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from repo_builder.errors import DeploymentError
from repo_builder.serve.binary import find_distribution, make_backend_dir
from repo_builder.serve.gpus import visible_gpus
from repo_builder.serve.preview import PreviewedModel, ServedRepository, prepare_repository
from repo_builder.serve.stub import check_numpy
from repo_builder.triton.server_args import ModelControlMode, ServerArgs, connect_host

LOG = logging.getLogger(__name__)

SHM_DIR = Path("/dev/shm")
#: the python backend's own default prefix; ours extends it so the usual glob still finds them
SHM_PREFIX = "triton_python_backend_shm_region_"
LOG_TAIL_LINES = 40

DEFAULT_ADDRESS = "127.0.0.1"


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET


def free_ports(count: int, host: str = DEFAULT_ADDRESS) -> list[int]:
    """Ports nobody listens on right now on `host` (held open together so they differ)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(_family(host), socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def ports_free(ports: Sequence[int], host: str = DEFAULT_ADDRESS) -> bool:
    """True when nothing listens on any of `ports` on `host` right now."""
    for port in ports:
        with socket.socket(_family(host), socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no server log)"
    return "\n".join(text.splitlines()[-lines:])


#: Triton's log line prefix: severity, date, time, thread, source file:line]
_PREFIX = re.compile(r"^[IWEF]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] ")
_FAILED_LOAD = re.compile(r"failed to load '(?P<model>[^']+)' version (?P<version>\d+): (?P<reason>.+)", re.DOTALL)
_POLL_FAILED = re.compile(r"Poll failed for model directory '(?P<model>[^']+)': (?P<reason>.+)", re.DOTALL)
_STATUS_ROW = re.compile(r"^\|\s*(?P<model>\S+)\s*\|\s*(?P<version>\d+)\s*\|\s*(?P<status>[^|]*?)\s*\|$")


def _message(line: str) -> str:
    """A log line's message: without Triton's prefix and quotes, its escaped newlines made real."""
    text = _PREFIX.sub("", line.rstrip())
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1].replace("\\n", "\n").replace('\\"', '"')
    return text.strip()


def load_failures(log: str) -> dict[str, str]:
    """The models a tritonserver log says failed to load, by name, each as "name version 1: Triton's reason"
    (its first paragraph, and where a python model raised):
    from `failed to load 'x' version 1: ...`, `Poll failed for model directory 'x': ...` and the model
    status table's rows that are not READY."""
    found: dict[str, str] = {}
    for line in log.splitlines():
        message = _message(line)
        match = _FAILED_LOAD.search(message) or _POLL_FAILED.search(message)
        if match is None:
            row = _STATUS_ROW.match(line.strip())
            if row is None or row["status"] == "READY":
                continue
            found.setdefault(row["model"], f"{row['model']} version {row['version']}: {row['status']}")
            continue
        reason = match["reason"].strip().split("\n\n")[0].strip()
        at = match["reason"].split("\n\nAt:\n", 1)
        if len(at) == 2 and at[1].strip():  # where a python model raised
            reason += f" (at {at[1].strip().splitlines()[-1].strip()})"
        version = match.groupdict().get("version")
        found[match["model"]] = f"{match['model']}" + (f" version {version}: " if version else ": ") + reason
    return found


def startup_errors(log: str) -> list[str]:
    """The error lines of a tritonserver log (severity E or F, and `error: ...`), messages only."""
    return [
        _message(line)
        for line in log.splitlines()
        if (line[:1] in "EF" and _PREFIX.match(line)) or line.startswith("error: ")
    ]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: the server dies if repo-builder is killed


class _NotStarted(Exception):
    """The server exited or was not ready in time while starting (the headline of the failure)."""


class EmbeddedServer:
    """The real tritonserver serving `repository` (a CPU preview of models it has no backend for)."""

    def __init__(
        self,
        repository: Path,
        *,
        address: str = DEFAULT_ADDRESS,
        http_port: int | None = None,
        grpc_port: int | None = None,
        metrics_port: int | None = None,
        model_control_mode: ModelControlMode = "none",
        load_models: Sequence[str] = (),
        preview: bool = True,
        startup_timeout: float = 120.0,
        stop_timeout: float = 15.0,
        log_file: Path | None = None,
        log_verbose: int = 0,
        extra_args: Sequence[str] = (),
        on_progress: Callable[[str], None] | None = None,
        prefer_ports: tuple[int, int, int] | None = None,
        models: Sequence[str] | None = None,
    ) -> None:
        """`address` (an IP) is where HTTP, gRPC and metrics listen: 127.0.0.1 (this host only) by
        default, 0.0.0.0 for every interface. Ports None or 0 are picked: `prefer_ports` (HTTP, gRPC,
        metrics) when given and all free on `address`, else free ones. models: serve only these model
        folders (and the steps of those that are ensembles)."""
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise DeploymentError(
                f"{address!r} is not an IP address; use 127.0.0.1 (this host only, the default), "
                "0.0.0.0 (every interface) or one of this host's addresses"
            ) from None
        self.repository = Path(repository)
        self.address = address
        self._ports_requested = (http_port or None, grpc_port or None, metrics_port or None)
        self._prefer_ports = prefer_ports if not any(self._ports_requested) else None
        self.model_control_mode = model_control_mode
        self.load_models = list(load_models)
        self.preview_enabled = preview
        self.models = None if models is None else list(models)
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._log_file = Path(log_file) if log_file else None
        self.log_verbose = log_verbose
        self.extra_args = list(extra_args)
        self._progress = on_progress or (lambda message: LOG.info("%s", message))
        self.shm_prefix = f"{SHM_PREFIX}rb{os.getpid()}_{uuid.uuid4().hex[:8]}_"
        self.http_port = self.grpc_port = self.metrics_port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.served: ServedRepository | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._log_handle: object | None = None

    # -- addresses ---------------------------------------------------------------------------
    @property
    def connect_host(self) -> str:
        """Where clients on this host reach the server (the loopback when bound to every interface)."""
        return connect_host(self.address)

    @property
    def http_url(self) -> str:
        return f"{self.connect_host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.connect_host}:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.connect_host}:{self.metrics_port}/metrics"

    @property
    def previews(self) -> list[PreviewedModel]:
        return list(self.served.previews) if self.served else []

    @property
    def log_path(self) -> Path:
        if self._log_file is not None:
            return self._log_file
        if self._workdir is None:
            raise DeploymentError("the embedded server has not been started")
        return Path(self._workdir.name) / "tritonserver.log"

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self.process is not None:
            raise DeploymentError("the embedded server is already running")
        dist = find_distribution()
        check_numpy()
        self._workdir = tempfile.TemporaryDirectory(prefix="repo-builder-serve-")
        work = Path(self._workdir.name)
        try:
            backends = make_backend_dir(dist, work / "backends")
            (work / "cache").mkdir()
            gpus = visible_gpus()
            self.served = prepare_repository(
                self.repository,
                work / "repository",
                preview=self.preview_enabled,
                models=self.models,
                gpu_host=gpus > 0,
            )
            if self.served.previews:
                names = ", ".join(p.name for p in self.served.previews)
                self._progress(f"preview through the python backend for: {names}")
            placed = sorted(
                {*self.served.placed, *(p.name for p in self.served.previews if any("no GPU" in c for c in p.changes))}
            )
            if placed:
                self._progress(f"no GPU on this host: the GPU instance groups of {', '.join(placed)} run on the CPU")
            attempts = 1 if all(self._ports_requested) else 3  # picked ports can be taken meanwhile
            for attempt in range(attempts):
                self._launch(dist.binary, dist.libs, backends, work)
                try:
                    self._wait_ready()
                    return
                except _NotStarted as e:
                    in_use = "address already in use" in tail(self.log_path, 200).lower()
                    self._terminate()
                    if not in_use or attempt == attempts - 1:
                        raise DeploymentError(self.failure(str(e))) from None
                    self._progress("a picked port was taken meanwhile; retrying with other ports")
        except BaseException:
            self.stop()
            raise

    def _pick_ports(self) -> None:
        prefer, self._prefer_ports = self._prefer_ports, None  # first attempt only
        if prefer is not None and ports_free(prefer, self.address):
            self.http_port, self.grpc_port, self.metrics_port = prefer
            return
        picked = iter(free_ports(3, self.address))
        self.http_port, self.grpc_port, self.metrics_port = (p or next(picked) for p in self._ports_requested)

    def server_args(self, binary: Path, backends: Path, work: Path) -> ServerArgs:
        """The server's tritonserver arguments (HTTP, gRPC and metrics on `address`)."""
        return ServerArgs(
            binary=str(binary),
            model_repository=str(self.served.path if self.served else ""),
            backend_directory=str(backends),
            cache_directory=str(work / "cache"),
            model_control_mode=self.model_control_mode,
            load_models=tuple(self.load_models),
            address=self.address,
            http_port=self.http_port,
            grpc_port=self.grpc_port,
            metrics_port=self.metrics_port,
            allow_gpu_metrics=False,
            backend_configs=(f"python,shm-region-prefix-name={self.shm_prefix}",),
            exit_timeout_secs=max(1, int(self.stop_timeout) - 2),
            log_verbose=self.log_verbose,
            extra_args=tuple(self.extra_args),
        )

    def command(self, binary: Path, backends: Path, work: Path) -> list[str]:
        return self.server_args(binary, backends, work).to_args_list()

    def environment(self, libs: Path) -> dict[str, str]:
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(libs), env.get("LD_LIBRARY_PATH")]))
        # the python backend stub finds its packages through the first python on PATH (PYTHONPATH is ignored)
        env["PATH"] = os.pathsep.join(filter(None, [str(Path(sys.prefix) / "bin"), env.get("PATH")]))
        return env

    def _launch(self, binary: Path, libs: Path, backends: Path, work: Path) -> None:
        self._pick_ports()
        cmd = self.command(binary, backends, work)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.log_path, "ab")  # noqa: SIM115 - closed in _terminate
        handle.write(("$ " + " ".join(cmd) + "\n").encode())
        handle.flush()
        self._log_handle = handle
        self._progress(f"starting tritonserver (HTTP {self.http_url}, gRPC {self.grpc_url}), log: {self.log_path}")
        in_main_thread = threading.current_thread() is threading.main_thread()
        self.process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=self.environment(libs),
            cwd=work,
            start_new_session=True,  # own process group: Ctrl-C reaches us, we stop it cleanly
            preexec_fn=_die_with_parent if in_main_thread else None,
        )

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        url = f"http://{self.http_url}/v2/health/ready"
        while True:
            code = self.process.poll()
            if code is not None:
                raise _NotStarted(f"tritonserver exited with code {code} while starting")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        self._progress(f"tritonserver ready (HTTP {self.http_url}, gRPC {self.grpc_url})")
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise _NotStarted(f"tritonserver was not ready within {self.startup_timeout:.0f} s")
            time.sleep(0.25)

    def failure(self, headline: str) -> str:
        """`headline` and why, from the server's log: the models that failed to load with Triton's reasons
        (else its error lines, else its last lines); the log is kept (copied out of the temporary folder
        that stop() removes) and named."""
        try:
            log = self.log_path.read_text(errors="replace")
        except (OSError, DeploymentError):
            log = ""
        if self.served is not None:  # Triton names the served copy; the user knows their repository
            log = log.replace(str(self.served.path), str(self.repository))
        failures = load_failures(log)
        lines = [headline + (f": {len(failures)} model(s) failed to load" if failures else "")]
        if failures:
            lines += [f"  {failure}" for failure in failures.values()]
            lines += [f"Triton: {e}" for e in startup_errors(log) if e.startswith("error: ")]
        elif errors := startup_errors(log):
            lines += ["Triton's errors:", *(f"  {e}" for e in errors[-20:])]
        else:
            lines += [f"Last lines of the server's log:\n{tail(self.log_path)}"]
        kept = self.keep_log()
        lines.append(f"The server's log is kept: {kept}" if kept else "(no server log)")
        return "\n".join(lines)

    def keep_log(self) -> Path | None:
        """The server's log, where it outlives stop(): the --log-file as it is, else a copy in the system's
        temporary folder. None when there is no log."""
        try:
            source = self.log_path
        except DeploymentError:
            return None
        if self._log_file is not None or not source.is_file():
            return source if source.is_file() else None
        handle, name = tempfile.mkstemp(prefix="repo-builder-tritonserver-", suffix=".log")
        os.close(handle)
        shutil.copyfile(source, name)
        return Path(name)

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the server exits (or `timeout`); its exit code, None if still running."""
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def _terminate(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            pgid = process.pid  # start_new_session: the group id is the server's pid
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                try:
                    process.wait(self.stop_timeout)
                except subprocess.TimeoutExpired:
                    LOG.warning("tritonserver did not stop within %.0f s; killing it", self.stop_timeout)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pgid, signal.SIGKILL)
                    process.wait(5)
            # python backend stubs left behind by a crash or a kill belong to the same group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        if self._log_handle is not None:
            self._log_handle.close()  # type: ignore[attr-defined]
            self._log_handle = None
        self._remove_shm()

    def _remove_shm(self) -> None:
        for region in SHM_DIR.glob(f"{self.shm_prefix}*"):
            with contextlib.suppress(OSError):
                region.unlink()
                LOG.debug("removed leftover shared memory %s", region)

    def stop(self) -> None:
        """Stop the server (idempotent): no process, no shared-memory region, no temp dir left."""
        self._terminate()
        if self._workdir is not None:
            if self._log_file is None:
                self._progress("tritonserver stopped")
            with contextlib.suppress(OSError):
                self._workdir.cleanup()
            self._workdir = None
