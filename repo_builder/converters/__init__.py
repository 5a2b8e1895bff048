"""The converter registry (an explicit dict) and the planner that chains converters for a target."""

from __future__ import annotations

from repo_builder.converters.base import Context, Converted, Converter, Format
from repo_builder.converters.onnx2plan import Onnx2Plan
from repo_builder.converters.onnx2python import Onnx2Python
from repo_builder.converters.savedmodel2onnx import SavedModel2Onnx
from repo_builder.converters.savedmodel2python import SavedModel2Python
from repo_builder.converters.savedmodel2tftrt import SavedModel2TFTRT
from repo_builder.converters.tensorflow2savedmodel import TensorFlow2SavedModel
from repo_builder.spec.models import ModelSpec
from repo_builder.triton.platforms import PLATFORMS

__all__ = ["CONVERTERS", "TARGET_FORMAT", "Context", "Converted", "Converter", "plan"]

CONVERTERS: dict[str, Converter] = {
    c.name: c
    for c in (
        TensorFlow2SavedModel(),
        SavedModel2Onnx(),
        SavedModel2TFTRT(),
        Onnx2Plan(),
        SavedModel2Python(),
        Onnx2Python(),
    )
}

#: the format a target's artifact has (ensemble: none), from the targets' table
TARGET_FORMAT: dict[str, Format | None] = {target: p.format for target, p in PLATFORMS.items()}


def _chain(start: Format, goal: Format, via: Format | None = None) -> list[Converter] | None:
    """Shortest chain of registered converters from start to goal (through `via` when given)."""
    if via is not None:
        first, second = _chain(start, via), _chain(via, goal)
        return None if first is None or second is None else first + second
    frontier: list[tuple[Format, list[Converter]]] = [(start, [])]
    seen = {start}
    while frontier:
        fmt, path = frontier.pop(0)
        if fmt == goal:
            return path
        for c in CONVERTERS.values():
            if c.source == fmt and c.target not in seen:
                seen.add(c.target)
                frontier.append((c.target, [*path, c]))
    return None


def plan(model: ModelSpec) -> list[Converter]:
    """The converters that turn the model's source into its target's artifact, in order."""
    goal = TARGET_FORMAT[model.target]
    if goal is None:
        return []
    via: Format | None = None
    if model.target == "python":
        via = "onnx" if (model.python_runtime or "onnxruntime") == "onnxruntime" else None
    chain = _chain("tensorflow", goal, via)
    if chain is None:
        raise KeyError(f"no chain of converters reaches target {model.target}")
    if model.target == "python" and via is None:
        chain = [c for c in chain if c.name != "savedmodel2onnx"]
    return chain
