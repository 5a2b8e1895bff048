"""Errors of the disk while writing (repository.disk): a full disk, a read-only file system and a folder
without permission are a located exit 1 for build, render and compose, never exit 3 or a traceback, and
nothing is left half-written."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from repo_builder.repository import lock
from tests.unit.cli_runner import run_cli
from tests.unit.repository.test_staging import leftovers, tree, write_spec

ROOT = Path(__file__).resolve().parents[3]


def _unshare_works() -> bool:
    """A private mount namespace (user namespaces) where a folder can be mounted read-only or small."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "mount", "-t", "tmpfs", "tmpfs", "/mnt"], capture_output=True)
    return probe.returncode == 0


needs_unshare = pytest.mark.skipif(
    not _unshare_works(), reason="needs `unshare -rm` (user and mount namespaces) to mount a read-only or full disk"
)


def _in_namespace(mount: str, folder: Path, script: str) -> subprocess.CompletedProcess[str]:
    """Run `script` (sh) where `folder` is mounted as `mount` says: "ro" (read-only) or "full" (a 64 KiB tmpfs)."""
    how = {
        "ro": 'mount --bind "$D" "$D" && mount -o remount,bind,ro "$D"',
        "full": 'mount -t tmpfs -o size=64k tmpfs "$D"',
    }[mount]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "D": str(folder), "PY": sys.executable}
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", f"{how} && {script}"], env=env, capture_output=True, text=True, timeout=300
    )


# ------------------------------------------------------------------------------------------- read-only


@needs_unshare
@pytest.mark.parametrize("command", ["render", "compose", "build"])
def test_a_read_only_file_system_is_a_located_exit_1(tmp_path: Path, command: str) -> None:
    """Issue 13: a read-only output folder gave `internal error ... please report it` (exit 3). A real
    read-only mount (a bind mount remounted read-only in a private mount namespace)."""
    ro = tmp_path / "ro"
    spec = write_spec(ro)
    assert (
        subprocess.run(
            [sys.executable, "-m", "repo_builder", "render", str(spec)], env={**os.environ, "PYTHONPATH": str(ROOT)}
        ).returncode
        == 0
    )
    before = tree(ro)
    result = _in_namespace("ro", ro, f'"$PY" -m repo_builder {command} "$D/spec.yaml"')
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    message = result.stderr.replace("\n", "")
    # compose too: its first write is the repository's lock, beside the deployment files
    assert message.startswith(f"error: cannot write the repository {ro / 'repo'}: {ro} is on a read-only file system")
    assert message.endswith("Choose an output on a writable disk with -o.")
    assert tree(ro) == before


def _unprivileged() -> list[str] | None:
    """How to run a command that chmod binds: as it is for a user; for root (who writes through chmod 0555)
    in a user namespace of its own, where root's override does not reach the files; None when neither."""
    if os.geteuid() != 0:
        return []
    if shutil.which("unshare") and subprocess.run(["unshare", "--user", "true"], capture_output=True).returncode == 0:
        return ["unshare", "--user"]
    return None


@pytest.mark.skipif(
    _unprivileged() is None, reason="root writes through chmod 0555, and `unshare --user` is not allowed"
)
@pytest.mark.parametrize("command", ["render", "compose", "build"])
def test_a_folder_without_write_permission_is_a_located_exit_1(tmp_path: Path, command: str) -> None:
    """Issue 13: no permission to write the output folder gave `internal error` (exit 3)."""
    spec = write_spec(tmp_path / "project", repository="../out/repo")
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        result = subprocess.run(
            [*(_unprivileged() or []), sys.executable, "-m", "repo_builder", command, str(spec)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        out.chmod(0o755)
    assert result.returncode == 1, result.stderr
    assert result.stderr.replace("\n", "") == (
        f"error: cannot write the repository {out / 'repo'}: permission denied on {out / '.repo.repo-builder.lock'}. "
        "Fix the folder's permissions, or choose another output with -o."
    )
    assert list(out.iterdir()) == []


# ------------------------------------------------------------------------------------------- full disk


@needs_unshare
def test_a_full_disk_is_a_located_exit_1_and_leaves_the_previous_repository(tmp_path: Path) -> None:
    """A real full disk: a 64 KiB tmpfs in a private mount namespace; the label file does not fit."""
    project = tmp_path / "project"
    spec = write_spec(project, repository=str(tmp_path / "small" / "repo"), labels=", labels: labels.txt")
    (project / "labels.txt").write_text("x" * 1000)
    (tmp_path / "small").mkdir()
    (tmp_path / "big.txt").write_text("\n".join(f"label{i:06d}" for i in range(20000)))  # 250 KB
    script = (
        '"$PY" -m repo_builder render "$S" && echo FIRST_OK && cp "$B" "$L" && '
        '"$PY" -m repo_builder render "$S"; echo "rc=$?"; ls -A "$D"; cat "$D/repo/m/labels.txt" | head -c 20'
    )
    paths = {"S": spec, "L": project / "labels.txt", "B": tmp_path / "big.txt"}
    os.environ.update({k: str(v) for k, v in paths.items()})
    try:
        result = _in_namespace("full", tmp_path / "small", script)
    finally:
        for k in paths:
            del os.environ[k]
    assert "FIRST_OK" in result.stdout, result.stderr
    assert "rc=1" in result.stdout, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    message = result.stderr.replace("\n", "")
    repo = tmp_path / "small" / "repo"
    assert message.startswith(f"error: cannot write the repository {repo}: no space left on the disk mounted at ")
    assert "The previous repository (" in message and "needs about as much again free beside it." in message
    assert message.endswith("Free some space there, or choose an output on another disk with -o.")
    listing = result.stdout.split("rc=1", 1)[1].split()
    assert listing[:1] == ["repo"]  # no staging folder, no lock file left: only the previous repository
    assert result.stdout.rstrip().endswith("x" * 20)  # ... with its previous label file


def test_a_full_disk_during_render_names_the_disk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk, simulated: writing a file into the staging folder raises ENOSPC as a full disk does
    (the real one: the tmpfs test above, where user namespaces are allowed)."""
    spec = write_spec(tmp_path)
    repo = tmp_path / "repo"
    assert run_cli(capsys, "render", spec).code == 0
    before = tree(repo)
    write_text = Path.write_text

    def full(self: Path, *args: object, **kwargs: object) -> int:
        if ".repo.staging-" in str(self):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return write_text(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", full)
    result = run_cli(capsys, "render", spec)
    message = result.stderr.replace("\n", "")
    assert result.code == 1, result.stderr
    assert message.startswith(f"error: cannot write the repository {repo}: no space left on the disk mounted at ")
    assert "free of" in message and f"while writing {tmp_path}/.repo.staging-{os.getpid()}/" in message
    assert tree(repo) == before
    assert leftovers(tmp_path) == []


def test_a_full_disk_during_compose_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulated as above: the compose file's temporary file cannot be written."""
    spec = write_spec(tmp_path)
    write_text = Path.write_text

    def full(self: Path, *args: object, **kwargs: object) -> int:
        if self.name.startswith(".docker-compose.yml.tmp-"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return write_text(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", full)
    result = run_cli(capsys, "compose", spec)
    assert result.code == 1
    message = result.stderr.replace("\n", "")
    assert message.startswith(f"error: cannot write the deployment files in {tmp_path}: no space left on the disk")
    assert f"while writing {tmp_path}/.docker-compose.yml.tmp-" in message
    assert not list(tmp_path.glob(".docker-compose*")) and not (tmp_path / "docker-compose.yml").exists()


def test_a_full_disk_during_build_is_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulated: the build's first write (its lock beside the repository) meets a full disk. A build
    that gets further runs TensorFlow: tests/integration/build covers it."""

    def full(path: Path, fcntl: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(lock, "_acquire", full)
    spec = write_spec(tmp_path)
    result = run_cli(capsys, "build", spec)
    assert result.code == 1, result.stderr
    assert result.stderr.replace("\n", "").startswith(
        f"error: cannot write the repository {tmp_path / 'repo'}: no space left on the disk mounted at "
    )


def test_any_other_write_error_is_located(tmp_path: Path) -> None:
    from repo_builder.repository.disk import output_error

    e = output_error(OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), "/x/" + "n" * 300), Path("/x/repo"))
    assert e.message == f"cannot write the repository /x/repo: /x/{'n' * 300}: File name too long."
