"""Messages are printed literally (no emoji codes, no markup from the user's text), and Ctrl-C says so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.unit.cli_runner import run_cli

ROOT = Path(__file__).resolve().parents[3]


def test_a_location_on_line_100_is_not_an_emoji(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """rich reads `:100:` as the emoji code for 💯 unless told not to."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text('"""Placeholder model source."""\n')
    (tmp_path / "spec.yaml").write_text(
        "# comment\n" * 98
        + "models:\n"
        + "  - {name: base, source: {python: model.py:build}, target: onnx, max_batch_size: -1,"
        + " inputs: [{name: x, dtype: FP32, dims: [4]}], outputs: [{name: y, dtype: FP32, dims: [2]}]}\n"
    )
    result = run_cli(capsys, "check", "spec.yaml")
    assert result.code == 1
    assert result.stderr == (
        "error: spec.yaml: 1 problem in the spec\n"
        "spec.yaml:100:82: models[0] (base) -> max_batch_size\n"
        "  got -1; input should be greater than or equal to 0\n"
    )


def test_emoji_codes_and_markup_in_the_users_text_stay_literal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli(capsys, "check", ":smile:[bold]x[/bold]:100:[b].yaml")
    assert result.stderr == (
        "error: :smile:[bold]x[/bold]:100:[b].yaml: no such file; expected a YAML spec (see `repo-builder schema`)\n"
    )


def test_the_ok_line_of_check_stays_literal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text('"""Placeholder model source."""\n')
    (tmp_path / ":100:[b].yaml").write_text(
        "models:\n  - {name: base, source: {python: model.py:build}, target: onnx,"
        " inputs: [{name: x, dtype: FP32, dims: [4]}], outputs: [{name: y, dtype: FP32, dims: [2]}]}\n"
    )
    result = run_cli(capsys, "check", ":100:[b].yaml")
    assert (result.code, result.stdout) == (0, ":100:[b].yaml: ok, 1 models, 1 configs checked\n")


def _interrupt(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize("quiet", [(), ("-q",)], ids=["plain", "quiet"])
def test_ctrl_c_says_interrupted(
    quiet: tuple[str, ...], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("repo_builder.cli.render.load_spec", _interrupt)
    result = run_cli(capsys, *quiet, "check", "spec.yaml")
    assert (result.code, result.stdout, result.stderr) == (130, "", "interrupted\n")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_real_signal_says_interrupted(signum: int, tmp_path: Path) -> None:
    """The console script, stopped by a real signal while a command runs: exit 130 and one line."""
    ready = tmp_path / "ready"
    script = (
        "import sys, time, pathlib\n"
        "from repo_builder import cli\n"
        "import repo_builder.cli.render as render\n"
        "from repo_builder._process import stop_signals_as_interrupt\n"
        "def hang(path):\n"
        f"    pathlib.Path({str(ready)!r}).touch()\n"
        "    time.sleep(60)\n"
        "render.load_spec = hang\n"
        "sys.argv = ['repo-builder', 'check', 'spec.yaml']\n"
        "with stop_signals_as_interrupt():\n"
        "    cli.main()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the command did not start"
            time.sleep(0.05)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, out, err) == (130, "", "interrupted\n")
