"""The typer app: parses arguments, hands each command to its module in cli/, maps errors to exit codes.

Exit codes: 0 ok, 1 a user-facing error (message only), 2 usage, 3 unexpected (traceback with -v),
130 interrupted.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperCommand, TyperGroup
from typer.exceptions import TyperException

from repo_builder import __version__


def _plain_flags(params: list[Any]) -> list[Any]:
    """Flags take no value, so their help shows none (typer's rich help prints `<bool>` after
    `--quiet`, `--force`, `--help` and `<int>` after the counter `-v`, as if they took one)."""
    for param in params:
        if (getattr(param, "is_flag", False) or getattr(param, "count", False)) and param.metavar is None:
            param.metavar = ""
    return params


class _Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_flags(super().get_params(ctx))


class _Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_flags(super().get_params(ctx))


app = typer.Typer(
    cls=_Group,
    name="repo-builder",
    help="Turn TensorFlow models described in one YAML file into a verified Triton model repository.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class _State:
    verbose = 0
    quiet = False


state = _State()


def _stderr(always: bool = False):  # type: ignore[no-untyped-def]
    """Progress and logs (silenced by -q); errors pass always=True, -q keeps them.

    emoji=False on both consoles: rich would print `spec.yaml:100:23` as `spec.yaml💯23`."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, emoji=False, quiet=state.quiet and not always)


def _stdout():  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(highlight=False, emoji=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"repo-builder {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More detail; -vv for debug logs.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    version: Annotated[
        Optional[bool],  # noqa: UP045 - typer needs Optional on 3.10
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = None,
) -> None:
    state.verbose = verbose
    state.quiet = quiet
    level = logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING
    logging.basicConfig(level=logging.ERROR if quiet else level, format="%(levelname)s %(name)s: %(message)s")


SpecArg = Annotated[Path, typer.Argument(help="The YAML spec, e.g. examples/models.yaml.", show_default=False)]
OutputOpt = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option("--output", "-o", help="Repository folder (default: `repository` from the spec)."),
]


@app.command(cls=_Command)
def check(spec: SpecArg) -> None:
    """Validate a spec and the configs it renders; writes nothing."""
    from repo_builder.cli.render import check_command

    raise typer.Exit(check_command(spec, console_out=_stdout(), console_err=_stderr()))


@app.command(cls=_Command)
def render(
    spec: SpecArg,
    output: OutputOpt = None,
    force: Annotated[bool, typer.Option(help="Write into a folder holding others' files (kept).")] = False,
) -> None:
    """Write the repository layout and config.pbtxt files of a spec whose tensors are all given."""
    from repo_builder.cli.render import render_command

    raise typer.Exit(render_command(spec, output, force=force, console_out=_stdout()))


@app.command(cls=_Command)
def build(
    spec: SpecArg,
    output: OutputOpt = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Conversions in parallel (child processes).")] = 1,
    force: Annotated[
        bool, typer.Option(help="Rebuild every model; write into a folder holding others' files (kept).")
    ] = False,
    only: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--only", metavar="NAME", help="Build only this model (repeatable); the others are carried over."),
    ] = None,
    model_timeout: Annotated[
        float,
        typer.Option(
            "--model-timeout",
            min=0,
            metavar="SECONDS",
            help="Stop a model that takes longer and fail it (0: no limit).",
        ),
    ] = 3600.0,
) -> None:
    """Convert, verify and write the model repository and docker-compose.yml; unchanged models are skipped."""
    from repo_builder.cli.build import build_command

    raise typer.Exit(
        build_command(
            spec,
            output,
            jobs=jobs,
            force=force,
            console_err=_stderr(),
            only=only,
            console_out=_stdout(),
            model_timeout=model_timeout,
        )
    )


@app.command(cls=_Command)
def inspect(
    source: Annotated[
        str,
        typer.Argument(
            help="A SavedModel folder, a .keras/.h5 file, or file.py:function / module:function.",
            show_default=False,
        ),
    ],
    signature: Annotated[str, typer.Option(help="SavedModel signature.")] = "serving_default",
    name: Annotated[Optional[str], typer.Option(help="Model name in the printed YAML.")] = None,  # noqa: UP045
    safe_mode: Annotated[
        bool,
        typer.Option(
            help="--no-safe-mode: load a .keras file with Lambda layers, which EXECUTES the Python code stored "
            "in it (the spec's `safe_mode: false`): only for files you trust."
        ),
    ] = True,
) -> None:
    """Print a model's inputs and outputs as spec YAML."""
    from repo_builder.cli.inspect import inspect_command

    raise typer.Exit(
        inspect_command(source, signature=signature, name=name, console_out=_stdout(), safe_mode=safe_mode)
    )


@app.command(cls=_Command)
def compose(
    spec: SpecArg,
    output: OutputOpt = None,
    force: Annotated[bool, typer.Option(help="Move aside a docker-compose.yml repo-builder did not write.")] = False,
) -> None:
    """Rewrite only docker-compose.yml (and its Dockerfile) next to the repository."""
    from repo_builder.cli.deploy import compose_command

    raise typer.Exit(compose_command(spec, output, force=force, console_out=_stdout()))


@app.command(cls=_Command)
def up(
    spec: SpecArg,
    output: OutputOpt = None,
    validate: Annotated[bool, typer.Option(help="Validate the deployment once it is ready.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds for each client call.")] = 10.0,
) -> None:
    """`docker compose up --wait`, then validate (needs Docker and an NVIDIA GPU)."""
    from repo_builder.cli.deploy import up_command

    raise typer.Exit(up_command(spec, output, validate=validate, timeout=timeout))


@app.command(cls=_Command)
def down(spec: SpecArg, output: OutputOpt = None) -> None:
    """`docker compose down`: stop and remove the deployment's containers (the repository stays)."""
    from repo_builder.cli.deploy import down_command

    raise typer.Exit(down_command(spec, output))


@app.command(cls=_Command)
def logs(
    spec: SpecArg,
    services: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Argument(help="Services (triton, engine-builder, tftrt-builder); default: all.", show_default=False),
    ] = None,
    output: OutputOpt = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
    tail: Annotated[Optional[str], typer.Option(help="Lines from the end of each log.")] = None,  # noqa: UP045
) -> None:
    """`docker compose logs` of the deployment."""
    from repo_builder.cli.deploy import logs_command

    raise typer.Exit(logs_command(spec, output, services=services, follow=follow, tail=tail))


RepoArg = Annotated[Path, typer.Argument(help="A model repository written by repo-builder.", show_default=False)]
ProtocolOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--protocol", help="http or grpc (serve --validate: both when not given).", show_default=False),
]
ReportOpt = Annotated[Optional[Path], typer.Option("--report", help="Write the JSON report here.")]  # noqa: UP045
JunitOpt = Annotated[Optional[Path], typer.Option("--junit", help="Write JUnit XML here.")]  # noqa: UP045
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds for each client call.")]
ConcurrencyOpt = Annotated[
    str, typer.Option("--concurrency", help="Concurrency levels of the performance probe, comma-separated.")
]
DurationOpt = Annotated[float, typer.Option("--perf-duration", help="Seconds of load per concurrency level.")]


def _levels(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        levels = ()
    if not levels or any(level < 1 for level in levels):
        raise typer.BadParameter(f"{text!r}: expected positive integers separated by commas, e.g. 1,4,16")
    return levels


_PORT_HELP = "Default: {} when 8000-8002 are all free (free ports with --validate or when taken)."


@app.command(cls=_Command)
def serve(
    repository: RepoArg,
    address: Annotated[
        str, typer.Option("--address", help="IP address to listen on: 127.0.0.1 (this host only) or 0.0.0.0 (all).")
    ] = "127.0.0.1",
    http_port: Annotated[Optional[int], typer.Option(help=_PORT_HELP.format(8000))] = None,  # noqa: UP045
    grpc_port: Annotated[Optional[int], typer.Option(help=_PORT_HELP.format(8001))] = None,  # noqa: UP045
    metrics_port: Annotated[Optional[int], typer.Option(help=_PORT_HELP.format(8002))] = None,  # noqa: UP045
    validate: Annotated[bool, typer.Option("--validate", help="Start, validate, stop; exit 1 on failures.")] = False,
    model: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--model",
            metavar="NAME",
            help="Serve only this model (repeatable; an ensemble brings its steps); default: every model.",
        ),
    ] = None,
    protocol: ProtocolOpt = None,
    report: ReportOpt = None,
    junit: JunitOpt = None,
    timeout: TimeoutOpt = 10.0,
    concurrency: ConcurrencyOpt = "1,4,16",
    perf_duration: DurationOpt = 1.0,
    log_file: Annotated[Optional[Path], typer.Option(help="Server log (default: a temp file).")] = None,  # noqa: UP045
) -> None:
    """Serve a repository with the real tritonserver from the nvidia-pytriton wheel (CPU, no Docker)."""
    from repo_builder.cli.serve import serve_command

    raise typer.Exit(
        serve_command(
            repository,
            address=address,
            http_port=http_port,
            grpc_port=grpc_port,
            metrics_port=metrics_port,
            validate=validate,
            protocol=protocol,
            report=report,
            junit=junit,
            timeout=timeout,
            concurrency=_levels(concurrency),
            perf_duration=perf_duration,
            log_file=log_file,
            console=_stderr(),
            models=model,
            console_out=_stdout(),
        )
    )


@app.command(cls=_Command)
def validate(
    repository: RepoArg,
    url: Annotated[str, typer.Option("--url", help="host:port of Triton's HTTP or gRPC endpoint.")],
    protocol: Annotated[str, typer.Option("--protocol", help="http or grpc.")] = "http",
    model: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--model", metavar="NAME", help="Check only this model (repeatable); default: every model."),
    ] = None,
    report: ReportOpt = None,
    junit: JunitOpt = None,
    timeout: TimeoutOpt = 10.0,
    concurrency: ConcurrencyOpt = "1,4,16",
    perf_duration: DurationOpt = 1.0,
) -> None:
    """Check a running Triton against the repository: readiness, config, metadata, outputs, batching, speed."""
    from repo_builder.cli.validate import validate_command

    raise typer.Exit(
        validate_command(
            repository,
            url,
            protocol=protocol,
            report=report,
            junit=junit,
            timeout=timeout,
            concurrency=_levels(concurrency),
            perf_duration=perf_duration,
            console=_stderr(),
            models=model,
            console_out=_stdout(),
        )
    )


@app.command(cls=_Command)
def schema() -> None:
    """Print the JSON Schema of the spec (for editor completion and checking)."""
    import json

    from repo_builder.spec.models import Spec

    typer.echo(json.dumps(Spec.model_json_schema(), indent=2))


def _interrupted() -> None:
    """Ctrl-C (and SIGTERM, SIGHUP: see _process.py): one line on stderr, even with -q, and exit 130."""
    print("interrupted", file=sys.stderr, flush=True)
    sys.exit(130)


def main() -> None:
    """Entry point with the one error handler."""
    from repo_builder.errors import RepoBuilderError

    try:
        result = app(standalone_mode=False)
    except RepoBuilderError as e:
        from rich.markup import escape

        # the message quotes the user's spec: escape it, or rich would eat "[red]" and the like
        _stderr(always=True).print(
            f"[bold red]error:[/] {escape(e.message)}", markup=True, highlight=False, soft_wrap=True
        )
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        _interrupted()
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except TyperException as e:  # usage errors: typer prints them with the usage line
        show = getattr(e, "show", None)
        if show is not None:
            show()
        else:
            print(f"error: {e.format_message()}", file=sys.stderr)
        sys.exit(e.exit_code)
    except SystemExit:
        raise
    except Exception as e:  # the one place that turns bugs into exit code 3
        if state.verbose:
            import traceback

            traceback.print_exc()
        else:
            _stderr(always=True).print(
                f"internal error: {type(e).__name__}: {e}\n(run with -v for the traceback; please report it)",
                markup=False,
                soft_wrap=True,
            )
        sys.exit(3)
    if result == 130:  # typer turns Ctrl-C into a silent return of 130; no command returns it otherwise
        _interrupted()
    sys.exit(result if isinstance(result, int) else 0)
