"""Validate a running Triton server against a repository: readiness, configs, metadata, golden
outputs, dynamic batching and a short performance probe. Never raises for a failing deployment:
every problem becomes a failing check in the Report.

A server that stops answering ends the run fast: after a failing check the validator asks the server
for its health (a few seconds at most); when it gets no answer, or the check waited out a call's timeout,
every remaining check fails at once with that one reason instead of waiting for its own timeouts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repo_builder.errors import DeploymentError
from repo_builder.triton.preview import served_by_us
from repo_builder.validate.configdiff import compare
from repo_builder.validate.connection import Connection, Protocol, ServerError, strip_scheme, triton_datatype
from repo_builder.validate.expected import ExpectedModel, ExpectedRepository, read_repository
from repo_builder.validate.load import Target, check_sample, grpc_request, http_request, run_load
from repo_builder.validate.report import CheckResult, Report
from repo_builder.verify.compare import on_device

if TYPE_CHECKING:
    import numpy as np
    from tritonclient.grpc.model_config_pb2 import ModelConfig

LOG = logging.getLogger(__name__)

#: every per-model check, in the order they run
MODEL_CHECKS: tuple[str, ...] = ("ready", "config", "metadata", "golden", "dynamic_batching", "performance")
DEFAULT_CONCURRENCY: tuple[int, ...] = (1, 4, 16)


class _Skip(Exception):
    """Raised inside a check to record it as skipped with a reason."""


def _dtype_name(value: int) -> str:
    from tritonclient.grpc.model_config_pb2 import DataType

    return str(DataType.Name(value))


def _value(v: Any) -> str:
    return (
        f"{float(v):.8g}"
        if isinstance(v, (int, float)) or (getattr(v, "dtype", None) is not None and (v.dtype.kind in "fiub"))
        else repr(v)
    )


def _error_text(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text if type(e).__name__ in text else f"{type(e).__name__}: {text}"


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
            except _Skip as e:
                result = CheckResult(name, "skip", str(e), model)
            except AssertionError as e:
                result = CheckResult(name, "fail", str(e), model)
            except Exception as e:  # a failing deployment is a result, never an exception
                result = CheckResult(name, "fail", _error_text(e), model)
        result.duration_s = time.monotonic() - start
        if result.status == "fail" and self.gone is None and name != "server":
            self.gone = self._gone(result)
        self.report.checks.append(result)
        self.progress(
            f"{result.status.upper():4} {result.id}: {result.detail.splitlines()[0] if result.detail else ''}"
        )
        return result

    def _silent(self) -> str | None:
        """None when the server answers a health check now, else why not (a fresh connection: the
        checks' may be stuck)."""
        with self.connect() as conn:
            return conn.answers()

    def _gone(self, failed: CheckResult) -> str | None:
        """After a failing check: why the server is taken for gone, or None when it still answers and the
        check did not wait out a timeout (a wrong output, a model error: the other checks go on)."""
        silent = self._silent()
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
            "golden": lambda: self.check_golden(model),
            "dynamic_batching": lambda: self.check_dynamic_batching(model),
            "performance": lambda: self.check_performance(model),
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
                last = _error_text(e)
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
            raise _Skip("no config.pbtxt in the repository (model named by the manifest only)")
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
                    dtype = triton_datatype(_dtype_name(t.data_type))
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

    # -- inference --------------------------------------------------------------------------
    def datatypes(self, model: ExpectedModel, inputs: Mapping[str, np.ndarray]) -> dict[str, str]:
        from repo_builder.triton.dtypes import from_numpy

        types = {}
        if model.config is not None:
            types = {t.name: triton_datatype(_dtype_name(t.data_type)) for t in model.config.input}
        return {name: types.get(name) or triton_datatype(from_numpy(v.dtype)) for name, v in inputs.items()}

    def sample(self, model: ExpectedModel) -> tuple[dict[str, np.ndarray], list[str]]:
        """One request's inputs (batch 1 when batching): from the reference, else zeros (strings: "0", which
        a model that parses numbers accepts too); and output names."""
        import numpy as np

        from repo_builder.triton.dtypes import to_numpy

        ref = self.repo.reference(model) if model.manifest.reference else None
        if ref is not None:
            inputs, outputs = ref
            if model.max_batch_size > 0:
                inputs = {k: v[:1] for k, v in inputs.items()}
            return inputs, list(outputs)
        if model.config is None:
            raise _Skip("no reference and no config.pbtxt to make inputs from")
        batch = [1] if model.max_batch_size > 0 else []
        inputs = {}
        for t in model.config.input:
            short = _dtype_name(t.data_type).removeprefix("TYPE_")
            shape = batch + [1 if d < 0 else int(d) for d in t.dims]
            dtype = np.dtype(object) if short == "STRING" else np.dtype(to_numpy(short))
            inputs[t.name] = np.zeros(shape, dtype=dtype) if short != "STRING" else np.full(shape, b"0", dtype=object)
        return inputs, [t.name for t in model.config.output]

    def check_golden(self, model: ExpectedModel) -> tuple[str, dict[str, Any]]:
        import numpy as np

        assert self.conn is not None
        if self.repo.manifest is None:
            raise _Skip("no repo_builder_manifest.json: no reference outputs to compare with")
        if not model.manifest.reference:
            raise _Skip("the manifest has no reference for this model" + (" (ensemble)" if model.is_ensemble else ""))
        ref = self.repo.reference(model)
        assert ref is not None
        inputs, outputs = ref
        if not inputs or not outputs:
            raise AssertionError(f"reference {model.manifest.reference} has no input/ or output/ arrays")
        device = self.device(model)
        tol = on_device(model.tolerance, device)
        mbs = model.max_batch_size
        if mbs > 0:
            rows = min(len(v) for v in list(inputs.values()) + list(outputs.values()))
            sizes = sorted({b for b in (1, (mbs + 1) // 2, mbs) if b <= rows}) or [rows]
        else:
            sizes = [0]
        types = self.datatypes(model, inputs)
        problems: list[str] = []
        worst: dict[str, float] = {}
        for version in model.versions:
            for b in sizes:
                feed = {k: v[:b] for k, v in inputs.items()} if b else inputs
                want = {k: v[:b] for k, v in outputs.items()} if b else outputs
                got = self.conn.infer(model.name, feed, types, list(want), version)
                label = f"v{version} batch {b}" if b else f"v{version}"
                for name, expected in want.items():
                    served = got[name]
                    if served is None:
                        problems.append(f"{label}, output {name!r}: not returned")
                        continue
                    if served.shape != expected.shape:
                        problems.append(
                            f"{label}, output {name!r}: shape {list(served.shape)}, reference {list(expected.shape)}"
                        )
                        continue
                    if expected.dtype.kind in "OSUb" or served.dtype.kind in "OSU":
                        bad = ~np.equal(served.astype(expected.dtype), expected)
                        err = float(bad.sum())
                    else:
                        diff = np.abs(served.astype(np.float64) - expected.astype(np.float64))
                        bad = diff > tol["atol"] + tol["rtol"] * np.abs(expected.astype(np.float64))
                        err = float(diff.max()) if diff.size else 0.0
                    worst[name] = max(worst.get(name, 0.0), err)
                    if bad.any():
                        at = tuple(int(i) for i in np.argwhere(bad)[0])
                        problems.append(
                            f"{label}, output {name!r}: {int(bad.sum())} of {bad.size} values beyond "
                            f"atol={tol['atol']:g} rtol={tol['rtol']:g}; max |diff| {err:.3g}; "
                            f"first at {list(at)}: served {_value(served[at])}, "
                            f"reference {_value(expected[at])}"
                        )
        data = {"batch_sizes": sizes, "max_abs_error": worst, "tolerance": tol, "device": device}
        if problems:
            raise AssertionError(f"outputs computed on the {device} differ from the reference:\n" + "\n".join(problems))
        where = f"batch sizes {', '.join(map(str, sizes))}" if sizes != [0] else "no batching"
        errors = ", ".join(f"{k} {v:.2g}" for k, v in worst.items())
        return f"matches the reference on the {device} at {where} (max |diff|: {errors})", data

    def device(self, model: ExpectedModel, seen: frozenset[str] = frozenset()) -> str:
        """Where the server computes `model`: "GPU" when an instance group of it (of a step, for an
        ensemble) is on a GPU, else "CPU"."""
        from tritonclient.grpc.model_config_pb2 import ModelInstanceGroup

        assert self.conn is not None
        served = self.conn.config(model.name)
        if any(g.kind == ModelInstanceGroup.KIND_GPU for g in served.instance_group):
            return "GPU"
        steps = {s.model_name for s in served.ensemble_scheduling.step} - seen - {model.name}
        for name in sorted(steps):
            step = self.repo.models.get(name)
            if step is not None and self.device(step, seen | {model.name}) == "GPU":
                return "GPU"
        return "CPU"

    def _concurrent(
        self, model: ExpectedModel, threads: int, *, requests: int = 0, duration: float = 0.0
    ) -> tuple[list[float], list[str], float]:
        """Send batch-1 requests from `threads` connections: a fixed number, or for `duration` seconds.
        Returns (latencies in s, errors, elapsed s)."""
        inputs, outputs = self.sample(model)
        types = self.datatypes(model, inputs)
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        counter = iter(range(requests)) if requests else None
        barrier = threading.Barrier(threads + 1)
        stop_at = [0.0]

        def worker() -> None:
            conn = None
            try:
                conn = self.connect()
                barrier.wait(self.timeout)
                while True:
                    if counter is not None:
                        with lock:
                            if next(counter, None) is None:
                                return
                    elif time.monotonic() >= stop_at[0]:
                        return
                    t0 = time.monotonic()
                    try:
                        conn.infer(model.name, inputs, types, outputs)
                    except Exception as e:
                        with lock:
                            errors.append(_error_text(e))
                        if len(errors) > 20:
                            return
                        continue
                    with lock:
                        latencies.append(time.monotonic() - t0)
            except threading.BrokenBarrierError:
                with lock:
                    errors.append("a client could not start in time")
            finally:
                if conn is not None:
                    conn.close()

        pool = [threading.Thread(target=worker, daemon=True, name=f"validate-{i}") for i in range(threads)]
        for t in pool:
            t.start()
        try:
            barrier.wait(self.timeout)
        except threading.BrokenBarrierError:
            errors.append("clients could not start in time")
        start = time.monotonic()
        stop_at[0] = start + duration
        limit = (duration if duration else self.timeout * max(1, requests)) + self.timeout + 5
        for t in pool:
            t.join(max(0.0, start + limit - time.monotonic()))
        if any(t.is_alive() for t in pool):
            errors.append(f"requests still running after {limit:.0f} s (abandoned)")
        return latencies, errors, time.monotonic() - start

    def check_dynamic_batching(self, model: ExpectedModel) -> tuple[str, dict[str, Any]]:
        assert self.conn is not None
        if not model.dynamic_batching:
            reason = (
                "max_batch_size <= 1"
                if model.config is not None and model.config.HasField("dynamic_batching")
                else "no dynamic_batching in config.pbtxt"
            )
            raise _Skip(reason)
        threads = 16
        rounds = []
        for _ in range(3):  # batches form as soon as requests queue up; a busy host may need another round
            before = self.conn.statistics(model.name)
            _, errors, _ = self._concurrent(model, threads, requests=self.batching_requests)
            after = self.conn.statistics(model.name)
            if errors:
                raise AssertionError(f"{len(errors)} of {self.batching_requests} requests failed: {errors[0]}")
            inferences = after["inference_count"] - before["inference_count"]
            executions = after["execution_count"] - before["execution_count"]
            rounds.append({"inference_count": inferences, "execution_count": executions})
            if 0 < executions < inferences:
                return (
                    f"{self.batching_requests} concurrent requests of batch 1 from {threads} clients ran in "
                    f"{executions} executions (inference_count +{inferences}, average batch "
                    f"{inferences / executions:.1f})",
                    {"rounds": rounds},
                )
        raise AssertionError(
            f"no batches formed: over {len(rounds)} rounds of {self.batching_requests} concurrent requests, "
            f"execution_count grew as much as inference_count ({rounds}). Check dynamic_batching and "
            "max_queue_delay_microseconds in config.pbtxt."
        )

    def probe_target(self, model: ExpectedModel) -> tuple[Target, list[str]]:
        """The performance probe's request, encoded once: the golden check's request (reference inputs,
        batch 1 when batching) for the model's default version; and the outputs it asks for."""
        inputs, outputs = self.sample(model)
        types = self.datatypes(model, inputs)
        if self.protocol == "http":
            payload = http_request(self.url, model.name, inputs, types, outputs)
        else:
            payload = grpc_request(model.name, inputs, types, outputs)
        return Target(self.protocol, self.url, payload, self.timeout), outputs

    def check_performance(self, model: ExpectedModel) -> tuple[str, dict[str, Any]]:
        import numpy as np

        assert self.conn is not None
        if not self.concurrency:
            raise _Skip("no concurrency levels requested")
        conn = self.conn
        target, outputs = self.probe_target(model)
        thresholds = model.thresholds
        levels = []
        problems = []
        for c in self.concurrency:
            load = run_load(
                target,
                c,
                duration=self.perf_duration,
                warmup=self.perf_warmup,
                processes=self.probe_processes,
                statistics=lambda: conn.statistics(model.name),
            )
            ms = np.array(load.latencies) * 1000.0
            level: dict[str, Any] = {
                "concurrency": c,
                "requests": len(load.latencies),
                "errors": load.errors,
                "p50_ms": float(np.percentile(ms, 50)) if ms.size else None,
                "p95_ms": float(np.percentile(ms, 95)) if ms.size else None,
                "p99_ms": float(np.percentile(ms, 99)) if ms.size else None,
                "throughput": load.throughput,
                "window_s": load.window_s,
                "processes": load.processes,
            }
            if load.stats is not None:
                before, after, seconds = load.stats
                inferences = after["inference_count"] - before["inference_count"]
                executions = after["execution_count"] - before["execution_count"]
                level["server"] = {
                    "inference_count": inferences,
                    "execution_count": executions,
                    "window_s": seconds,
                    "throughput": inferences / seconds if seconds > 0 else 0.0,
                    "executions_per_s": executions / seconds if seconds > 0 else 0.0,
                    "average_batch": inferences / executions if executions else None,
                }
            levels.append(level)
            if load.errors or load.messages:
                problems.append(
                    f"concurrency {c}: {load.errors} request(s) failed: "
                    + (load.messages[0] if load.messages else "no message")
                )
                if self._silent() is not None:  # no higher level: the run stops here
                    break
            if load.sample is not None and (wrong := check_sample(self.protocol, load.sample, outputs)):
                problems.append(f"concurrency {c}: {wrong}")
            limit = thresholds.get("p99_latency_ms")
            p99 = level["p99_ms"]
            if limit is not None and p99 is not None and p99 > limit:
                problems.append(f"concurrency {c}: p99 {p99:.1f} ms > p99_latency_ms {limit:g}")
        best = max((float(lv["throughput"] or 0.0) for lv in levels), default=0.0)
        minimum = thresholds.get("min_throughput")
        if minimum is not None and best < minimum:
            problems.append(f"best throughput {best:.1f} infer/s < min_throughput {minimum:g}")
        summary = "; ".join(_level_summary(lv) for lv in levels)
        data = {
            "levels": levels,
            "thresholds": thresholds,
            "duration_s": self.perf_duration,
            "warmup_s": self.perf_warmup,
            "request_bytes": len(target.payload),
        }
        if problems:
            raise AssertionError("\n".join(problems) + "\n" + summary)
        return summary + ("" if thresholds else " (no thresholds in the manifest)"), data


def _level_summary(level: Mapping[str, Any]) -> str:
    """c=8: p50/p95/p99 1.1/2.3/4.0 ms, 5210 infer/s (server 5230 infer/s, average batch 3.1)"""
    latency = "/".join(f"{level[k]:.1f}" for k in ("p50_ms", "p95_ms", "p99_ms")) if level["requests"] else "-"
    text = f"c={level['concurrency']}: p50/p95/p99 {latency} ms, {level['throughput']:.0f} infer/s"
    server = level.get("server")
    if server:
        batch = server["average_batch"]
        text += f" (server {server['throughput']:.0f} infer/s" + (f", average batch {batch:.1f})" if batch else ")")
    return text


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
