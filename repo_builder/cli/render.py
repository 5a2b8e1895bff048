"""`repo-builder check` and `repo-builder render`: the spec and the configs it renders, without conversion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repo_builder.render.config import render_config
from repo_builder.repository.write import render_repository
from repo_builder.spec import load_spec, spec_tensors


def print_warnings(warnings: list[str], console_err: Any) -> None:
    """The spec's located warnings (settings Triton ignores or advises against), on stderr."""
    for text in warnings:
        console_err.print(f"warning: {text}", markup=False, highlight=False, soft_wrap=True)


def check_command(spec_path: Path, console_out: Any, console_err: Any = None) -> int:
    """Validate a spec (its rules include the deployment's: the release guard, the bind address) and the
    configs it can render; writes nothing. Warnings go to `console_err`."""
    loaded = load_spec(spec_path)
    if console_err is not None:
        print_warnings(loaded.warnings, console_err)
    rendered = 0
    for model in loaded.models:
        tensors = spec_tensors(model)
        if tensors is not None:
            render_config(model, tensors)
            rendered += 1
    pending = len(loaded.models) - rendered
    note = f"; {pending} take their tensors from the model at build time" if pending else ""
    console_out.print(f"{spec_path}: ok, {len(loaded.models)} models, {rendered} configs checked{note}", markup=False)
    return 0


def render_command(spec_path: Path, output: Path | None, force: bool, console_out: Any) -> int:
    """Write the repository layout and config.pbtxt files of a spec whose tensors are all given."""
    notes: list[str] = []
    written = render_repository(load_spec(spec_path), output, force=force, notes=notes)
    for w in written:
        console_out.print(str(w.config), markup=False)
    if notes:
        from rich.console import Console

        err = Console(stderr=True, highlight=False, soft_wrap=True)
        for note in notes:
            err.print(f"note: {note}", markup=False)
    return 0
