"""The files a spec names (spec/files.py): label and warmup files are regular, bounded and inside the spec's
folder unless the spec says `allow_outside_files: true`; sources and calibration data are of the right kind.

Each refusal is exit 1 with a located message and nothing written (the golden cases labels_* and
warmup_file_* hold the exact messages of the cases a file can hold; these need FIFOs, symlinks and sizes).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from repo_builder.spec.files import MAX_COPIED_BYTES
from tests.unit.cli_runner import Result, run_cli
from tests.unit.spec.test_reader import deadline

SPEC = """\
{top}models:
  - name: base
    source: {{python: model.py:build}}
    target: onnx
    inputs: [{{name: x, dtype: FP32, dims: [4]}}]
    outputs: [{{name: y, dtype: FP32, dims: [2], labels: {labels}}}]
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp/project/ holds the spec; tmp/ beside it is "outside"."""
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    (folder / "model.py").write_text('"""Placeholder model source."""\n')
    return folder


def _render(capsys: pytest.CaptureFixture[str], folder: Path, labels: str, top: str = "") -> Result:
    (folder / "spec.yaml").write_text(SPEC.format(labels=labels, top=top))
    with deadline(20):
        result = run_cli(capsys, "render", "spec.yaml", "-o", "out")
    assert "Traceback" not in result.stderr
    if result.code != 0:
        assert result.code == 1
        assert not (folder / "out").exists()
    return result


def _problem(result: Result) -> str:
    """The one problem's message line."""
    lines = result.stderr.splitlines()
    assert lines[0] == "error: spec.yaml: 1 problem in the spec", result.stderr
    assert lines[1] == "spec.yaml:6:57: models[0] (base) -> outputs[0] -> labels"
    return lines[2].strip()


def test_a_label_file_inside_is_copied(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "labels").mkdir()
    (project / "labels" / "classes.txt").write_text("cat\ndog\n")
    (project / "linked.txt").symlink_to(project / "labels" / "classes.txt")  # a symlink that stays inside
    for labels in ("labels/classes.txt", "linked.txt"):
        result = _render(capsys, project, labels)
        assert result.code == 0, result.stderr
        copied = project / "out" / "base" / Path(labels).name
        assert copied.read_text() == "cat\ndog\n"
        shutil.rmtree(project / "out")


def test_a_fifo_label_file_is_refused(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(project / "labels.txt")
    result = _render(capsys, project, "labels.txt")
    assert _problem(result) == "labels.txt is a FIFO (named pipe); expected a label file (a regular file)"


def test_dev_zero_is_refused_even_when_outside_files_are_allowed(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _render(capsys, project, "/dev/zero", top="allow_outside_files: true\n")
    assert result.code == 1
    assert "/dev/zero is a character device; expected a label file (a regular file)" in result.stderr


def test_a_label_file_over_the_size_limit(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with (project / "labels.txt").open("wb") as f:  # sparse: no disk used
        f.truncate(MAX_COPIED_BYTES + 1)
    result = _render(capsys, project, "labels.txt")
    assert _problem(result) == (
        "labels.txt is 268,435,457 bytes; label files are copied into the repository and may be at most "
        "268,435,456 bytes (256 MiB)"
    )


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink", "symlinked folder"])
def test_outside_the_spec_folder_is_refused(how: str, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    private = project.parent / "private"
    private.mkdir()
    (private / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    if how == "dotdot":
        labels, expected = "../private/id_rsa", f"../private/id_rsa is outside the spec's folder {project}"
    elif how == "absolute":
        labels, expected = str(private / "id_rsa"), f"{private / 'id_rsa'} is outside the spec's folder {project}"
    elif how == "symlink":
        (project / "labels.txt").symlink_to(private / "id_rsa")
        labels = "labels.txt"
        expected = f"labels.txt leads outside the spec's folder {project} (to {private / 'id_rsa'})"
    else:
        (project / "data").symlink_to(private)
        labels = "data/id_rsa"
        expected = f"data/id_rsa leads outside the spec's folder {project} (to {private / 'id_rsa'})"
    result = _render(capsys, project, labels)
    assert _problem(result) == (
        f"{expected}; label files are copied into the repository and its image, so they must be in the spec's "
        "folder, unless the spec says `allow_outside_files: true`"
    )


def test_allow_outside_files_opts_in(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project.parent / "shared_labels.txt").write_text("a\nb\n")
    assert _render(capsys, project, "../shared_labels.txt").code == 1
    result = _render(capsys, project, "../shared_labels.txt", top="allow_outside_files: true\n")
    assert result.code == 0, result.stderr
    assert (project / "out" / "base" / "shared_labels.txt").read_text() == "a\nb\n"


def test_allow_outside_files_must_be_true(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project.parent / "shared_labels.txt").write_text("a\nb\n")
    result = _render(capsys, project, "../shared_labels.txt", top="allow_outside_files: yes please\n")
    assert result.code == 1
    assert "spec.yaml:1:22: allow_outside_files\n  got 'yes please'; input should be a valid boolean" in result.stderr


def test_a_warmup_file_that_is_a_folder(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "warm").mkdir()
    (project / "spec.yaml").write_text(
        SPEC.format(labels="''", top="").replace(", labels: ''", "")
        + "    warmup: [{name: w, inputs: {x: {file: warm}}}]\n"
    )
    result = run_cli(capsys, "render", "spec.yaml", "-o", "out")
    assert result.code == 1
    assert "spec.yaml:7:43: models[0] (base) -> warmup[0] -> inputs -> x -> file\n" in result.stderr
    assert "  warm is a folder; expected a warmup data file (a regular file)\n" in result.stderr
    assert not (project / "out").exists()


@pytest.mark.parametrize(
    ("source", "make", "expected"),
    [
        ("{python: pipe.py:build}", "fifo", "pipe.py is a FIFO (named pipe); expected a Python file (a regular file)"),
        (
            "{keras_file: pipe.keras}",
            "fifo",
            "pipe.keras is a FIFO (named pipe); expected a Keras file (a regular file)",
        ),
        ("{saved_model: model.py}", None, "model.py is a file; expected a SavedModel folder"),
        ("{keras_file: dir.keras}", "dir", "dir.keras is a folder; expected a Keras file (a regular file)"),
    ],
)
def test_sources_of_the_wrong_kind(
    source: str, make: str | None, expected: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = source.split(": ")[1].split(":")[0].rstrip("}")
    if make == "fifo":
        os.mkfifo(project / name)
    elif make == "dir":
        (project / name).mkdir()
    (project / "spec.yaml").write_text(
        SPEC.format(labels="''", top="").replace(", labels: ''", "").replace("{python: model.py:build}", source)
    )
    with deadline(20):
        result = run_cli(capsys, "check", "spec.yaml")
    assert result.code == 1
    assert f"\n  {expected}\n" in result.stderr
