"""Ownership, the swap, the lock (repository.staging): repo-builder replaces only what its manifest records
it wrote and never deletes anything else; a kill at any point of the swap leaves a whole repository at the
path; two writers of one repository do not interleave; a symlinked repository is written through."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repo_builder.repository import staging
from repo_builder.repository.staging import STAGE_MARKER, TEST_PAUSE_ENV
from tests.unit.cli_runner import run_cli

ROOT = Path(__file__).resolve().parents[3]

SPEC = """\
repository: {repository}
models:
  - name: {name}
    source: {{python: model.py:build}}
    target: onnx
    max_batch_size: 8
    inputs:
      - {{name: x, dtype: float32, dims: [4]}}
    outputs:
      - {{name: y, dtype: float32, dims: [2]{labels}}}
"""


def write_spec(folder: Path, name: str = "m", repository: str = "repo", labels: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text("def build():\n    raise NotImplementedError\n")
    spec = folder / "spec.yaml"
    spec.write_text(SPEC.format(repository=repository, name=name, labels=labels))
    return spec


def tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(folder.rglob("*"))
        if not p.is_symlink()
    }


def leftovers(folder: Path) -> list[str]:
    """What repo-builder's own machinery left beside a repository: staging, replaced, lock."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".repo.") and p.name != ".repo.old")


def add_user_entries(repo: Path) -> None:
    (repo / ".git" / "objects").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / "NOTES.txt").write_text("my notes\n")
    (repo / "handmade" / "1").mkdir(parents=True)
    (repo / "handmade" / "config.pbtxt").write_text('name: "handmade"\n')


USER_ENTRIES = {".git", "NOTES.txt", "handmade"}


# ------------------------------------------------------------------------------------------- ownership


def test_manifest_records_what_repo_builder_wrote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path)
    assert run_cli(capsys, "render", spec).code == 0
    manifest = json.loads((tmp_path / "repo" / "repo_builder_manifest.json").read_text())
    assert manifest["entries"] == ["m", "repo_builder_manifest.json"]


def test_render_refuses_what_the_user_added_and_keeps_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 13: `render` into a repository it wrote earlier deleted a .git/, NOTES.txt and a hand-written
    model folder added since. Now they are refused by name, and nothing changes."""
    spec = write_spec(tmp_path)
    repo = tmp_path / "repo"
    assert run_cli(capsys, "render", spec).code == 0
    add_user_entries(repo)
    before = tree(repo)
    result = run_cli(capsys, "render", spec)
    assert result.code == 1
    assert result.stderr.replace("\n", "") == (
        f"error: {repo} holds entries repo-builder did not write: .git, NOTES.txt, handmade. Move them out of "
        "the repository, choose another output with -o, or pass --force to keep them in place (repo-builder "
        "never deletes what it did not write)."
    )
    assert tree(repo) == before
    assert leftovers(tmp_path) == []


def test_render_with_force_keeps_what_the_user_added(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path)
    repo = tmp_path / "repo"
    assert run_cli(capsys, "render", spec).code == 0
    add_user_entries(repo)
    user = {k: v for k, v in tree(repo).items() if k.split("/")[0] in USER_ENTRIES}
    write_spec(tmp_path, name="renamed")  # the new repository drops model m
    result = run_cli(capsys, "render", spec, "--force")
    assert result.code == 0, result.stderr
    assert "note: kept in" in result.stderr and "NOTES.txt" in result.stderr
    after = tree(repo)
    assert {k: v for k, v in after.items() if k.split("/")[0] in USER_ENTRIES} == user
    assert not (repo / "m").exists() and (repo / "renamed" / "config.pbtxt").is_file()
    assert leftovers(tmp_path) == []
    # still not ours: the next render without --force refuses them again
    assert run_cli(capsys, "render", spec).code == 1


def test_force_moves_aside_a_user_folder_the_repository_now_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path)
    repo = tmp_path / "repo"
    assert run_cli(capsys, "render", spec).code == 0
    add_user_entries(repo)
    write_spec(tmp_path, name="handmade")  # the spec now has a model of the hand-written folder's name
    result = run_cli(capsys, "render", spec, "--force")
    assert result.code == 0, result.stderr
    (aside,) = tmp_path.glob("repo.kept-*")
    assert (aside / "handmade" / "config.pbtxt").read_text() == 'name: "handmade"\n'
    assert f"moved {repo / 'handmade'} aside to {aside / 'handmade'}" in result.stderr.replace("\n", "")
    assert "model_repository" not in (repo / "handmade" / "config.pbtxt").read_text()
    assert (repo / "NOTES.txt").read_text() == "my notes\n"


def test_force_on_a_foreign_folder_keeps_its_content(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 13: `-o` at a home-like folder with --force deleted .ssh/ and Documents/."""
    spec = write_spec(tmp_path / "project")
    home_like = tmp_path / "someone"
    (home_like / ".ssh").mkdir(parents=True)
    (home_like / ".ssh" / "id_ed25519").write_text("secret")
    (home_like / "Documents").mkdir()
    (home_like / "Documents" / "thesis.tex").write_text("chapter 1")
    before = tree(home_like)
    result = run_cli(capsys, "render", spec, "-o", home_like)
    assert result.code == 1
    assert "was not written by repo-builder" in result.stderr and ".ssh, Documents" in result.stderr
    assert tree(home_like) == before
    assert run_cli(capsys, "render", spec, "-o", home_like, "--force").code == 0
    after = tree(home_like)
    assert {k: v for k, v in after.items() if k in before} == before
    assert (home_like / "m" / "config.pbtxt").is_file()


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_the_spec_folder_is_never_the_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], force: list[str]
) -> None:
    """Issue 13: `repository: .` with --force deleted the spec and models.py beside it."""
    spec = write_spec(tmp_path / "project", repository=".")
    before = tree(tmp_path)
    result = run_cli(capsys, "render", spec, *force)
    assert result.code == 1
    assert result.stderr.replace("\n", "").startswith(
        f"error: {tmp_path / 'project'} holds the spec {spec}; repo-builder swaps the repository folder as a "
        "whole, so the repository must be a folder of its own (also with --force)."
    )
    assert tree(tmp_path) == before
    result = run_cli(capsys, "render", spec, *force, "-o", tmp_path)  # a folder above the spec's
    assert result.code == 1 and "holds the spec" in result.stderr
    assert tree(tmp_path) == before


def test_the_home_folder_is_never_the_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = write_spec(tmp_path / "project")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    result = run_cli(capsys, "render", spec, "-o", home, "--force")
    assert result.code == 1 and "holds your home folder" in result.stderr
    assert sorted(p.name for p in home.iterdir()) == [".ssh"]


def test_a_user_folder_named_like_the_old_swap_folder_is_never_deleted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 13: the swap's recovery rmtree'd a folder `.<repo>.old` beside the repository."""
    spec = write_spec(tmp_path)
    old = tmp_path / ".repo.old"
    old.mkdir()
    (old / "mine.txt").write_text("mine")
    for force in ([], [], ["--force"]):
        assert run_cli(capsys, "render", spec, *force).code == 0
        assert (old / "mine.txt").read_text() == "mine"


def test_killed_writers_leftovers_are_removed_only_when_ours(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path)
    dead = _dead_pid()
    stage = tmp_path / f".repo.staging-{dead}"  # a killed build's stage: marked, so ours
    (stage / "m" / "1").mkdir(parents=True)
    (stage / STAGE_MARKER).write_text("")
    lookalike = tmp_path / f".repo.staging-{dead + 1 if not _alive(dead + 1) else dead}x"
    users = tmp_path / f".repo.replaced-{dead}"  # named like ours, but no marker and no manifest of ours
    (users / "data").mkdir(parents=True)
    (users / "data" / "file").write_text("keep")
    lookalike.mkdir()
    (lookalike / "file").write_text("keep too")
    assert run_cli(capsys, "render", spec).code == 0
    assert not stage.exists()
    assert (users / "data" / "file").read_text() == "keep"
    assert (lookalike / "file").read_text() == "keep too"


def test_a_swap_killed_between_two_renames_is_completed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Where there is no atomic exchange, the swap is two renames; the previous repository, left at
    `.<repo>.replaced-<pid>` by a kill between them, goes back to its path at the next command."""
    spec = write_spec(tmp_path)
    repo = tmp_path / "repo"
    assert run_cli(capsys, "render", spec).code == 0
    (repo / "NOTES.txt").write_text("notes")
    before = tree(repo)
    repo.rename(tmp_path / f".repo.replaced-{_dead_pid()}")
    assert run_cli(capsys, "check", spec).code == 0  # reading writes nothing
    result = run_cli(capsys, "render", spec)
    assert result.code == 1 and "NOTES.txt" in result.stderr  # recovered, then the user's file is refused
    assert tree(repo) == before
    assert leftovers(tmp_path) == []


def test_two_rename_fallback_keeps_user_entries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback swap (no renameat2: not Linux, or a file system without it) keeps the same promises."""
    monkeypatch.setattr(staging, "_exchange", lambda a, b: False)
    spec = write_spec(tmp_path)
    repo = tmp_path / "repo"
    assert run_cli(capsys, "render", spec).code == 0
    add_user_entries(repo)
    assert run_cli(capsys, "render", spec, "--force").code == 0
    assert {p.name for p in repo.iterdir()} >= USER_ENTRIES
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------------------------- files


def test_a_label_file_named_config_pbtxt_does_not_replace_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path, labels=", labels: lists/config.pbtxt")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "config.pbtxt").write_text("cat\ndog\n")
    assert run_cli(capsys, "render", spec).code == 0
    folder = tmp_path / "repo" / "m"
    config = (folder / "config.pbtxt").read_text()
    assert config.startswith('name: "m"')
    assert 'label_filename: "lists_config.pbtxt"' in config
    assert (folder / "lists_config.pbtxt").read_text() == "cat\ndog\n"


def test_two_label_files_of_one_name_get_two_files(tmp_path: Path) -> None:
    from repo_builder.repository.layout import data_file_names

    names = data_file_names(["a/labels.txt", "b/labels.txt", "c/other.txt", "c/other.txt"], reserved=True)
    assert names == {"a/labels.txt": "a_labels.txt", "b/labels.txt": "b_labels.txt", "c/other.txt": "other.txt"}
    # a flattened name never takes one a file has as its own, nor a version folder's
    names = data_file_names(["a/labels.txt", "b/labels.txt", "a_labels.txt", "1", "x/REFERENCE.NPZ"], reserved=True)
    assert len(set(names.values())) == 5
    assert names["a_labels.txt"] == "a_labels.txt" and names["a/labels.txt"] == "a_labels.2.txt"
    assert names["1"] == "1.2" and names["x/REFERENCE.NPZ"] == "x_REFERENCE.NPZ"


def test_two_outputs_with_labels_of_one_name_render_distinct_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 13: `a/labels.txt` and `b/labels.txt` silently shared one file."""
    spec = write_spec(
        tmp_path, labels=", labels: a/labels.txt}\n      - {name: z, dtype: float32, dims: [3], labels: b/labels.txt"
    )
    for folder, text in (("a", "cat\ndog\n"), ("b", "red\ngreen\nblue\n")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "labels.txt").write_text(text)
    assert run_cli(capsys, "render", spec).code == 0
    model = tmp_path / "repo" / "m"
    config = (model / "config.pbtxt").read_text()
    assert 'label_filename: "a_labels.txt"' in config and 'label_filename: "b_labels.txt"' in config
    assert (model / "a_labels.txt").read_text() == "cat\ndog\n"
    assert (model / "b_labels.txt").read_text() == "red\ngreen\nblue\n"


# ------------------------------------------------------------------------------------ kills and locks


def _dead_pid() -> int:
    """A pid no process has (a child that has ended and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _render_child(spec: Path, pause: str, ready: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), TEST_PAUSE_ENV: f"{pause}:{ready}"}
    return subprocess.Popen(
        [sys.executable, "-m", "repo_builder", "render", str(spec), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(ready: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None:
            pytest.fail(f"the child ended before the pause point: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the child never reached the pause point")
        time.sleep(0.05)


@pytest.mark.parametrize("point", ["before-exchange", "after-exchange"])
def test_a_kill_at_the_swap_leaves_a_whole_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], point: str
) -> None:
    """Issue 13: kill -9 between the swap's two renames left no repository at the path. The swap is one
    renameat2(RENAME_EXCHANGE) now: a real process is SIGKILLed right before and right after it, and the
    path holds a whole repository (the old or the new); the next command puts back what the user had
    and removes the leftovers."""
    spec = write_spec(tmp_path)
    repo = tmp_path / "repo"
    assert run_cli(capsys, "render", spec).code == 0
    (repo / "NOTES.txt").write_text("my notes\n")
    old_config = (repo / "m" / "config.pbtxt").read_text()
    write_spec(tmp_path, name="next")
    ready = tmp_path / "ready"
    proc = _render_child(spec, point, ready, "--force")
    try:
        _wait_for(ready, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert repo.is_dir(), "no repository at the path after the kill"
    manifest = json.loads((repo / "repo_builder_manifest.json").read_text())
    (model,) = manifest["models"]
    config = (repo / model / "config.pbtxt").read_text()
    assert config == old_config if model == "m" else config.startswith('name: "next"')
    assert list(tmp_path.glob(".repo.staging-*")), "the killed swap should leave its folder aside"
    # the next command: the user's file is back where it was, and the leftovers are gone
    result = run_cli(capsys, "render", spec, "--force")
    assert result.code == 0, result.stderr
    assert (repo / "NOTES.txt").read_text() == "my notes\n"
    assert (repo / "next" / "config.pbtxt").is_file() and not (repo / "m").exists()
    assert leftovers(tmp_path) == []
    assert not list(tmp_path.glob("repo.kept-*"))


def test_a_second_writer_of_one_repository_stops_with_the_first_ones_pid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 13: two builds of one repository took no lock. Two real processes: the first holds the lock
    (paused inside its swap), the second stops at once with exit 1 and changes nothing."""
    spec = write_spec(tmp_path)
    repo = tmp_path / "repo"
    assert run_cli(capsys, "render", spec).code == 0
    ready = tmp_path / "ready"
    first = _render_child(spec, "before-exchange", ready)
    try:
        _wait_for(ready, first)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop(TEST_PAUSE_ENV, None)
        for command in (["render", str(spec)], ["compose", str(spec)], ["build", str(spec)]):
            second = subprocess.run(
                [sys.executable, "-m", "repo_builder", *command], env=env, capture_output=True, text=True, timeout=120
            )
            assert second.returncode == 1, second.stderr
            assert second.stderr.replace("\n", "") == (
                f"error: another repo-builder is writing {repo} (pid {first.pid}); wait for it to finish and "
                "run again (two writers of one repository would interleave)"
            )
    finally:
        first.kill()
        first.communicate()
    # the killed holder's lock is free: the next writer goes ahead and tidies up
    assert run_cli(capsys, "render", spec).code == 0
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------- symlinks


def test_a_symlinked_repository_is_written_through_and_stays_a_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 13: the first run replaced the link with a real folder, and every later run exited 3."""
    spec = write_spec(tmp_path)
    target = tmp_path / "disk" / "repos" / "real"
    target.mkdir(parents=True)
    link = tmp_path / "repo"
    link.symlink_to(target)
    for _ in range(3):
        result = run_cli(capsys, "render", spec)
        assert result.code == 0, result.stderr
        assert link.is_symlink() and Path(os.readlink(link)) == target
        assert (target / "m" / "config.pbtxt").is_file()
    assert sorted(p.name for p in target.parent.iterdir()) == ["real"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk", "model.py", "repo", "spec.yaml"]


def test_a_broken_repository_link_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path)
    (tmp_path / "repo").symlink_to(tmp_path / "nowhere")
    result = run_cli(capsys, "render", spec)
    assert result.code == 1
    assert result.stderr.replace("\n", "") == (
        f"error: {tmp_path / 'repo'} is a symbolic link to {tmp_path / 'nowhere'}, which is nothing (the link "
        "is broken); point it to a folder, or choose another output with -o"
    )
    assert not (tmp_path / "nowhere").exists()


def test_compose_with_force_moves_a_foreign_compose_file_aside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`compose --force` replaced a docker-compose.yml repo-builder did not write; now it moves it aside."""
    spec = write_spec(tmp_path)
    mine = tmp_path / "docker-compose.yml"
    mine.write_text("services: {db: {image: postgres}}\n")
    assert run_cli(capsys, "compose", spec).code == 1
    assert mine.read_text() == "services: {db: {image: postgres}}\n"
    result = run_cli(capsys, "compose", spec, "--force")
    assert result.code == 0, result.stderr
    (aside,) = tmp_path.glob("docker-compose.yml.kept-*")
    assert aside.read_text() == "services: {db: {image: postgres}}\n"
    assert mine.read_text().startswith("# Generated by repo-builder")
    assert f"note: moved {mine} aside to {aside}" in result.stderr.replace("\n", "")


def test_a_swap_that_cannot_move_a_user_entry_puts_back_what_it_moved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's entry that cannot be moved (simulated: a mount point inside the repository answers EBUSY):
    the swap stops with exit 1 naming it, the entries it had moved are back, the repository unchanged."""
    spec = write_spec(tmp_path)
    repo = tmp_path / "repo"
    assert run_cli(capsys, "render", spec).code == 0
    add_user_entries(repo)
    (repo / "zz_mounted").mkdir()
    before = tree(repo)
    rename = os.rename

    def busy(src: object, dst: object) -> None:
        if Path(str(src)).name == "zz_mounted":
            raise OSError(16, os.strerror(16), str(src))
        rename(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "rename", busy)
    result = run_cli(capsys, "render", spec, "--force")
    assert result.code == 1
    assert result.stderr.replace("\n", "").startswith(
        f"error: cannot write the repository {repo}: {repo / 'zz_mounted'}: "
    )
    assert tree(repo) == before
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("command", ["build", "render"])
def test_build_and_render_refuse_what_the_user_added_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """build checks ownership before converting anything (no TensorFlow needed to get there)."""
    spec = write_spec(tmp_path)
    repo = tmp_path / "repo"
    assert run_cli(capsys, "render", spec).code == 0
    (repo / "NOTES.txt").write_text("mine\n")
    before = tree(repo)
    result = run_cli(capsys, command, spec)
    assert result.code == 1
    assert "holds entries repo-builder did not write: NOTES.txt." in result.stderr.replace("\n", "")
    assert tree(repo) == before
    assert leftovers(tmp_path) == []
