"""The files a spec names, checked on the raw document so that they are reported with its other problems.

Every named file must exist and be of the kind its key expects (a SavedModel is a folder, the rest regular
files: a FIFO would hang the build, /dev/zero fill the disk). Label and warmup files are copied into the
repository, and so into the image built from it: they must also be at most MAX_COPIED_BYTES and lie inside
the spec's folder (after symlinks are followed), unless the spec says `allow_outside_files: true`; a spec from
someone else must not be able to ship ~/.ssh/id_rsa inside a Triton image.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repo_builder.spec.problems import Loc, Problem
from repo_builder.spec.reader import file_kind, os_reason, shorten

#: the largest label or warmup file copied into a repository (256 MiB)
MAX_COPIED_BYTES = 256 << 20


@dataclass(frozen=True)
class NamedFile:
    loc: Loc
    rel: str
    what: str  # "a label file"
    folder: bool = False  # a SavedModel folder, not a file
    copied: bool = False  # copied into the repository: bounded and inside the spec's folder


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _sequence(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def named_files(data: dict[str, Any]) -> list[NamedFile]:
    """Every file the raw document names; values of the wrong type are left to the schema's messages."""
    files: list[NamedFile] = []
    for i, m in enumerate(_sequence(data.get("models"))):
        m = _mapping(m)
        source = _mapping(m.get("source"))
        if isinstance(source.get("saved_model"), str):
            where: Loc = ("models", i, "source", "saved_model")
            files.append(NamedFile(where, source["saved_model"], "a SavedModel folder", folder=True))
        if isinstance(source.get("keras_file"), str):
            files.append(NamedFile(("models", i, "source", "keras_file"), source["keras_file"], "a Keras file"))
        python = source.get("python")
        if isinstance(python, str) and ":" in python:
            module = python.rsplit(":", 1)[0]
            if module.endswith(".py"):
                files.append(NamedFile(("models", i, "source", "python"), module, "a Python file"))
        for o, out in enumerate(_sequence(m.get("outputs"))):
            labels = _mapping(out).get("labels")
            if isinstance(labels, str) and labels:
                files.append(NamedFile(("models", i, "outputs", o, "labels"), labels, "a label file", copied=True))
        samples = _mapping(m.get("verify")).get("inputs")
        if isinstance(samples, str) and samples:
            module = samples if samples.endswith(".npz") else samples.rsplit(":", 1)[0]
            if module.endswith((".npz", ".py")):
                files.append(NamedFile(("models", i, "verify", "inputs"), module, "a sample-data file"))
        calibration = _mapping(m.get("calibration")).get("data")
        if isinstance(calibration, str):
            files.append(NamedFile(("models", i, "calibration", "data"), calibration, "an .npz file"))
        for w, warm in enumerate(_sequence(m.get("warmup"))):
            for name, wi in _mapping(_mapping(warm).get("inputs")).items():
                file = _mapping(wi).get("file")
                if isinstance(file, str) and file:
                    where = ("models", i, "warmup", w, "inputs", name, "file")
                    files.append(NamedFile(where, file, "a warmup data file", copied=True))
    return files


def file_problems(data: dict[str, Any], base: Path) -> list[Problem]:
    """What is wrong with the files the spec names, relative to `base` (the spec's folder, resolved)."""
    outside_ok = data.get("allow_outside_files") is True
    problems: list[Problem] = []
    for f in named_files(data):
        message = _problem(f, base, outside_ok)
        if message is not None:
            problems.append(Problem(f.loc, message))
    return problems


def _problem(f: NamedFile, base: Path, outside_ok: bool) -> str | None:
    rel = shorten(f.rel)
    target = base / f.rel
    if f.copied and not outside_ok:
        try:
            real = target.resolve()
        except (OSError, ValueError) as e:
            return f"{rel} cannot be used: {os_reason(e)}; expected {f.what}"
        except RuntimeError:  # a symlink loop (Python < 3.13)
            return f"{rel} cannot be used: a symlink loop; expected {f.what}"
        if not real.is_relative_to(base):
            plain = Path(os.path.normpath(target)).is_relative_to(base)  # inside but for a symlink
            where = (
                f"leads outside the spec's folder {base} (to {shorten(str(real), 200)})"
                if plain
                else (f"is outside the spec's folder {base}")
            )
            return (
                f"{rel} {where}; {f.what[2:]}s are copied into the repository and its image, so they must be "
                "in the spec's folder, unless the spec says `allow_outside_files: true`"
            )
    try:
        info = os.stat(target)
    except (FileNotFoundError, NotADirectoryError):
        return f"{rel} does not exist (looked in {shorten(str(target), 200)}); expected {f.what}"
    except (OSError, ValueError) as e:
        return f"{rel} cannot be used: {os_reason(e)}; expected {f.what}"
    if f.folder:
        if not stat.S_ISDIR(info.st_mode):
            return f"{rel} is {'a file' if stat.S_ISREG(info.st_mode) else file_kind(info.st_mode)}; expected {f.what}"
        return None
    if not stat.S_ISREG(info.st_mode):
        return f"{rel} is {file_kind(info.st_mode)}; expected {f.what} (a regular file)"
    if f.copied and info.st_size > MAX_COPIED_BYTES:
        return (
            f"{rel} is {info.st_size:,} bytes; {f.what[2:]}s are copied into the repository and may be at most "
            f"{MAX_COPIED_BYTES:,} bytes (256 MiB)"
        )
    return None
