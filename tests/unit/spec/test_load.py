"""Invalid specs: each exits 1 with its full, located message (asserted to the letter) and writes nothing.

The messages are the product here: a reviewer reads a change to one of them as a change to what users see.
Each case is a folder tests/golden/spec_errors/<case>/: spec.yaml, and expected.txt, the exact stderr of
`repo-builder render spec.yaml -o out` run in the case's folder (next to a placeholder model.py).
`{tmp}` in expected.txt stands for that folder (absolute paths of missing files).

Run `pytest tests/unit/test_spec_errors.py --update-golden` to rewrite expected.txt after a deliberate change
to a message, then review the diff.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from repo_builder.errors import SpecError
from repo_builder.spec import load_spec
from tests.unit.cli_runner import run_cli

CASES_DIR = Path(__file__).resolve().parents[3] / "tests" / "golden" / "spec_errors"
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "spec.yaml").is_file())


def _write(tmp_path: Path, case: str) -> None:
    shutil.copyfile(CASES_DIR / case / "spec.yaml", tmp_path / "spec.yaml")
    (tmp_path / "model.py").write_text('"""Placeholder model source."""\n')


def _expected(case: str, tmp_path: Path) -> str:
    return (CASES_DIR / case / "expected.txt").read_text(encoding="utf-8").replace("{tmp}", str(tmp_path))


def test_enough_invalid_specs() -> None:
    assert len(CASES) >= 25
    assert all((CASES_DIR / case / "expected.txt").is_file() for case in CASES)


@pytest.mark.parametrize("case", CASES)
def test_render_reports_and_writes_nothing(
    case: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    update_golden: bool,
) -> None:
    _write(tmp_path, case)
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_cli(capsys, "render", "spec.yaml", "-o", "out")
    if update_golden:
        (CASES_DIR / case / "expected.txt").write_text(result.stderr.replace(str(tmp_path), "{tmp}"), encoding="utf-8")
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr == _expected(case, tmp_path)
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no out/, no staging folder


@pytest.mark.parametrize("case", CASES)
def test_check_reports_the_same(
    case: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _write(tmp_path, case)
    monkeypatch.chdir(tmp_path)
    result = run_cli(capsys, "check", "spec.yaml")
    message = _expected(case, tmp_path)
    if "render writes configs" in message:
        assert result.code == 0  # check accepts models whose tensors come from the model at build time
        return
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == message


def test_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli(capsys, "render", "nowhere.yaml", "-o", "out")
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == "error: nowhere.yaml: no such file; expected a YAML spec (see `repo-builder schema`)\n"
    assert list(tmp_path.iterdir()) == []


def test_folder_instead_of_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").mkdir()
    result = run_cli(capsys, "check", "specs")
    assert (result.code, result.stderr) == (1, "error: specs: is a folder; expected a YAML spec file\n")


def test_invalid_spec_leaves_an_existing_repository_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "duplicate_model_names")
    good = (tmp_path / "spec.yaml").read_text(encoding="utf-8")
    (tmp_path / "spec.yaml").write_text(
        good.split("  - name: base", 2)[0] + "  - name: base" + good.split("  - name: base", 2)[1], encoding="utf-8"
    )
    assert run_cli(capsys, "render", "spec.yaml", "-o", "out").code == 0
    snapshot = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    (tmp_path / "spec.yaml").write_text(good, encoding="utf-8")  # now invalid: the name is used twice
    assert run_cli(capsys, "render", "spec.yaml", "-o", "out").code == 1
    after = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert after == snapshot
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.py", "out", "spec.yaml"]


def test_api_raises_spec_error_with_the_same_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, "preferred_batch_size_too_large")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as caught:
        load_spec("spec.yaml")
    assert "error: " + caught.value.message + "\n" == _expected("preferred_batch_size_too_large", tmp_path)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no pydantic trace attached
