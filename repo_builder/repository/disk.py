"""Errors of the disk while writing a repository or its deployment files, as messages a person can act on:
which folder, which disk, how much space, what to do. Every OSError of the write path becomes an
OutputError (exit 1) here, never an internal error."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from repo_builder.errors import OutputError, RepoBuilderError


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def tree_size(path: Path) -> int:
    """Bytes of the files under `path` (0 when it is gone or unreadable)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def mount_point(path: Path) -> Path:
    """The folder the disk holding `path` is mounted at (the nearest existing parent on the same device)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        dev = path.stat().st_dev
        while path != path.parent and path.parent.stat().st_dev == dev:
            path = path.parent
    except OSError:
        pass
    return path


def _folder_of(e: OSError, where: Path) -> Path:
    if e.filename:
        named = Path(os.fsdecode(e.filename))
        return named if named.is_dir() else named.parent
    return where


def output_error(e: OSError, where: Path, what: str = "the repository", replaced: Path | None = None) -> OutputError:
    """`e`, raised while writing `what` at `where`, as a located message. `replaced`: the previous
    repository, which stays in place while the new one is built beside it (so a rebuild needs room for both)."""
    folder = _folder_of(e, where)
    named = os.fsdecode(e.filename) if e.filename else str(where)
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        disk = mount_point(folder)
        try:
            usage = shutil.disk_usage(disk)
            room = f"{human_size(usage.free)} free of {human_size(usage.total)}"
        except OSError:
            room = "free space unknown"
        kind = "no space left" if e.errno == errno.ENOSPC else "the disk quota is used up"
        needed = ""
        if replaced is not None and replaced.is_dir():
            needed = (
                f" The previous repository ({human_size(tree_size(replaced))}) stays in place until the new one "
                "is complete, so a rebuild needs about as much again free beside it."
            )
        return OutputError(
            f"cannot write {what} {where}: {kind} on the disk mounted at {disk} ({room}) while writing "
            f"{named}.{needed} Free some space there, or choose an output on another disk with -o."
        )
    if e.errno == errno.EROFS:
        return OutputError(
            f"cannot write {what} {where}: {folder} is on a read-only file system ({named}). "
            "Choose an output on a writable disk with -o."
        )
    if e.errno in (errno.EACCES, errno.EPERM):
        return OutputError(
            f"cannot write {what} {where}: permission denied on {named}. Fix the folder's permissions, "
            "or choose another output with -o."
        )
    reason = e.strerror or type(e).__name__
    return OutputError(f"cannot write {what} {where}: {named}: {reason}.")


@contextlib.contextmanager
def writing(where: Path, what: str = "the repository", replaced: Path | None = None) -> Iterator[None]:
    """Turn an OSError raised inside into an OutputError naming `where` (RepoBuilderErrors pass as they are)."""
    try:
        yield
    except RepoBuilderError:
        raise
    except OSError as e:
        raise output_error(e, where, what, replaced) from e
