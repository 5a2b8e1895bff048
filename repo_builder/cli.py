"""Command line: parses arguments, reports progress on stderr, maps errors to exit codes. No logic here.

Exit codes: 0 ok, 1 a user-facing error (message only), 2 usage, 3 unexpected (traceback with -v),
130 interrupted.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.exceptions import TyperException

from repo_builder import __version__

app = typer.Typer(
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
    """Progress and logs (silenced by -q); errors pass always=True, -q keeps them."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, quiet=state.quiet and not always)


def _stdout():  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


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


@app.command()
def check(spec: SpecArg) -> None:
    """Validate a spec and the configs it renders; writes nothing."""
    from repo_builder.render import render_config, spec_tensors
    from repo_builder.spec import load_spec

    loaded = load_spec(spec)
    rendered = 0
    for model in loaded.models:
        tensors = spec_tensors(model)
        if tensors is not None:
            render_config(model, tensors)
            rendered += 1
    pending = len(loaded.models) - rendered
    note = f"; {pending} take their tensors from the model at build time" if pending else ""
    _stdout().print(f"{spec}: ok, {len(loaded.models)} models, {rendered} configs checked{note}")


@app.command()
def render(
    spec: SpecArg,
    output: OutputOpt = None,
    force: Annotated[bool, typer.Option(help="Replace a non-empty folder repo-builder did not write.")] = False,
) -> None:
    """Write the repository layout and config.pbtxt files of a spec whose tensors are all given."""
    from repo_builder.repository import render_repository
    from repo_builder.spec import load_spec

    loaded = load_spec(spec)
    written = render_repository(loaded, output, force=force)
    out = _stdout()
    for w in written:
        out.print(str(w.config))


@app.command()
def schema() -> None:
    """Print the JSON Schema of the spec (for editor completion and checking)."""
    import json

    from repo_builder.spec import Spec

    typer.echo(json.dumps(Spec.model_json_schema(), indent=2))


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
        _stderr().print("interrupted")
        sys.exit(130)
    except TyperException as e:  # usage errors: typer prints them with the usage line
        show = getattr(e, "show", None)
        if show is not None:
            show()
        else:
            print(f"error: {e.format_message()}", file=sys.stderr)
        sys.exit(e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - the one place that turns bugs into exit code 3
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
    sys.exit(result if isinstance(result, int) else 0)
