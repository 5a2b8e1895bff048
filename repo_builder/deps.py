"""Optional heavy dependencies: imported only where used, with a clear message when absent.

Every import of TensorFlow, tf2onnx, onnx, onnxruntime or TensorRT goes through `require()` (or follows
one), so that a missing package is a MissingDependencyError naming the extra to install, never a raw
ModuleNotFoundError. A submodule (`tf2onnx.tf_loader`) is installed by its top-level package's extra.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from repo_builder.errors import MissingDependencyError

#: import name -> (extra that installs it, what it is used for)
OPTIONAL: dict[str, tuple[str, str]] = {
    "tensorflow": ("convert", "loading and converting TensorFlow models"),
    "tf2onnx": ("convert", "converting TensorFlow models to ONNX"),
    "onnx": ("convert", "checking ONNX models"),
    "onnxruntime": ("convert", "running ONNX models"),
    "pytriton": ("serve", "running the embedded tritonserver"),
    "tritonclient": ("serve", "talking to a Triton server"),
    "tensorrt": ("tensorrt", "building TensorRT plans (GPU hosts only)"),
}


def is_available(module: str) -> bool:
    """True when `module` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _extra(module: str) -> tuple[str, str]:
    return OPTIONAL.get(module.split(".")[0], ("all", "this command"))


def install_hint(module: str) -> str:
    """The command that installs `module` (or the package it belongs to)."""
    return f"pip install 'repo-builder[{_extra(module)[0]}]'"


def require(module: str) -> ModuleType:
    """Import an optional dependency or raise MissingDependencyError saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        _, purpose = _extra(module)
        raise MissingDependencyError(
            f"{module} is needed for {purpose} but cannot be imported ({e}).\nInstall it with: {install_hint(module)}"
        ) from e
