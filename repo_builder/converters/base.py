"""The converter interface: one Protocol, one result dataclass, one context.

A converter turns one format into the next (`savedmodel2onnx`); `plan()` in `__init__` chains them for a
target. TensorFlow, tf2onnx, onnx and TensorRT are imported inside `convert()`/`available()` only, through
`repo_builder.deps` (a missing one is a MissingDependencyError with the install hint).
Converters never print: they write to `ctx.log` (the model's log file). Converters never write into the
repository: they write under `out` and `ctx.work`, and return what goes into the version folders in
`Converted.files` / `Converted.version_files` (repository.write.place_artifacts puts them there).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from repo_builder.repository.manifest import ModelStatus
from repo_builder.spec.models import ModelSpec
from repo_builder.triton.platforms import Format

if TYPE_CHECKING:
    from repo_builder.inspect.tensors import Loaded


@dataclass
class Context:
    """What every conversion of one model shares."""

    spec_dir: Path  # paths in the spec are relative to it
    work: Path  # scratch folder for this model, removed after the build
    log: logging.Logger
    loaded: Loaded | None = None  # set once the source is loaded


@dataclass
class Converted:
    """What one conversion produced."""

    path: Path  # the artifact (file or folder)
    format: str
    #: shown in the build summary (e.g. "plan is built at deployment")
    notes: list[str] = field(default_factory=list)
    #: fields of the manifest entry (ManifestEntry's names, e.g. {"recipe": "m/1/build_plan.sh"})
    manifest: dict[str, Any] = field(default_factory=dict)
    #: BUILT, or RECIPE when a TensorRT plan is left to be built at deployment
    status: ModelStatus = ModelStatus.BUILT
    #: files to place in each version folder: name in the version folder -> path produced
    files: dict[str, Path] = field(default_factory=dict)
    #: files for one version folder only (a TensorRT recipe names its version): version -> name -> path
    version_files: dict[int, dict[str, Path]] = field(default_factory=dict)


class Converter(Protocol):
    name: ClassVar[str]
    source: ClassVar[Format]
    target: ClassVar[Format]
    #: True when convert() still succeeds where available() says no, by leaving the work to the deployment
    #: host (onnx2plan writes the trtexec recipe); the build then does not fail the model up front
    deferrable: ClassVar[bool]

    def available(self) -> str | None:
        """None when usable here, else why not and what to install or which target to use instead."""
        ...

    def convert(self, model: ModelSpec, src: Path, out: Path, ctx: Context) -> Converted:
        """Convert `src` (an artifact of format `source`) into folder `out`."""
        ...
