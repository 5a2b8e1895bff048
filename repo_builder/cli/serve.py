"""`repo-builder serve`: the embedded server until Ctrl-C, or started, validated and stopped (--validate)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from repo_builder._process import stop_signals_as_interrupt
from repo_builder.errors import DeploymentError
from repo_builder.serve.embedded import DEFAULT_ADDRESS, EmbeddedServer

if TYPE_CHECKING:
    from rich.console import Console


#: Triton's own defaults (HTTP, gRPC, metrics), where clients and `validate --url` look first
TRITON_PORTS = (8000, 8001, 8002)


def serve_command(
    repository: Path,
    http_port: int | None = None,
    grpc_port: int | None = None,
    metrics_port: int | None = None,
    validate: bool = False,
    protocol: str | None = None,
    report: Path | None = None,
    junit: Path | None = None,
    timeout: float = 10.0,
    concurrency: Sequence[int] = (1, 4, 16),
    perf_duration: float = 1.0,
    log_file: Path | None = None,
    startup_timeout: float = 180.0,
    console: Console | None = None,
    models: Sequence[str] | None = None,
    console_out: Console | None = None,
    address: str = DEFAULT_ADDRESS,
) -> int:
    """`repo-builder serve REPO [--address] [--http-port] [--grpc-port] [--metrics-port] [--model NAME ...]
    [--validate]`.

    Without --validate: serve until Ctrl-C or SIGTERM, then stop cleanly and return 0.
    With --validate: start, validate over `protocol` (default: HTTP and gRPC), stop; 0 all pass, 1 failures.
    models: serve (and validate) only these models; a selected ensemble's steps are served too.
    `address` (an IP) is where the server listens, 127.0.0.1 by default; clients here connect through
    the loopback when it is 0.0.0.0.
    Progress and the server's addresses on `console` (stderr), validation results on `console_out` (stdout).
    Ports None or 0 are picked free. Raises DeploymentError when the server cannot start or dies, or a
    name in `models` is not a model of the repository.
    """
    from rich.console import Console
    from rich.markup import escape

    from repo_builder.cli.validate import run_validation

    out = console if console is not None else Console(stderr=True)
    if protocol not in (None, "http", "grpc"):
        raise DeploymentError(f"--protocol must be http or grpc, not {protocol!r}")
    server = EmbeddedServer(
        Path(repository),
        address=address,
        http_port=http_port,
        grpc_port=grpc_port,
        metrics_port=metrics_port,
        log_file=log_file,
        startup_timeout=startup_timeout,
        prefer_ports=None if validate else TRITON_PORTS,
        on_progress=lambda message: out.print(f"[dim]{escape(message)}[/]", highlight=False),
        models=models,
    )
    with stop_signals_as_interrupt():
        try:
            server.start()
            previews = server.previews
            steps = server.served.ensemble_steps if server.served else []
            if steps:
                out.print(f"also serving the steps of the selected ensembles: {', '.join(steps)}", highlight=False)
            if previews:
                out.print(
                    f"[yellow]preview[/]: {len(previews)} model(s) served through the python backend "
                    "(not written into your repository):"
                )
                for p in previews:
                    out.print(f"  - {p.describe()}", highlight=False)
            if validate:
                targets = [
                    (p, server.http_url if p == "http" else server.grpc_url)
                    for p in ([protocol] if protocol else ["http", "grpc"])
                ]
                return run_validation(
                    Path(repository),
                    targets,
                    timeout=timeout,
                    concurrency=concurrency,
                    perf_duration=perf_duration,
                    served_configs=server.served.configs() if server.served else {},
                    report=report,
                    junit=junit,
                    console=out,
                    models=models,
                    console_out=console_out,
                )
            out.print(
                f"Serving {repository}: HTTP http://{server.http_url}  gRPC {server.grpc_url}  "
                f"metrics {server.metrics_url}\nserver log: {server.log_path}\nPress Ctrl-C to stop.",
                highlight=False,
            )
            while True:
                code = server.wait(0.5)
                if code is not None:
                    raise DeploymentError(server.failure(f"tritonserver exited unexpectedly with code {code}"))
        except KeyboardInterrupt:
            out.print("stopping tritonserver ...")
            return 0
        finally:
            server.stop()
