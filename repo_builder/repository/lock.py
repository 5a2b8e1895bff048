"""The lock beside a repository (`.<repo>.repo-builder.lock`, flock): one writer of a repository at a time
(build, render, compose); and where a repository really is (a symbolic link is written through)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from repo_builder.errors import OutputError, RepoBuilderError
from repo_builder.repository.disk import writing


def real_repo(repo: Path) -> Path:
    """Where the repository really is: a symbolic link is followed (the link stays, its target is
    written); refused when it points to nothing or to something that is not a folder."""
    repo = Path(os.path.normpath(repo.absolute()))
    if repo.is_symlink():
        target = Path(os.path.realpath(repo))
        if not target.is_dir():
            what = "a file" if target.exists() else "nothing (the link is broken)"
            raise RepoBuilderError(
                f"{repo} is a symbolic link to {target}, which is {what}; point it to a folder, "
                "or choose another output with -o"
            )
        return target
    return Path(os.path.realpath(repo.parent)) / repo.name


def lock_path(real: Path) -> Path:
    return real.parent / f".{real.name}.repo-builder.lock"


_held: dict[Path, int] = {}


@contextlib.contextmanager
def repo_lock(repo: Path) -> Iterator[None]:
    """Hold `.<repo>.repo-builder.lock` (flock) while writing the repository or its deployment files.

    A second writer of the same repository does not wait: it stops at once with an OutputError naming
    the first one's pid. Re-entrant within a process (build, then compose, in one command). The file is
    removed when the lock is released, so it is left behind only by a writer that was killed (and a
    killed writer's lock is free: the next one takes it).
    """
    real = real_repo(repo)
    if real in _held:
        _held[real] += 1
        try:
            yield
        finally:
            _held[real] -= 1
        return
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no lock
        yield
        return
    path = lock_path(real)
    with writing(real):
        real.parent.mkdir(parents=True, exist_ok=True)
        fd = _acquire(path, fcntl)
    if fd is None:
        try:
            holder = path.read_text().strip() or "unknown"
        except OSError:
            holder = "unknown"
        raise OutputError(
            f"another repo-builder is writing {repo} (pid {holder}); wait for it to finish and run "
            "again (two writers of one repository would interleave)"
        )
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held[real] = 1
        try:
            yield
        finally:
            del _held[real]
            with contextlib.suppress(OSError):
                path.unlink()  # still holding it: a writer that opened this file sees it gone and retries
    finally:
        os.close(fd)


def _acquire(path: Path, fcntl: Any) -> int | None:
    """The locked file descriptor of `path`, None when another process holds it. A file removed by its
    holder between our open and our lock is not the lock any more: open the new one."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
