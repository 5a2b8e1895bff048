"""The performance probe's load generator: `concurrency` requests in flight, one connection each (like
wrk -c), every request encoded once before the timed window and sent as the same bytes again and again.

HTTP: raw HTTP/1.1 keep-alive connections (asyncio protocols) sending the pre-built request (Triton's binary
tensor extension, as tritonclient sends it) and reading the status line, the headers and exactly
Content-Length bytes. gRPC: one grpc.aio channel per stream calling ModelInfer with a pre-serialized
ModelInferRequest. Either way no numpy, no JSON and no protobuf is touched per request, so the client costs
the server (which shares the machine's cores) as little as Python allows.

Every request is timed with perf_counter from send to the full response. Only requests that complete inside
the window [t0, t1] count towards latency and throughput; the warm-up before it connects and fills the
pipeline. A request is failed by a non-200 status (gRPC: any error status), a closed connection or no
answer within `timeout`; failures are counted whenever they happen. The run ends by itself: nothing new is
sent after t1, and in-flight requests are abandoned `timeout` later.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import threading
import time
from array import array
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from repo_builder.validate.report import error_text

if TYPE_CHECKING:
    from multiprocessing.connection import Connection as Pipe

    import numpy as np

LOG = logging.getLogger(__name__)

Protocol = Literal["http", "grpc"]
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
#: error messages kept per worker; every error is counted
MAX_MESSAGES = 5
#: how long a worker process may take to start and open its connections, on top of `timeout`
STARTUP_S = 30.0


@dataclass(frozen=True)
class Target:
    """What to send where: `payload` is a whole HTTP/1.1 request (request line, headers and body) or a
    serialized gRPC ModelInferRequest."""

    protocol: Protocol
    address: str  # host:port
    payload: bytes
    timeout: float


@dataclass
class Load:
    """The result of one run at one concurrency."""

    concurrency: int
    processes: int
    window_s: float
    latencies: list[float] = field(default_factory=list)  # s, successful requests completed in the window
    errors: int = 0
    messages: list[str] = field(default_factory=list)  # the first error messages
    sample: bytes | None = None  # one successful response, to check what was measured
    #: the server's statistics at the start and the end of the window, and the seconds between the two reads
    stats: tuple[Mapping[str, int], Mapping[str, int], float] | None = None

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.window_s if self.window_s > 0 else 0.0


# ------------------------------------------------------------------------------------------ encoding


def http_request(
    address: str,
    model: str,
    inputs: Mapping[str, np.ndarray],
    datatypes: Mapping[str, str],
    outputs: Sequence[str],
    version: int | str = "",
) -> bytes:
    """The whole HTTP/1.1 request tritonclient would send for these inputs (binary tensor data)."""
    import tritonclient.http as httpclient

    items = []
    for name, value in inputs.items():
        item = httpclient.InferInput(name, list(value.shape), datatypes[name])
        item.set_data_from_numpy(value)  # binary_data=True, as Connection.infer sends it
        items.append(item)
    requested = [httpclient.InferRequestedOutput(o) for o in outputs]
    body, json_size = httpclient.InferenceServerClient.generate_request_body(items, outputs=requested)
    path = f"/v2/models/{model}" + (f"/versions/{version}" if str(version) else "") + "/infer"
    head = [f"POST {path} HTTP/1.1", f"Host: {address}", "Connection: keep-alive"]
    if json_size is None:
        head.append("Content-Type: application/json")
    else:
        head += ["Content-Type: application/octet-stream", f"Inference-Header-Content-Length: {json_size}"]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def grpc_request(
    model: str,
    inputs: Mapping[str, np.ndarray],
    datatypes: Mapping[str, str],
    outputs: Sequence[str],
    version: int | str = "",
) -> bytes:
    """A serialized ModelInferRequest with the inputs as raw contents, as tritonclient builds it."""
    import numpy as np
    from tritonclient.grpc import service_pb2
    from tritonclient.utils import serialize_byte_tensor

    request = service_pb2.ModelInferRequest(model_name=model, model_version=str(version))
    for name, value in inputs.items():
        request.inputs.add(name=name, datatype=datatypes[name], shape=list(value.shape))
        if datatypes[name] == "BYTES":
            raw = serialize_byte_tensor(value)
            request.raw_input_contents.append(raw.item() if raw.size else b"")
        else:
            request.raw_input_contents.append(np.ascontiguousarray(value).tobytes())
    for name in outputs:
        request.outputs.add(name=name)
    return bytes(request.SerializeToString())


def check_sample(protocol: Protocol, sample: bytes, outputs: Sequence[str]) -> str | None:
    """None when `sample` (one successful response) is an inference response holding every requested
    output, else what is wrong with it."""
    try:
        if protocol == "grpc":
            from tritonclient.grpc import service_pb2

            got = [o.name for o in service_pb2.ModelInferResponse.FromString(sample).outputs]
        else:
            head, _, body = sample.partition(b"\r\n\r\n")
            size = None
            for line in head.split(b"\r\n")[1:]:
                key, _, value = line.partition(b":")
                if key.strip().lower() == b"inference-header-content-length":
                    size = int(value)
            header = json.loads(body[:size] if size is not None else body)
            got = [o["name"] for o in header.get("outputs", [])]
    except Exception as e:
        return f"the response does not parse as an inference response: {error_text(e)}"
    missing = [o for o in outputs if o not in got]
    if missing:
        return f"the response lacks output(s) {', '.join(missing)} (has {', '.join(got) or 'none'})"
    return None


# ------------------------------------------------------------------------------------------- workers


class _Run:
    """One worker's share of the connections, on one event loop; state shared by its streams."""

    def __init__(self, target: Target, t0: float, t1: float) -> None:
        self.target = target
        self.t0, self.t1 = t0, t1  # perf_counter
        self.latencies = array("d")
        self.errors = 0
        self.messages: list[str] = []
        self.sample: bytes | None = None
        self.active = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.messages) < MAX_MESSAGES:
            self.messages.append(message)

    def ok(self, sent: float, done: float, response: bytes | None) -> None:
        if self.t0 <= done <= self.t1:
            self.latencies.append(done - sent)
        if self.sample is None and response is not None:
            self.sample = response

    def stream_ended(self) -> None:
        self.active -= 1
        if self.active <= 0 and not self.done.done():
            self.done.set_result(None)

    def result(self) -> tuple[Any, ...]:
        return ("done", self.latencies, self.errors, self.messages, self.sample)


class _HttpStream(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self, run: _Run, payload: bytes) -> None:
        self.run = run
        self.payload = payload
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.need = -1  # bytes of the whole response once its header is read
        self.status_ok = False
        self.sent = 0.0
        self.busy = False
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self) -> None:
        assert self.transport is not None
        self.busy = True
        self.sent = time.perf_counter()
        self.transport.write(self.payload)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if self.need < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > 65536:
                    self.abort("a response header longer than 64 KiB")
                return
            head = bytes(buf[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                self.abort(f"a response without Content-Length: {head[:200]!r}")
                return
            eol = head.find(b"\r\n", at + 2)
            self.need = end + 4 + int(head[at + 17 : eol if eol >= 0 else len(head)])
            self.status_ok = head[9:12] == b"200"
        if len(buf) < self.need:
            return
        done = time.perf_counter()
        run = self.run
        if self.status_ok:
            run.ok(self.sent, done, bytes(buf[: self.need]) if run.sample is None else None)
        else:
            status, _, rest = bytes(buf[: self.need]).partition(b"\r\n")
            body = rest.partition(b"\r\n\r\n")[2]
            run.error(f"{status.decode('latin-1')}: {body[:300].decode('utf-8', 'replace')}")
        del buf[: self.need]
        self.need = -1
        self.busy = False
        if done < run.t1:
            self.send()
        else:
            self.finish()

    def abort(self, message: str) -> None:
        """Fail the request in flight and drop the connection (a new one replaces it)."""
        self.run.error(message)
        self.busy = False
        if self.transport is not None:
            self.transport.abort()

    def finish(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.busy:
            self.busy = False
            self.run.error(f"the server closed the connection{f' ({exc})' if exc else ''}")
        if not self.closed.done():
            self.closed.set_result(None)


async def _http_connect(run: _Run, host: str, port: int) -> _HttpStream:
    loop = asyncio.get_running_loop()
    _, stream = await asyncio.wait_for(
        loop.create_connection(lambda: _HttpStream(run, run.target.payload), host, port),
        run.target.timeout,
    )
    return stream


async def _http_slot(run: _Run, first: _HttpStream) -> None:
    """One in-flight request: a connection, replaced when it is lost before t1; a watchdog for timeouts."""
    stream: _HttpStream | None = first
    timeout = run.target.timeout
    host, _, port = run.target.address.rpartition(":")
    try:
        while stream is not None:
            stream.send()
            while not stream.closed.done():
                await asyncio.wait({stream.closed}, timeout=min(0.1, timeout))
                if stream.busy and time.perf_counter() - stream.sent > timeout:
                    stream.abort(f"no response within {timeout:g} s")
            stream = None
            if time.perf_counter() < run.t1:
                try:
                    stream = await _http_connect(run, host, int(port))
                except Exception as e:
                    run.error(f"cannot reconnect to {run.target.address}: {error_text(e)}")
    finally:
        run.stream_ended()


async def _http(run: _Run, streams: list[_HttpStream]) -> None:
    await asyncio.gather(*(_http_slot(run, s) for s in streams))


async def _grpc_slot(run: _Run, call: Any) -> None:
    import grpc  # type: ignore[import-untyped]

    timeout = run.target.timeout
    payload = run.target.payload
    perf_counter = time.perf_counter
    try:
        while True:
            sent = perf_counter()
            try:
                response = await call(payload, timeout=timeout)
            except grpc.aio.AioRpcError as e:
                run.error(f"gRPC {e.code().name}: {e.details()}")
            else:
                done = perf_counter()
                if run.t0 <= done <= run.t1:
                    run.latencies.append(done - sent)
                if run.sample is None:
                    run.sample = response
            if perf_counter() >= run.t1:
                return
    finally:
        run.stream_ended()


async def _drive(target: Target, connections: int, pipe: Pipe) -> tuple[Any, ...]:
    """Open `connections`, say ready, wait for the window, load until it ends; the worker's result."""
    loop = asyncio.get_running_loop()
    timeout = target.timeout
    run = _Run(target, math.inf, math.inf)
    channels: list[Any] = []
    try:
        if target.protocol == "http":
            host, _, port = target.address.rpartition(":")
            streams = list(await asyncio.gather(*(_http_connect(run, host, int(port)) for _ in range(connections))))
        else:
            import grpc

            # a local subchannel pool: one TCP connection per channel, as one connection per wrk stream
            channels = [
                grpc.aio.insecure_channel(
                    target.address,
                    options=[("grpc.use_local_subchannel_pool", 1), ("grpc.max_receive_message_length", -1)],
                )
                for _ in range(connections)
            ]
            await asyncio.wait_for(asyncio.gather(*(c.channel_ready() for c in channels)), timeout)
            calls = [c.unary_unary(MODEL_INFER) for c in channels]  # bytes in, bytes out
        pipe.send(("ready",))
        window = await loop.run_in_executor(None, _receive, pipe, STARTUP_S + timeout)
        if window is None:
            return ("error", "no start signal")
        offset = time.perf_counter() - time.monotonic()
        run.t0, run.t1 = window[0] + offset, window[1] + offset
        run.active = connections
        work: Awaitable[Any]
        if target.protocol == "http":
            work = _http(run, streams)
        else:
            work = asyncio.gather(*(_grpc_slot(run, call) for call in calls))
        try:
            await asyncio.wait_for(work, max(0.0, run.t1 - time.perf_counter()) + timeout + 1.0)
        except asyncio.TimeoutError:
            run.error(f"requests still running {timeout:g} s after the window (abandoned)")
        if target.protocol == "http":
            for s in streams:
                s.finish()
        return run.result()
    finally:
        for c in channels:
            await c.close()


def _receive(pipe: Pipe, seconds: float) -> Any:
    """The next message within `seconds`, or None (also when the other end is gone)."""
    try:
        return pipe.recv() if pipe.poll(max(0.0, seconds)) else None
    except (EOFError, OSError):
        return None


def _worker(target: Target, connections: int, pipe: Pipe) -> None:
    """A worker's entry point (a thread, or a spawned process): runs its connections, sends its result."""
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(_loop_exception)
    try:
        result = loop.run_until_complete(_drive(target, connections, pipe))
    except BaseException as e:  # reported to the parent, which fails the run
        result = ("error", error_text(e))
    finally:  # as asyncio.run ends, with the exception handler set from the start
        with contextlib.suppress(BaseException):
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    try:
        pipe.send(result)
    finally:
        pipe.close()


def _loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """What asyncio would print as a traceback, logged quietly instead. grpc.aio hands completions of
    requests abandoned with a loop (a server that stopped answering) to that closed loop from the next
    one ("Event loop is closed"): nothing to report, the requests were counted as failed already."""
    exception = context.get("exception")
    if isinstance(exception, RuntimeError) and "Event loop is closed" in str(exception):
        return
    LOG.debug("load probe: %s", context.get("message"), exc_info=exception)


# ------------------------------------------------------------------------------------------------ run


def run_load(
    target: Target,
    concurrency: int,
    *,
    duration: float,
    warmup: float = 0.25,
    processes: int = 1,
    statistics: Callable[[], Mapping[str, int]] | None = None,
) -> Load:
    """Keep `concurrency` requests in flight for `warmup` + `duration` seconds; measure the last `duration`.

    processes: 1 runs the event loop in a thread of this process; more spawn worker processes, each with
    its share of the connections. statistics: read at the start and the end of the window (the server's
    own counts, e.g. Connection.statistics of the model); a failing read is reported, not raised.
    """
    import multiprocessing

    n = max(1, min(processes, concurrency))
    shares = [concurrency // n + (i < concurrency % n) for i in range(n)]
    load = Load(concurrency=concurrency, processes=n, window_s=duration)
    workers: list[Any] = []
    pipes: list[Pipe] = []
    ctx = multiprocessing.get_context("spawn")
    for i, share in enumerate(shares):
        mine, theirs = ctx.Pipe()
        args = (target, share, theirs)
        if n == 1:
            worker: Any = threading.Thread(target=_worker, args=args, daemon=True, name=f"probe-{i}")
        else:
            worker = ctx.Process(target=_worker, args=args, daemon=True, name=f"probe-{i}")
        worker.start()
        workers.append(worker)
        pipes.append(mine)
    try:
        wait = STARTUP_S + target.timeout
        deadline = time.monotonic() + wait
        for pipe in pipes:
            msg = _receive(pipe, deadline - time.monotonic())
            if msg is None:
                load.messages.append(f"the load generator did not start within {wait:.0f} s")
                break
            if msg[0] != "ready":
                load.messages.append(f"cannot start the load: {msg[1]}")
                break
        if load.messages:
            load.errors = len(load.messages)
            for pipe in pipes:
                with contextlib.suppress(OSError):
                    pipe.send(None)
            return load
        t0 = time.monotonic() + warmup
        t1 = t0 + duration
        for pipe in pipes:
            pipe.send((t0, t1))
        before = None
        if statistics is not None:
            try:
                time.sleep(max(0.0, t0 - time.monotonic()))
                s0 = time.monotonic()
                before = statistics()
                time.sleep(max(0.0, t1 - time.monotonic()))
                s1 = time.monotonic()
                load.stats = (before, statistics(), s1 - s0)
            except Exception as e:
                load.messages.append(f"cannot read the server's statistics: {error_text(e)}")
        limit = t1 + target.timeout + 5.0
        for pipe in pipes:
            msg = _receive(pipe, limit - time.monotonic())
            if msg is None:
                load.errors += 1
                load.messages.append("a load worker did not report (abandoned)")
                continue
            if msg[0] != "done":
                load.errors += 1
                load.messages.append(f"a load worker failed: {msg[1]}")
                continue
            _, latencies, errors, messages, sample = msg
            load.latencies.extend(latencies)
            load.errors += errors
            load.messages.extend(messages[: max(0, MAX_MESSAGES - len(load.messages))])
            load.sample = load.sample or sample
    finally:
        for worker in workers:
            worker.join(5.0)
            if isinstance(worker, multiprocessing.process.BaseProcess) and worker.is_alive():
                worker.terminate()
        for pipe in pipes:
            pipe.close()
    return load
