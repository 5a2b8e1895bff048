"""repo_builder_manifest.json: its typed records, the one builder of model entries, read and write.

The JSON on disk is what releases before the typed records wrote: a record writes the fields that were
given to it (`exclude_unset`), so an entry carried over from a previous build is written back as it was
read, and a key the records do not know (an older or newer release's) is kept.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from repo_builder.repository.layout import LOG_NAME, MANIFEST_FORMAT, MANIFEST_NAME, manifest_path
from repo_builder.spec.models import ModelSpec
from repo_builder.triton.platforms import PLATFORMS


class ModelStatus(str, Enum):
    """What became of a model. A manifest entry records BUILT, RECIPE or RENDERED; a build's result also
    says CARRIED (previous build reused), RERENDERED (previous artifact reused, config.pbtxt rendered
    again: only config settings changed), FAILED, or KEPT (failed now, previous build kept)."""

    BUILT = "built"
    RECIPE = "recipe"  # a TensorRT plan left to be built at deployment from the recipe
    RENDERED = "rendered"  # configs only (`repo-builder render`)
    CARRIED = "carried"
    RERENDERED = "re-rendered"
    FAILED = "failed"
    KEPT = "kept"

    def __str__(self) -> str:
        return self.value


#: statuses of an entry whose artifacts repo-builder built (a later build may carry them over)
BUILT_STATUSES = (ModelStatus.BUILT, ModelStatus.RECIPE)


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", use_enum_values=False)

    def dump(self) -> dict[str, Any]:
        """The JSON object on disk: the fields given, unknown keys included."""
        return self.model_dump(mode="json", exclude_unset=True)


class TensorRecord(_Record):
    name: str
    dtype: str
    dims: list[int]
    #: the shape the model sees, when it differs from dims (written only when it does)
    reshape: list[int] | None = None


class SourceRecord(_Record):
    kind: str
    ref: str | None = None
    sha256: str | None = None


class ManifestEntry(_Record):
    """One model of the manifest. Every field is optional: validate reads manifests that other releases,
    or people, wrote."""

    target: str | None = None
    platform: str | None = None
    backend: str | None = None
    versions: list[int] | None = None
    max_batch_size: int | None = None
    dynamic_batching: bool | None = None
    inputs: list[TensorRecord] | None = None
    outputs: list[TensorRecord] | None = None
    status: ModelStatus | None = None
    #: "<version>/<file>" -> sha256 of what a version folder holds
    artifacts: dict[str, str] | None = None
    #: reference inputs/outputs, relative to the repository root
    reference: str | None = None
    tolerance: dict[str, float | None] | None = None
    max_error: float | None = None
    errors: dict[str, dict[str, float]] | None = None
    validation: dict[str, Any] | None = None
    notes: list[str] | None = None
    converters: list[str] | None = None
    renamed: dict[str, str] | None = None
    python_runtime: str | None = None
    #: TensorRT recipe of the first version (one path; older releases: a list or {version: path}), and by version
    recipe: Any = None
    recipes: dict[int, str] | None = None
    tftrt_ops_converted: list[Any] | None = None
    steps: list[str] | None = None
    # recorded by the build for reuse: what the build depended on (inputs_hash), and what the artifact
    # and its reference vectors depended on (conversion_hash: equal, only the config is rendered again)
    inputs_hash: str | None = None
    conversion_hash: str | None = None
    settings: dict[str, Any] | None = None
    source: SourceRecord | None = None
    tools: dict[str, str] | None = None

    def updated(self, **fields: Any) -> ManifestEntry:
        """A copy with `fields` set (validated)."""
        return ManifestEntry.model_validate({**self.dump(), **fields})


class FailedRecord(_Record):
    error: str | None = None
    log: str | None = None
    kept: str | None = None


class Manifest(_Record):
    format: int | None = None
    generator: dict[str, Any] | None = None
    triton: dict[str, Any] | None = None
    spec: str | None = None
    models: dict[str, ManifestEntry] | None = None
    failed: dict[str, FailedRecord] | None = None
    #: the top-level names of the repository that repo-builder wrote (recorded at the swap); a later
    #: build, render or compose replaces only these, and never deletes anything else
    entries: list[str] | None = None


def model_entry(model: ModelSpec, status: ModelStatus, *, tensors: bool = False, **fields: Any) -> ManifestEntry:
    """The one builder of manifest entries: what the spec (or the resolved model) says of `model`, its
    status, its inputs and outputs when `tensors`, and `fields` (the build's own: artifacts, reference,
    verification, the converters' records...). An ensemble's entry also names its steps and records that
    it has no source, artifacts or verification of its own."""
    platform = PLATFORMS[model.target]
    data: dict[str, Any] = {
        "target": model.target,
        "platform": platform.platform,
        "backend": platform.backend,
        "versions": list(model.versions),
        "max_batch_size": model.max_batch_size,
        "dynamic_batching": model.dynamic_batching_on,
        "validation": model.validation.model_dump(mode="json"),
        "status": status,
    }
    if tensors:
        for key, given in (("inputs", model.inputs), ("outputs", model.outputs)):
            data[key] = [
                {"name": t.name, "dtype": t.dtype, "dims": list(t.dims)}
                | ({"reshape": list(t.reshape)} if t.reshape is not None else {})
                for t in given or []
            ]
    if model.target == "ensemble":
        data.update(
            dynamic_batching=False,
            source=None,
            artifacts={},
            reference=None,
            max_error=None,
            steps=[s.model for s in model.steps or []],
        )
    data.update(fields)
    return ManifestEntry.model_validate(data)


def parse_manifest(data: Any) -> Manifest:
    """A manifest from its JSON object; raises ValueError when it is not one."""
    try:
        return Manifest.model_validate(data)
    except ValidationError as e:
        raise ValueError(str(e)) from e


def read_manifest(repo: Path) -> Manifest | None:
    """The repository's manifest, None when absent, unreadable or of another format."""
    path = manifest_path(repo)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        return None
    try:
        return parse_manifest(data)
    except ValueError:
        return None


def write_manifest(repo: Path, manifest: Manifest) -> None:
    path = manifest_path(repo)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_manifest(manifest))


def dump_manifest(manifest: Manifest | dict[str, Any]) -> str:
    """Sorted JSON, one line per model entry: readable and diffable, and written by json's C encoder
    (an indented dump goes through the pure-Python encoder: ~0.3 s for 1,000 models)."""
    data = manifest.dump() if isinstance(manifest, Manifest) else manifest

    def compact(value: Any) -> str:
        return json.dumps(value, sort_keys=True, separators=(", ", ": "))

    lines = []
    for key in sorted(data):
        value = data[key]
        if isinstance(value, dict) and key in ("models", "failed") and value:
            entries = ",\n".join(f"    {compact(name)}: {compact(value[name])}" for name in sorted(value))
            lines.append(f"  {compact(key)}: {{\n{entries}\n  }}")
        else:
            lines.append(f"  {compact(key)}: {compact(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def settings_of(model: ModelSpec) -> dict[str, Any]:
    """The spec's settings of a model, as recorded in the manifest."""
    return model.model_dump(mode="json", exclude_none=True)


#: where releases before the layout change kept the manifest: such a repository is still ours to replace
LEGACY_MANIFEST = (".repo_builder", "manifest.json")


def owned_entries(folder: Path) -> set[str] | None:
    """The top-level names of `folder` that repo-builder wrote, as its manifest records them (`entries`;
    a manifest written before they were recorded: its models' folders and failed models' logs), the
    manifest included. None when the folder has no manifest. A name that is not a plain file name
    (a path, `..`) is never one of ours, whatever the file says."""
    legacy = folder.joinpath(*LEGACY_MANIFEST)
    path = manifest_path(folder)
    if path.is_file():
        owned = {MANIFEST_NAME}
    elif legacy.is_file():
        owned, path = {LEGACY_MANIFEST[0]}, legacy
    else:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return owned
    if not isinstance(data, dict):
        return owned
    entries = data.get("entries")
    if isinstance(entries, list):
        owned.update(e for e in entries if isinstance(e, str))
    else:
        for key, suffix in (("models", ""), ("failed", f".{LOG_NAME}")):
            if isinstance(data.get(key), dict):
                owned.update(f"{name}{suffix}" for name in data[key] if isinstance(name, str))
    return {n for n in owned if n and n not in (".", "..") and "/" not in n and "\\" not in n and "\0" not in n}


def record_entries(folder: Path, entries: list[str]) -> None:
    """Record in the folder's manifest which of its top-level names repo-builder wrote."""
    path = manifest_path(folder)
    if not path.is_file():
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    data["entries"] = sorted(entries)
    path.write_text(dump_manifest(data), encoding="utf-8")
