"""Run the repo-builder CLI in-process, exactly as the console script does (`repo_builder.cli:main`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from repo_builder import cli


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


def run_cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> Result:
    """`repo-builder ARGS...`: the exit code and what went to stdout and stderr."""
    capsys.readouterr()  # drop whatever earlier steps of the test printed
    argv = sys.argv
    sys.argv = ["repo-builder", *(str(a) for a in args)]
    try:
        cli.main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = argv
        cli.state.verbose = 0
        cli.state.quiet = False
    out, err = capsys.readouterr()
    return Result(code, out, err)
