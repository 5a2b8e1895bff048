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

What is sent, and the check of an answer: payloads.py. The connections, on each worker's event loop:
streams.py. Here: the workers started, the window handed out, their measurements gathered.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from repo_builder.validate.payloads import Target
from repo_builder.validate.report import error_text
from repo_builder.validate.streams import MAX_MESSAGES, STARTUP_S, receive, work

if TYPE_CHECKING:
    from multiprocessing.connection import Connection as Pipe


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
            worker: Any = threading.Thread(target=work, args=args, daemon=True, name=f"probe-{i}")
        else:
            worker = ctx.Process(target=work, args=args, daemon=True, name=f"probe-{i}")
        worker.start()
        workers.append(worker)
        pipes.append(mine)
    try:
        wait = STARTUP_S + target.timeout
        deadline = time.monotonic() + wait
        for pipe in pipes:
            msg = receive(pipe, deadline - time.monotonic())
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
            msg = receive(pipe, limit - time.monotonic())
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
