"""repo_builder_manifest.json: read, write, and the settings it records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from repo_builder.repository.layout import MANIFEST_FORMAT, manifest_path
from repo_builder.spec.models import ModelSpec


def read_manifest(repo: Path) -> dict[str, Any] | None:
    path = manifest_path(repo)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("format") == MANIFEST_FORMAT else None


def write_manifest(repo: Path, manifest: dict[str, Any]) -> None:
    path = manifest_path(repo)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_manifest(manifest))


def dump_manifest(manifest: dict[str, Any]) -> str:
    """Sorted JSON, one line per model entry: readable and diffable, and written by json's C encoder
    (an indented dump goes through the pure-Python encoder: ~0.3 s for 1,000 models)."""

    def compact(value: Any) -> str:
        return json.dumps(value, sort_keys=True, separators=(", ", ": "))

    lines = []
    for key in sorted(manifest):
        value = manifest[key]
        if isinstance(value, dict) and key in ("models", "failed") and value:
            entries = ",\n".join(f"    {compact(name)}: {compact(value[name])}" for name in sorted(value))
            lines.append(f"  {compact(key)}: {{\n{entries}\n  }}")
        else:
            lines.append(f"  {compact(key)}: {compact(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def settings_of(model: ModelSpec) -> dict[str, Any]:
    """The spec's settings of a model, as recorded in the manifest."""
    return model.model_dump(mode="json", exclude_none=True)
