"""Validate a running Triton server against a repository: readiness, configs, metadata, golden
outputs, dynamic batching and a short performance probe. Never raises for a failing deployment:
every problem becomes a failing check in the Report.

A server that stops answering ends the run fast: after a failing check the validator asks the server
for its health (a few seconds at most); when it gets no answer, or the check waited out a call's timeout,
every remaining check fails at once with that one reason instead of waiting for its own timeouts.

Here: the Validator (it runs the checks) and the server, models, ready, config and metadata checks; the
golden check is in golden.py, the dynamic batching and performance checks in loadchecks.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repo_builder.errors import DeploymentError
from repo_builder.triton.preview import served_by_us
from repo_builder.validate.configdiff import compare
from repo_builder.validate.connection import (
    Connection,
    Protocol,
    ServerError,
    dtype_name,
    strip_scheme,
    triton_datatype,
)
from repo_builder.validate.expected import ExpectedModel, ExpectedRepository, read_repository
from repo_builder.validate.golden import check_golden
from repo_builder.validate.loadchecks import check_dynamic_batching, check_performance
from repo_builder.validate.report import CheckResult, Report, Skip, error_text

if TYPE_CHECKING:
    from tritonclient.grpc.model_config_pb2 import ModelConfig

LOG = logging.getLogger(__name__)

#: every per-model check, in the order they run
MODEL_CHECKS: tuple[str, ...] = ("ready", "config", "metadata", "golden", "dynamic_batching", "performance")
DEFAULT_CONCURRENCY: tuple[int, ...] = (1, 4, 16)


#: words of a failed call that waited out its timeout (tritonclient over HTTP and gRPC, the load probe);
#: not the bare word "timeout", which config fields hold (default_timeout_microseconds)
_TIMED_OUT = ("timed out", "deadline exceeded", "deadline_exceeded", "no response within", "still running")


def _timed_out(detail: str) -> bool:
    text = detail.lower()
    return any(word in text for word in _TIMED_OUT)


class Validator:
    def __init__(
        self,
        repo: ExpectedRepository,
        url: str,
        protocol: Protocol,
        *,
        timeout: float,
        connect_grace: float,
        concurrency: Sequence[int],
        perf_duration: float,
        batching_requests: int,
        skip: Collection[str],
        served_configs: Mapping[str, ModelConfig],
        on_progress: Callable[[str], None],
        models: Collection[str] | None = None,
    ) -> None:
        self.repo = repo
        #: the models to check (None: all); the others may be served or not, either is fine
        self.selected = set(repo.models) if models is None else set(models)
        self.url = strip_scheme(url)
        self.protocol = protocol
        self.timeout = timeout
        self.connect_grace = connect_grace
        self.concurrency = [c for c in concurrency if c > 0]
        self.perf_duration = perf_duration
        #: seconds of load before each measured window (connections open, batches form)
        self.perf_warmup = min(0.5, max(0.1, perf_duration / 4))
        #: event loops generating the probe's load: 1 is a thread of this process (fastest on 2 cores,
        #: see benchmarks/README.md section 5); more spawn worker processes sharing the connections
        self.probe_processes = 1
        self.batching_requests = batching_requests
        self.skip = set(skip)
        self.served_configs = dict(served_configs)
        self.progress = on_progress
        self.report = Report(url=self.url, protocol=protocol, repository=str(repo.path))
        self.conn: Connection | None = None
        self.ready_models: set[str] = set()
        #: why the server is taken for gone (no answer, or none within a timeout): the remaining checks fail
        self.gone: str | None = None

    def connect(self) -> Connection:
        return Connection(self.url, self.protocol, self.timeout)

    # -- running checks -------------------------------------------------------------------
    def run_check(self, name: str, model: str | None, fn: Callable[[], tuple[str, dict[str, Any]]]) -> CheckResult:
        start = time.monotonic()
        if name in self.skip:
            result = CheckResult(name, "skip", "not requested", model)
        elif self.gone is not None:
            result = CheckResult(name, "fail", f"not checked: {self.gone}", model)
        else:
            try:
                detail, data = fn()
                result = CheckResult(name, "pass", detail, model, data=data)
            except Skip as e:
                result = CheckResult(name, "skip", str(e), model)
            except AssertionError as e:
                result = CheckResult(name, "fail", str(e), model)
            except Exception as e:  # a failing deployment is a result, never an exception
                result = CheckResult(name, "fail", error_text(e), model)
        result.duration_s = time.monotonic() - start
        if result.status == "fail" and self.gone is None and name != "server":
            self.gone = self._gone(result)
        self.report.checks.append(result)
        self.progress(
            f"{result.status.upper():4} {result.id}: {result.detail.splitlines()[0] if result.detail else ''}"
        )
        return result

    def silent(self) -> str | None:
        """None when the server answers a health check now, else why not (a fresh connection: the
        checks' may be stuck)."""
        with self.connect() as conn:
            return conn.answers()

    def _gone(self, failed: CheckResult) -> str | None:
        """After a failing check: why the server is taken for gone, or None when it still answers and the
        check did not wait out a timeout (a wrong output, a model error: the other checks go on)."""
        silent = self.silent()
        if silent is not None:
            return f"the server stopped answering during {failed.id} ({silent})"
        if _timed_out(failed.detail):
            return (
                f"the server answers health checks, but {failed.id} got no answer within the timeout "
                f"({self.timeout:g} s, --timeout); its other requests would wait as long"
            )
        return None

    def run(self) -> Report:
        start = time.monotonic()
        try:
            self.conn = self.connect()
            server = self.run_check("server", None, self.check_server)
            if server.status == "pass":
                self.run_check("models", None, self.check_models)
                if self.repo.manifest_error:
                    self.report.checks.append(CheckResult("manifest", "fail", self.repo.manifest_error))
                for model in self.repo.models.values():
                    if model.name in self.selected:
                        self.check_model(model)
            else:
                self.report.checks.append(
                    CheckResult("models", "skip", "not checked: the server is not reachable or not ready")
                )
        finally:
            if self.conn is not None:
                self.conn.close()
            self.report.duration_s = time.monotonic() - start
        return self.report

    def check_model(self, model: ExpectedModel) -> None:
        ready = self.run_check("ready", model.name, lambda: self.check_ready(model))
        checks: dict[str, Callable[[], tuple[str, dict[str, Any]]]] = {
            "config": lambda: self.check_config(model),
            "metadata": lambda: self.check_metadata(model),
            "golden": lambda: check_golden(self, model),
            "dynamic_batching": lambda: check_dynamic_batching(self, model),
            "performance": lambda: check_performance(self, model),
        }
        for name, fn in checks.items():
            if ready.status != "pass" and self.gone is None:
                self.report.checks.append(CheckResult(name, "skip", "not checked: the model is not ready", model.name))
            else:
                self.run_check(name, model.name, fn)

    # -- server and models ----------------------------------------------------------------
    def check_server(self) -> tuple[str, dict[str, Any]]:
        assert self.conn is not None
        start = time.monotonic()
        live = False
        last = "no answer"
        while True:
            try:
                live = self.conn.live() or live
                if live and self.conn.ready():
                    waited = time.monotonic() - start
                    return f"live and ready ({self.protocol} {self.url}, {waited:.1f} s)", {"waited_s": waited}
                last = "live but not ready" if live else "not live"
            except ServerError as e:
                raise AssertionError(f"Triton at {self.url} answers with an error: {e}") from None
            except Exception as e:
                last = error_text(e)
            elapsed = time.monotonic() - start
            if not live and elapsed >= self.connect_grace:
                raise AssertionError(
                    f"cannot reach Triton at {self.url} over {self.protocol} ({last}). "
                    "Is the server running and is the port right (HTTP 8000, gRPC 8001 by default)?"
                )
            if elapsed >= self.timeout:
                raise AssertionError(f"Triton at {self.url} is live but not ready after {self.timeout:.0f} s ({last})")
            time.sleep(0.25)

    def check_models(self) -> tuple[str, dict[str, Any]]:
        assert self.conn is not None
        index = self.conn.index()
        served: dict[str, list[dict[str, Any]]] = {}
        for entry in index:
            served.setdefault(entry["name"], []).append(entry)
        expected = set(self.selected)
        self.ready_models = {n for n, es in served.items() if any(e.get("state") == "READY" for e in es)}
        missing = sorted(expected - self.ready_models)
        unexpected = sorted(self.ready_models - set(self.repo.models))
        data = {
            "expected": sorted(expected),
            "ready": sorted(self.ready_models),
            "missing": missing,
            "unexpected": unexpected,
        }
        problems = []
        for name in missing:
            states = "; ".join(
                f"v{e.get('version') or '?'} {e.get('state') or 'UNKNOWN'}"
                + (f": {e['reason']}" if e.get("reason") else "")
                for e in served.get(name, [])
            )
            source = "config.pbtxt" if self.repo.models[name].config_path else "manifest.json only"
            problems.append(f"missing: {name} (in the repository's {source}; server: {states or 'not in its index'})")
        problems += [f"unexpected: {name} is served but not in the repository" for name in unexpected]
        if problems:
            raise AssertionError("\n".join(problems))
        return f"{len(expected)} models served, none missing, none unexpected", data

    def check_ready(self, model: ExpectedModel) -> tuple[str, dict[str, Any]]:
        assert self.conn is not None
        if not model.versions:
            raise AssertionError(f"no version of {model.name} found in the repository or the manifest")
        not_ready = [v for v in model.versions if not self.conn.model_ready(model.name, v)]
        if not_ready:
            reasons = {
                str(e.get("version")): f"{e.get('state') or 'UNKNOWN'} {e.get('reason') or ''}".strip()
                for e in self.conn.index()
                if e["name"] == model.name
            }
            lines = [f"version {v}: {reasons.get(str(v), 'not in the server index')}" for v in not_ready]
            raise AssertionError(f"{model.name} is not READY:\n" + "\n".join(lines))
        return f"versions {', '.join(map(str, model.versions))} READY", {"versions": model.versions}

    # -- config and metadata --------------------------------------------------------------
    def check_config(self, model: ExpectedModel) -> tuple[str, dict[str, Any]]:
        assert self.conn is not None
        if model.config_error:
            raise AssertionError(f"the repository's config.pbtxt does not parse: {model.config_error}")
        if model.config is None:
            raise Skip("no config.pbtxt in the repository (model named by the manifest only)")
        served = self.conn.config(model.name)
        expected = self.served_configs.get(model.name)
        if expected is None:  # `repo-builder serve` in another process: known by its markers
            expected = served_by_us(model.config, served)
        preview = expected is not None
        expected = expected if expected is not None else model.config
        differences, filled = compare(expected, served)
        rewritten = "config.pbtxt as the embedded server rewrites it (preview, placement)"
        against = rewritten if preview else str(model.config_path)
        if differences:
            raise AssertionError(
                f"served config differs from {against} in {len(differences)} field(s):\n" + "\n".join(differences)
            )
        note = f"; filled in by the server: {', '.join(filled)}" if filled else ""
        return f"equal to {against}{note}", {"server_filled": filled, "preview": preview}

    def check_metadata(self, model: ExpectedModel) -> tuple[str, dict[str, Any]]:
        assert self.conn is not None
        meta = self.conn.metadata(model.name)
        problems: list[str] = []
        expected: dict[str, dict[str, tuple[str, list[int]]]] = {"inputs": {}, "outputs": {}}
        batch = [-1] if model.max_batch_size > 0 else []
        if model.config is not None:
            for key, tensors in (("inputs", model.config.input), ("outputs", model.config.output)):
                for t in tensors:
                    dtype = triton_datatype(dtype_name(t.data_type))
                    expected[key][t.name] = (dtype, batch + list(t.dims))
        for key in ("inputs", "outputs"):
            for t in getattr(model.manifest, key) or []:
                dtype = triton_datatype(t.dtype)
                want = (dtype, batch + list(t.dims))
                have = expected[key].setdefault(t.name, want)
                if have != want:
                    problems.append(f"{key[:-1]} {t.name!r}: config.pbtxt says {have}, manifest.json says {want}")
        for key in ("inputs", "outputs"):
            got = {t["name"]: (t["datatype"], t["shape"]) for t in meta.get(key, [])}
            for name in sorted(set(expected[key]) - set(got)):
                problems.append(f"{key[:-1]} {name!r} expected but not served")
            for name in sorted(set(got) - set(expected[key])):
                problems.append(f"{key[:-1]} {name!r} served but not expected")
            for name in sorted(set(got) & set(expected[key])):
                (want_type, want_shape), (got_type, got_shape) = expected[key][name], got[name]
                if want_type != got_type:
                    problems.append(f"{key[:-1]} {name!r}: datatype expected {want_type}, served {got_type}")
                if list(want_shape) != list(got_shape):
                    problems.append(f"{key[:-1]} {name!r}: shape expected {want_shape}, served {got_shape}")
        if problems:
            raise AssertionError("metadata differs:\n" + "\n".join(problems))
        n_in, n_out = len(meta.get("inputs", [])), len(meta.get("outputs", []))
        return f"{n_in} input(s), {n_out} output(s): names, datatypes and shapes match", {"metadata": meta}


def validate(
    repository: Path,
    url: str,
    protocol: Protocol = "http",
    *,
    timeout: float = 10.0,
    connect_grace: float = 2.0,
    concurrency: Sequence[int] = DEFAULT_CONCURRENCY,
    perf_duration: float = 1.0,
    batching_requests: int = 64,
    skip: Collection[str] = (),
    served_configs: Mapping[str, ModelConfig] | None = None,
    on_progress: Callable[[str], None] | None = None,
    models: Collection[str] | None = None,
) -> Report:
    """Check the Triton server at `url` against `repository`; every problem is a failing check.

    timeout: per call, and the deadline for the server to become ready; connect_grace: how long an
    unreachable server (connection refused) is retried before the report fails. skip: check names
    not to run (e.g. {"performance"}). served_configs: configs a server is known to serve in place
    of the repository's (the embedded server's previews and placements: `ServedRepository.configs()`).
    models: the names of the repository's models to check (None: all); the server must serve these,
    may serve the repository's others, and must serve nothing the repository does not hold.
    on_progress: called with one line per finished check ("PASS mlp/golden: ...").
    Raises DeploymentError when the repository itself cannot be read or names in `models` are not in it.
    """
    unknown = set(skip) - set(MODEL_CHECKS)
    if unknown:
        raise DeploymentError(
            f"unknown check(s) to skip: {', '.join(sorted(unknown))}; known: {', '.join(MODEL_CHECKS)}"
        )
    repo = read_repository(Path(repository))
    if models is not None:
        not_held = [m for m in dict.fromkeys(models) if m not in repo.models]
        if not_held:
            raise DeploymentError(
                f"no model named {', '.join(map(repr, not_held))} in {repo.path}; "
                f"its models: {', '.join(sorted(repo.models)) or '(none)'}"
            )
    validator = Validator(
        repo,
        url,
        protocol,
        timeout=timeout,
        connect_grace=connect_grace,
        concurrency=concurrency,
        perf_duration=perf_duration,
        batching_requests=batching_requests,
        skip=skip,
        served_configs=served_configs or {},
        on_progress=on_progress or (lambda message: LOG.info("%s", message)),
        models=models,
    )
    return validator.run()
