"""The load generator's connections: one worker's share of them on one asyncio event loop, in a thread or a
spawned process (validate/load.py starts them and gathers what they measured). HTTP: raw keep-alive
connections (asyncio protocols) reading the status line, the headers and exactly Content-Length bytes. gRPC:
one grpc.aio channel per stream calling ModelInfer with the pre-serialized request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from array import array
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from repo_builder.validate.payloads import Target
from repo_builder.validate.report import error_text

if TYPE_CHECKING:
    from multiprocessing.connection import Connection as Pipe

LOG = logging.getLogger(__name__)

MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
#: error messages kept per worker; every error is counted
MAX_MESSAGES = 5
#: how long a worker process may take to start and open its connections, on top of `timeout`
STARTUP_S = 30.0


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
        window = await loop.run_in_executor(None, receive, pipe, STARTUP_S + timeout)
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


def receive(pipe: Pipe, seconds: float) -> Any:
    """The next message within `seconds`, or None (also when the other end is gone)."""
    try:
        return pipe.recv() if pipe.poll(max(0.0, seconds)) else None
    except (EOFError, OSError):
        return None


def work(target: Target, connections: int, pipe: Pipe) -> None:
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
