"""The validator against servers that stop answering: it gives up fast, with one clear reason.

The misbehaving servers are the things under test, so two are small HTTP servers in this process: one
passes everything through to the real tritonserver but never answers an inference (health, metadata and
configs answer), and one answers HTTP 500 to everything. The third is the real tritonserver, SIGSTOPped
in the middle of a run, over gRPC and HTTP.
"""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from repo_builder.serve import EmbeddedServer
from repo_builder.validate import Report, validate

pytestmark = pytest.mark.server

#: the hop-by-hop headers a proxy does not pass on
_HOP = {"connection", "keep-alive", "transfer-encoding", "host"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = ""
    released = threading.Event()

    def log_message(self, *args: object) -> None:  # quiet
        pass


class _HangsInference(_Handler):
    """Passes every request through to `upstream`; an inference request never gets an answer."""

    def do_GET(self) -> None:
        self._forward(b"")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.rstrip("/").endswith("/infer"):
            self.released.wait(300)  # hung, until the test ends
            self.close_connection = True
            return
        self._forward(body)

    def _forward(self, body: bytes) -> None:
        upstream = http.client.HTTPConnection(self.upstream, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        upstream.request(self.command, self.path, body=body or None, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        self.send_response(response.status, response.reason)
        for k, v in response.getheaders():
            if k.lower() not in _HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()


class _Answers500(_Handler):
    def _error(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"internal error: the model store is corrupted"
        self.send_response(500, "Internal Server Error")
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _error
    do_POST = _error


def _serve(handler: type[_Handler], upstream: str = "") -> Iterator[str]:
    released = threading.Event()
    cls = type("Handler", (handler,), {"upstream": upstream, "released": released})
    server = ThreadingHTTPServer(("127.0.0.1", 0), cls)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        released.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def hangs_inference(embedded_server: EmbeddedServer) -> Iterator[str]:
    yield from _serve(_HangsInference, embedded_server.http_url)


@pytest.fixture
def answers_500() -> Iterator[str]:
    yield from _serve(_Answers500)


def _failed_after(report: Report, first: str) -> list[str]:
    """The details of every check after `first` (in run order)."""
    ids = [c.id for c in report.checks]
    return [c.detail for c in report.checks[ids.index(first) + 1 :]]


def test_a_server_whose_inference_hangs_fails_every_remaining_check_at_once(
    hangs_inference: str, model_repository: Path, served_configs: dict
) -> None:
    started = time.monotonic()
    report = validate(model_repository, hangs_inference, "http", timeout=10, served_configs=served_configs)
    seconds = time.monotonic() - started
    assert seconds < 60, report.to_json()
    assert not report.ok
    failed = [c for c in report.checks if c.status == "fail"]
    first = failed[0]
    assert any(w in first.detail.lower() for w in ("timed out", "no response within")), first.detail
    reason = (
        f"not checked: the server answers health checks, but {first.id} got no answer within the timeout "
        "(10 s, --timeout); its other requests would wait as long"
    )
    after = _failed_after(report, first.id)
    assert after and set(after) == {reason}, after
    assert all(c.duration_s < 1 for c in failed[1:])
    assert report.get("server").status == report.get("models").status == "pass"


def test_http_500_from_every_endpoint_is_reported_as_such(answers_500: str, model_repository: Path) -> None:
    started = time.monotonic()
    report = validate(model_repository, answers_500, "http", timeout=10)
    assert time.monotonic() - started < 10
    assert [c.id for c in report.checks] == ["server", "models"]
    assert report.get("server").detail == (
        f"Triton at {answers_500} answers with an error: HTTP 500 Internal Server Error from /v2/health/live: "
        "internal error: the model store is corrupted"
    )


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_stopped_tritonserver_ends_the_run_within_a_minute_without_traceback(
    model_repository: Path, protocol: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """The real server, SIGSTOPped (as a hung or swapped-out process) while the performance probe runs:
    grpc.aio used to print asyncio tracebacks for the requests it abandoned, and every check waited out
    its own timeouts (97 s)."""
    with EmbeddedServer(model_repository, startup_timeout=180) as server:
        assert server.process is not None
        group = server.process.pid
        url = server.http_url if protocol == "http" else server.grpc_url
        stopped = threading.Event()

        def stop() -> None:
            os.killpg(group, signal.SIGSTOP)
            stopped.set()

        def progress(line: str) -> None:
            if "ens/dynamic_batching" in line:  # the performance probe comes next: stop the server within it
                threading.Timer(0.4, stop).start()

        try:
            started = time.monotonic()
            report = validate(
                model_repository,
                url,
                protocol,
                timeout=10,
                on_progress=progress,
                concurrency=(1, 4, 16),  # type: ignore[arg-type]
            )
            seconds = time.monotonic() - started
        finally:
            os.killpg(group, signal.SIGCONT)
    assert stopped.is_set()
    assert seconds < 60, report.to_json()
    reasons = {c.detail for c in report.checks if c.detail.startswith("not checked: the server")}
    assert len(reasons) == 1, reasons
    (reason,) = reasons
    assert reason.startswith("not checked: the server stopped answering during "), reason
    assert reason.endswith("(no answer to a health check within 3 s)"), reason
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
