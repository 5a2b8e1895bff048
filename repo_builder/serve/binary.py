"""Locate the tritonserver shipped in the nvidia-pytriton wheel and lay out its backend folder."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from repo_builder.errors import MissingDependencyError

_INSTALL = "pip install 'repo-builder[serve]'  (installs nvidia-pytriton, which ships tritonserver)"


@dataclass(frozen=True)
class TritonDistribution:
    """Paths inside the installed nvidia-pytriton wheel."""

    root: Path  # <site-packages>/pytriton/tritonserver
    libs: Path  # <site-packages>/nvidia_pytriton.libs

    @property
    def binary(self) -> Path:
        return self.root / "bin" / "tritonserver"

    @property
    def python_backend(self) -> Path:
        return self.root / "backends" / "python"

    def stub(self, minor: int | None = None) -> Path:
        minor = sys.version_info.minor if minor is None else minor
        return self.root / "python_backend_stubs" / f"3.{minor}" / "triton_python_backend_stub"


def find_distribution() -> TritonDistribution:
    """Find the wheel's tritonserver without importing pytriton; MissingDependencyError when absent."""
    try:
        spec = importlib.util.find_spec("pytriton")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"The embedded Triton server needs nvidia-pytriton. Install it with: {_INSTALL}")
    package = Path(next(iter(spec.submodule_search_locations)))
    dist = TritonDistribution(root=package / "tritonserver", libs=package.parent / "nvidia_pytriton.libs")
    missing = [p for p in (dist.binary, dist.python_backend / "libtriton_python.so", dist.libs) if not p.exists()]
    if missing:
        raise MissingDependencyError(
            f"nvidia-pytriton at {package} has no usable tritonserver (missing: "
            + ", ".join(str(p) for p in missing)
            + f"). Reinstall it with: {_INSTALL}"
        )
    if not dist.stub().exists():
        available = sorted(
            p.parent.name for p in (dist.root / "python_backend_stubs").glob("*/triton_python_backend_stub")
        )
        raise MissingDependencyError(
            f"nvidia-pytriton has no python backend stub for Python 3.{sys.version_info.minor} "
            f"(stubs exist for: {', '.join(available) or 'none'}). "
            "Run repo-builder with one of those Python versions."
        )
    return dist


def make_backend_dir(dist: TritonDistribution, dest: Path) -> Path:
    """Write `dest/python/` holding the python backend and the stub of the running Python; return `dest`."""
    python_dir = dest / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    for name in ("libtriton_python.so", "triton_python_backend_utils.py"):
        shutil.copy2(dist.python_backend / name, python_dir / name)
    shutil.copy2(dist.stub(), python_dir / "triton_python_backend_stub")
    return dest
