"""Atomic writes: a repository is built aside in a staging folder next to the target and swapped in at the end,
so an interrupted or failed build never leaves a half-written repository and never destroys the previous one.

Ownership: repo-builder replaces only what it wrote, as the manifest's `entries` record it. Anything else in
the repository folder (a `.git/`, notes, a hand-written model) is refused without `--force`; with `--force`
it is kept in place, or, when the new repository writes the same name, moved aside to `<repo>.kept-<time>/`.
Nothing repo-builder did not write is ever deleted.

The swap exchanges the staging folder and the repository in one step (Linux: renameat2 RENAME_EXCHANGE),
so the repository path always holds a whole repository, the old or the new; elsewhere it is two renames
that `recover()` completes. A lock file beside the repository keeps two writers apart (lock.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from repo_builder.errors import RepoBuilderError
from repo_builder.repository.disk import writing
from repo_builder.repository.layout import MANIFEST_NAME, work_dir
from repo_builder.repository.lock import real_repo, repo_lock
from repo_builder.repository.manifest import owned_entries, record_entries

#: a file repo-builder writes into a staging folder when it creates it and removes just before the swap:
#: a folder holding it has never held anything but what repo-builder wrote
STAGE_MARKER = ".repo-builder-staging"
#: a user's file repo-builder keeps in a repository without asking (it was always kept)
ALWAYS_KEPT = ("README.md",)
#: the test suite's hook: "<point>:<file>" makes the swap write <file> and wait at <point> to be killed
TEST_PAUSE_ENV = "REPO_BUILDER_TEST_PAUSE"


def stage_path(real: Path, pid: int | None = None) -> Path:
    return real.parent / f".{real.name}.staging-{os.getpid() if pid is None else pid}"


def _replaced_path(real: Path, pid: int | None = None) -> Path:
    """Where the two-rename swap puts the previous repository for the moment between its renames."""
    return real.parent / f".{real.name}.replaced-{os.getpid() if pid is None else pid}"


def kept_path(real: Path) -> Path:
    """A new folder beside the repository for entries moved out of its way (never removed by repo-builder)."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    path = real.parent / f"{real.name}.kept-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = real.parent / f"{real.name}.kept-{stamp}-{n}"
    return path


# ------------------------------------------------------------------------------------------- ownership


def foreign_entries(repo: Path) -> list[str]:
    """The top-level names of the repository folder that repo-builder did not write (README.md aside)."""
    if not repo.is_dir():
        return []
    owned = owned_entries(repo) or set()
    return sorted(n for n in os.listdir(repo) if n not in owned and n not in ALWAYS_KEPT)


def _listed(names: list[str], most: int = 10) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _holds(folder: Path, path: Path) -> bool:
    return path == folder or folder in path.parents


def check_output(
    repo: Path, force: bool = False, spec_path: Path | None = None, notes: list[str] | None = None
) -> None:
    """Refuse an output folder that repo-builder may not write: not a folder; the folder of the spec, the
    current folder, the home folder or one above them (even with `--force`: the repository folder is
    swapped as a whole); one holding entries repo-builder did not write (unless `--force`, which keeps them).

    First completes what a killed writer left (`recover`): call it holding the lock (`repo_lock`)."""
    repo = Path(os.path.normpath(repo.absolute()))
    real = real_repo(repo)
    with writing(repo):
        recover(real, notes)
        if real.exists() and not real.is_dir():
            raise RepoBuilderError(f"{repo} exists and is not a folder; choose another output with -o")
        guarded = [(Path(os.path.realpath(Path.cwd())), "the current folder")]
        if spec_path is not None:
            guarded.insert(0, (Path(os.path.realpath(Path(spec_path).absolute().parent)), f"the spec {spec_path}"))
        home = os.path.expanduser("~")
        if home and home != "~":
            guarded.append((Path(os.path.realpath(home)), "your home folder"))
        for path, what in guarded:
            if _holds(real, path):
                raise RepoBuilderError(
                    f"{repo} holds {what}; repo-builder swaps the repository folder as a whole, so the "
                    f"repository must be a folder of its own (also with --force). Choose one with -o, "
                    f"e.g. -o {repo / 'model_repository'}"
                )
        if real == Path(real.anchor):
            raise RepoBuilderError(f"{repo} is the root of the file system; choose a folder of its own with -o")
        foreign = foreign_entries(real)
        if not foreign or force:
            return
        if owned_entries(real) is None:
            raise RepoBuilderError(
                f"{repo} is not empty and was not written by repo-builder (no {MANIFEST_NAME}): it holds "
                f"{_listed(foreign)}. Choose another output with -o, or pass --force to write the repository "
                "there and keep them (repo-builder never deletes what it did not write)."
            )
        raise RepoBuilderError(
            f"{repo} holds entries repo-builder did not write: {_listed(foreign)}. Move them out of the "
            "repository, choose another output with -o, or pass --force to keep them in place (repo-builder "
            "never deletes what it did not write)."
        )


# -------------------------------------------------------------------------------------- stage and swap


@contextlib.contextmanager
def staged(repo: Path, force: bool = False, notes: list[str] | None = None) -> Iterator[Path]:
    """Yield an empty staging folder beside `repo`; on success swap it in, on any failure drop it.

    The previous repository stays in place until the new one is complete. Entries of the previous
    repository that repo-builder did not write are refused (without `force`) or carried into the new one
    (kept; moved aside to `<repo>.kept-<time>/` when the new one writes the same name); `notes` gets a
    line for each. Holds the repository's lock throughout.
    """
    repo = Path(os.path.normpath(repo.absolute()))
    with repo_lock(repo):
        real = real_repo(repo)
        with writing(repo):
            check_output(repo, force)
            stage = stage_path(real)
            if stage.exists():  # a stage of an earlier process with our pid: ours only if marked
                _discard(stage, real, notes)
            stage.mkdir()
            try:
                (stage / STAGE_MARKER).write_text(f"repo-builder staging folder of {real}\n")
            except BaseException:
                _remove_stage(stage)  # made just now: empty, or holding only the marker
                raise
        try:
            with writing(repo, replaced=real):
                yield stage
                shutil.rmtree(work_dir(stage), ignore_errors=True)  # never in a finished repository
                record_entries(stage, [n for n in os.listdir(stage) if n != STAGE_MARKER])
        except BaseException:
            _remove_stage(stage)
            raise
        with writing(repo, replaced=real):
            _swap(stage, real, notes)


def _swap(stage: Path, real: Path, notes: list[str] | None) -> None:
    """Put the complete `stage` at `real`, carrying over what the user placed in the previous repository."""
    ours = set(os.listdir(stage)) - {STAGE_MARKER}
    (stage / STAGE_MARKER).unlink()  # from here on the stage may hold the user's entries
    if real.is_dir():
        owned = owned_entries(real) or set()
        aside: Path | None = None
        kept = []
        try:
            for name in sorted(os.listdir(real)):
                if name in owned:
                    continue
                if name in ours:  # the new repository writes this name: the user's entry moves aside
                    aside = aside or kept_path(real)
                    aside.mkdir(exist_ok=True)
                    os.rename(real / name, aside / name)
                    if notes is not None:
                        notes.append(f"moved {real / name} aside to {aside / name}: the repository now writes {name}")
                else:
                    os.rename(real / name, stage / name)
                    kept.append(name)
        except BaseException:
            _discard(stage, real, notes)  # what was moved goes back; the new repository goes
            raise
        if notes is not None and [k for k in kept if k not in ALWAYS_KEPT]:
            notes.append(f"kept in {real} (not written by repo-builder): {_listed(kept)}")
        _pause_for_test("before-exchange")
        if _exchange(stage, real):
            _pause_for_test("after-exchange")
            _discard(stage, real, notes)  # the previous repository, now at the stage's name
            return
        replaced = _replaced_path(real)
        os.rename(real, replaced)
        _pause_for_test("between-renames")
        os.rename(stage, real)
        _discard(replaced, real, notes)
    else:
        _pause_for_test("before-exchange")
        os.rename(stage, real)


def recover(real: Path, notes: list[str] | None = None) -> None:
    """Complete what a killed writer left: a two-rename swap interrupted between its renames (the previous
    repository goes back to its path: `.<repo>.replaced-<pid>`, or `.<repo>.old` of releases before, when
    it holds our manifest), then the staging folders of dead writers (`_clean_dead`)."""
    if not (real.exists() or real.is_symlink()):
        candidates = [p for p in real.parent.glob(f".{real.name}.replaced-*") if owned_entries(p) is not None]
        candidates.sort(key=lambda p: p.stat().st_mtime)
        legacy = real.parent / f".{real.name}.old"
        if legacy.is_dir() and owned_entries(legacy) is not None:
            candidates.insert(0, legacy)
        if candidates:
            os.rename(candidates[-1], real)
    _clean_dead(real, notes)


def _clean_dead(real: Path, notes: list[str] | None) -> None:
    """Staging and replaced folders of writers that were killed (their pid is gone)."""
    for pattern in (f".{real.name}.staging-*", f".{real.name}.replaced-*"):
        for leftover in real.parent.glob(pattern):
            pid = leftover.name.rsplit("-", 1)[-1]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)) and leftover.is_dir():
                _discard(leftover, real, notes)


def _discard(folder: Path, real: Path, notes: list[str] | None) -> None:
    """Remove a staging or replaced folder, deleting only what repo-builder wrote there.

    A folder still marked as a stage holds only what repo-builder wrote: it goes. Otherwise only the
    entries its manifest records go; anything else is the user's: it moves back into the repository
    when the name is free there, else the folder is renamed to `<repo>.kept-<time>` and kept. A folder
    with neither marker nor manifest (a stage of a release before the marker, or a user's) is left as
    it is, unless it is empty.
    """
    if folder.is_symlink() or not folder.is_dir():
        return
    if (folder / STAGE_MARKER).is_file():
        _remove_stage(folder)
        return
    owned = owned_entries(folder)
    if owned is None:
        if not any(folder.iterdir()):
            folder.rmdir()
        return
    for name in sorted(os.listdir(folder), key=lambda n: n == MANIFEST_NAME):  # the manifest last
        item = folder / name
        if name in owned:
            if item.is_dir() and not item.is_symlink():
                shutil.rmtree(item)
            else:
                item.unlink()
        elif real.is_dir() and not os.path.lexists(real / name):
            os.rename(item, real / name)
    if any(folder.iterdir()):
        kept = kept_path(real)
        os.rename(folder, kept)
        if notes is not None:
            notes.append(f"kept {kept}: entries of the previous repository that repo-builder did not write")
    else:
        folder.rmdir()


def _remove_stage(stage: Path) -> None:
    """Remove a marked staging folder, its marker last: a removal cut short leaves it still marked."""
    with contextlib.suppress(OSError):
        for item in os.scandir(stage):
            if item.name != STAGE_MARKER:
                p = Path(item.path)
                shutil.rmtree(p, ignore_errors=True) if item.is_dir(follow_symlinks=False) else p.unlink()
    shutil.rmtree(stage, ignore_errors=True)


# ---------------------------------------------------------------------------------------- the exchange

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2() -> object | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _exchange(a: Path, b: Path) -> bool:
    """Exchange two folders in one step (Linux renameat2 RENAME_EXCHANGE); False where the system or the
    file system cannot, and the caller falls back to two renames."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:  # type: ignore[operator]
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _pause_for_test(point: str) -> None:
    hook = os.environ.get(TEST_PAUSE_ENV, "")
    name, _, ready = hook.partition(":")
    if name == point and ready:
        Path(ready).write_text(f"{os.getpid()}\n")
        time.sleep(600)  # the test kills the process here


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
