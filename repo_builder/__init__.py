"""repo-builder: TensorFlow models described in YAML -> a verified NVIDIA Triton model repository."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "build", "load_spec"]

if TYPE_CHECKING:
    from pathlib import Path

    from repo_builder.build.results import BuildResult
    from repo_builder.spec.models import Spec


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec file; raises SpecError with every problem located."""
    from repo_builder.spec import load_spec as _load

    return _load(path)


def build(spec: Spec, output: str | Path | None = None, **options: Any) -> BuildResult:
    """Convert, verify and write the whole repository (needs the `convert` extra)."""
    from repo_builder.build.build import build as _build

    return _build(spec, output, **options)
