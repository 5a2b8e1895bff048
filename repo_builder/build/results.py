"""What a build reports: one ModelResult per model, and the BuildResult of the whole repository."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from repo_builder.repository.manifest import BUILT_STATUSES, ManifestEntry, ModelStatus

#: statuses of a model the build reports as failed (KEPT: failed now, the previous build kept)
FAILED_STATUSES = (ModelStatus.FAILED, ModelStatus.KEPT)


@dataclass
class ModelResult:
    name: str
    target: str
    status: ModelStatus  # BUILT, RECIPE, CARRIED, FAILED or KEPT
    entry: ManifestEntry = field(default_factory=ManifestEntry)
    error: str | None = None
    log: Path | None = None
    seconds: float = 0.0
    size: int = 0


@dataclass
class BuildResult:
    repository: Path
    models: list[ModelResult]
    #: what the swap did with entries repo-builder did not write (kept, moved aside)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(m.status not in FAILED_STATUSES for m in self.models)

    @property
    def converted(self) -> list[str]:
        # an ensemble counts when its reference was computed (its config alone is no conversion)
        return [
            m.name for m in self.models if m.status in BUILT_STATUSES and (m.target != "ensemble" or m.entry.reference)
        ]
