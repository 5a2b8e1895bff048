"""The docker-compose.yml and triton-image/Dockerfile committed at the project's root are what
`repo-builder compose examples/models.yaml` writes today (the README's first command rewrites them; a
stale copy would show up as a change in every user's checkout), and the admin key beside them stays out
of git."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit.cli_runner import run_cli

ROOT = Path(__file__).resolve().parents[3]


def test_the_committed_compose_files_are_what_compose_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    result = run_cli(capsys, "compose", "examples/models.yaml")
    assert result.code == 0, result.stderr
    for name in ("docker-compose.yml", "triton-image/Dockerfile"):
        assert (tmp_path / name).read_text() == (ROOT / name).read_text(), (
            f"{name} is stale: run `repo-builder compose examples/models.yaml` at the project's root and commit it"
        )
    assert (tmp_path / ".env").is_file()


def test_the_admin_key_file_is_ignored_by_git() -> None:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    done = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False)
    assert done.returncode == 0, ".env (the admin key `compose` writes) must be in .gitignore"
