"""Atomic writes: a repository is built aside in a staging folder next to the target and swapped in at the end,
so an interrupted or failed build never leaves a half-written repository and never destroys the previous one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from repo_builder.errors import RepoBuilderError
from repo_builder.repository.layout import MANIFEST_NAME, manifest_path, work_dir

#: where releases before the layout change kept the manifest: such a repository is still ours to replace
LEGACY_MANIFEST = (".repo_builder", "manifest.json")


def _is_ours(repo: Path) -> bool:
    return manifest_path(repo).is_file() or repo.joinpath(*LEGACY_MANIFEST).is_file()


def check_output(repo: Path, force: bool = False) -> None:
    """Refuse to replace a non-empty folder that repo-builder did not write (unless forced)."""
    recover(repo)
    if repo.exists() and not repo.is_dir():
        raise RepoBuilderError(f"{repo} exists and is not a folder; choose another output with -o")
    foreign = any(p.name != "README.md" for p in repo.iterdir()) if repo.is_dir() else False
    if foreign and not _is_ours(repo) and not force:
        raise RepoBuilderError(
            f"{repo} is not empty and was not written by repo-builder (no {MANIFEST_NAME}); "
            "it would be replaced. Choose another output with -o, or pass --force to replace it."
        )


def recover(repo: Path) -> None:
    """Finish or undo a swap that was interrupted between its two renames."""
    old = repo.parent / f".{repo.name}.old"
    if old.exists() and not repo.exists():
        old.rename(repo)
    elif old.exists():
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged(repo: Path) -> Iterator[Path]:
    """Yield an empty staging folder beside `repo`; on success swap it in, on any failure drop it.

    The previous repository stays in place until the new one is complete. The swap is two renames in
    the same folder; `recover()` completes it if the process dies between them.
    """
    repo = repo.absolute()
    repo.parent.mkdir(parents=True, exist_ok=True)
    recover(repo)
    stage = repo.parent / f".{repo.name}.staging-{os.getpid()}"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir()
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    # keep files the user placed in the output folder that are not ours (e.g. a README)
    if repo.is_dir():
        for keep in ("README.md",):
            if (repo / keep).is_file() and not (stage / keep).exists():
                shutil.copy2(repo / keep, stage / keep)
    shutil.rmtree(work_dir(stage), ignore_errors=True)  # never in a finished repository
    old = repo.parent / f".{repo.name}.old"
    if repo.exists():
        repo.rename(old)
    stage.rename(repo)
    shutil.rmtree(old, ignore_errors=True)
    for leftover in repo.parent.glob(f".{repo.name}.staging-*"):
        # stages of builds that were killed: their pid is gone
        pid = leftover.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def final_repo(stage: Path) -> Path:
    """The repository a staging folder (`.<name>.staging-<pid>`, see `staged`) becomes."""
    if stage.name.startswith(".") and ".staging-" in stage.name:
        return stage.parent / stage.name[1:].rsplit(".staging-", 1)[0]
    return stage


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
