"""The converter interface: one Protocol, one result dataclass, one context.

A converter turns one format into the next (`savedmodel2onnx`); `plan()` in `__init__` chains them for a
target. TensorFlow, tf2onnx, onnx and TensorRT are imported inside `convert()`/`available()` only.
Converters never print: they write to `ctx.log` (the model's log file).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from repo_builder.spec import ModelSpec

#: tensorflow = any source the spec names (SavedModel folder, Keras file, Python factory)
Format = Literal["tensorflow", "savedmodel", "onnx", "plan", "tftrt", "python"]


@dataclass
class Context:
    """What every conversion of one model shares."""

    spec_dir: Path  # paths in the spec are relative to it
    work: Path  # scratch folder for this model, removed after the build
    repo: Path  # the (staging) repository root, for outputs outside the model folder
    log: logging.Logger
    loaded: Any = None  # inspect.Loaded, set once the source is loaded


@dataclass
class Converted:
    """What one conversion produced."""

    path: Path  # the artifact (file or folder)
    format: str
    #: shown in the build summary (e.g. "plan is built at deployment")
    notes: list[str] = field(default_factory=list)
    #: recorded in the manifest entry (e.g. {"recipe": "m/1/build_plan.sh"})
    manifest: dict[str, Any] = field(default_factory=dict)
    #: "built", or "recipe" when a TensorRT plan is left to be built at deployment
    status: str = "built"
    #: files to place in each version folder: name in the version folder -> path produced
    files: dict[str, Path] = field(default_factory=dict)


class Converter(Protocol):
    name: ClassVar[str]
    source: ClassVar[Format]
    target: ClassVar[Format]

    def available(self) -> str | None:
        """None when usable here, else why not and what to install or which target to use instead."""
        ...

    def convert(self, model: ModelSpec, src: Path, out: Path, ctx: Context) -> Converted:
        """Convert `src` (an artifact of format `source`) into folder `out`."""
        ...


def tolerance(model: ModelSpec) -> dict[str, float]:
    """Verification tolerance by precision; the spec's `verify:` overrides."""
    atol, rtol = {"fp32": (1e-4, 1e-3), "fp16": (1e-2, 5e-2), "int8": (1e-1, 1e-1)}[model.precision]
    return {
        "atol": model.verify.atol if model.verify.atol is not None else atol,
        "rtol": model.verify.rtol if model.verify.rtol is not None else rtol,
    }


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ chatter out of the logs (set before TensorFlow is imported)."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def native_output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr file descriptors to `path` (appending): TensorFlow's C++
    logs, tf2onnx and warnings, which bypass Python's sys.stdout/sys.stderr."""
    import os
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
