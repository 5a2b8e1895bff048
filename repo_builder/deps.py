"""Optional heavy dependencies: imported only where used, with a clear message when absent."""

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


def install_hint(module: str) -> str:
    extra, _ = OPTIONAL.get(module, ("all", ""))
    return f"pip install 'repo-builder[{extra}]'"


def require(module: str) -> ModuleType:
    """Import an optional dependency or raise MissingDependencyError saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        extra, purpose = OPTIONAL.get(module, ("all", "this command"))
        raise MissingDependencyError(
            f"{module} is needed for {purpose} but cannot be imported ({e}).\n"
            f"Install it with: pip install 'repo-builder[{extra}]'"
        ) from e
