"""`repo-builder build`: live progress on stderr, the summary table and notes on stdout."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from repo_builder.build.build import build
from repo_builder.build.results import FAILED_STATUSES, BuildResult
from repo_builder.cli.output import print_table
from repo_builder.cli.render import print_warnings
from repo_builder.repository.layout import logs_path
from repo_builder.repository.manifest import BUILT_STATUSES, ModelStatus

#: how the summary table shows a status (the others as their value)
STATUS_STYLE = {ModelStatus.FAILED: "red", ModelStatus.KEPT: "yellow", ModelStatus.RECIPE: "yellow"}
STATUS_TEXT = {
    ModelStatus.CARRIED: "unchanged",
    ModelStatus.RERENDERED: "config re-rendered",
    ModelStatus.KEPT: "FAILED (previous kept)",
    ModelStatus.FAILED: "FAILED",
}
#: progress steps after which a model's clock stops
DONE_STEPS = (*BUILT_STATUSES, ModelStatus.FAILED, ModelStatus.RERENDERED, "unchanged")


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def summary_table(result: BuildResult) -> Any:
    from rich.table import Table

    table = Table(title=f"repository {result.repository}", title_justify="left")
    for col in ("model", "target", "artifact size", "max error", "status", "time"):
        table.add_column(col, justify="right" if col in ("artifact size", "max error", "time") else "left")
    for r in result.models:
        err = r.entry.max_error
        style = STATUS_STYLE.get(r.status, "green")
        status = STATUS_TEXT.get(r.status, r.status.value)
        table.add_row(
            r.name,
            r.target,
            _human(r.size),
            "-" if err is None else f"{err:.2g}",
            f"[{style}]{status}[/]",
            f"{r.seconds:.1f}s" if r.seconds else "-",
        )
    return table


def build_command(
    spec_path: str | Path,
    output: str | Path | None = None,
    jobs: int = 1,
    force: bool = False,
    console_err: Any = None,
    only: list[str] | None = None,
    console_out: Any = None,
    model_timeout: float | None = None,
) -> int:
    """`repo-builder build SPEC [-o DIR] [-j N] [--force] [--only NAME ...] [--model-timeout SECONDS]`.
    Returns the exit code. model_timeout: seconds one model may take (None: the default, 0: no limit).

    Live progress on console_err (a rich Console on stderr), the summary table and notes on console_out
    (default: stdout; off a terminal the table's rows stay whole, see cli.output). 0 when every model
    built, 1 when any failed. Raises RepoBuilderError for spec/output problems (the CLI turns it into
    exit code 1).
    """
    from rich.console import Console
    from rich.live import Live
    from rich.markup import escape
    from rich.table import Table

    from repo_builder._process import stop_signals_as_interrupt
    from repo_builder.deploy.compose import check_deployment, plan_deployment, write_deployment
    from repo_builder.repository.lock import repo_lock
    from repo_builder.spec.load import load_spec

    err = console_err or Console(stderr=True, highlight=False)
    out = console_out or Console(highlight=False, soft_wrap=True)
    spec = load_spec(spec_path)
    print_warnings(spec.warnings, err)
    deployment = plan_deployment(spec, output)  # the spec's validators refused what cannot be deployed
    check_deployment(deployment, force=force)  # before any long conversion
    state: dict[str, tuple[str, float]] = {}
    started: dict[str, float] = {}
    t0 = time.monotonic()

    def render() -> Table:
        table = Table(box=None, show_header=True, header_style="bold")
        table.add_column("model")
        table.add_column("step")
        table.add_column("elapsed", justify="right")
        now = time.monotonic()
        for name, (step, since) in state.items():
            if name not in started:  # queued, or carried over: no time of its own yet
                table.add_row(name, step, "")
                continue
            done = step in DONE_STEPS
            table.add_row(name, step, f"{(since if done else now) - started[name]:.1f}s")
        table.caption = f"{time.monotonic() - t0:.1f}s"
        return table

    def notify(name: str, step: str) -> None:
        now = time.monotonic()
        if step != "queued":
            started.setdefault(name, now)
        state[name] = (step, now)

    # a stop signal unwinds staged(): the staging folder goes, the previous repository stays
    # one lock over the build and its deployment files: no other writer between the two
    lock = repo_lock(Path(spec.repository_path(output)).absolute())
    with (
        lock,
        stop_signals_as_interrupt(),
        Live(render(), console=err, refresh_per_second=4, transient=True, get_renderable=render),
    ):
        limit = {} if model_timeout is None else {"model_timeout": model_timeout}
        result = build(spec, output, jobs=jobs, force=force, only=only, progress=notify, **limit)
        written = write_deployment(deployment, force=force)  # rendered once, after the build's manifest
    print_table(out, summary_table(result))
    for r in result.models:
        for note in (r.entry.notes or []) if r.status in BUILT_STATUSES else []:
            out.print(f"{r.name}: {note}", markup=False)
        if r.status in FAILED_STATUSES:
            log = r.log if r.log is not None else logs_path(result.repository, r.name)
            err.print(f"[bold red]{escape(r.name)} failed:[/] {escape(str(r.error))}", markup=True, highlight=False)
            if log.is_file():
                err.print(f"  log: {log}", markup=False)
            if r.status == ModelStatus.KEPT:
                err.print("  the repository keeps the previous build of this model", markup=False)
    for note in result.notes:
        err.print(f"note: {note}", markup=False)
    for path in written:
        out.print(f"wrote {path}", markup=False)
    converted = result.converted
    total = time.monotonic() - t0
    failed = [r.name for r in result.models if r.status in FAILED_STATUSES]
    rerendered = [r.name for r in result.models if r.status == ModelStatus.RERENDERED]
    if rerendered:
        out.print(
            f"re-rendered the config of {len(rerendered)} model(s), their artifacts kept (only config settings "
            f"changed): {', '.join(rerendered)}",
            markup=False,
        )
    if converted:
        out.print(f"converted {len(converted)} model(s) in {total:.1f}s into {result.repository}")
    elif not failed:
        out.print(f"nothing to convert; {result.repository} is up to date ({total:.1f}s)")
    if failed:
        err.print(f"[bold red]{len(failed)} model(s) failed:[/] {', '.join(failed)}", markup=True, highlight=False)
    return 0 if result.ok else 1
