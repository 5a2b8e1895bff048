"""The one table of targets: Triton platform or backend, artifact name and format, config template.

Adding a target means adding its row here (and a converter that produces its format, if it has a new one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: formats a converter reads or writes (converters.base); tensorflow = any source the spec names (SavedModel
#: folder, Keras file, Python factory)
Format = Literal["tensorflow", "savedmodel", "onnx", "plan", "tftrt", "python"]


@dataclass(frozen=True)
class Platform:
    target: str
    #: value of `platform:` in config.pbtxt, or None when `backend:` is used instead
    platform: str | None
    #: value of `backend:` in config.pbtxt, or None
    backend: str | None
    #: Triton's default model file (or folder) name inside a version folder: the target's artifact
    model_file: str | None
    #: the format of that artifact, the goal of the target's converter chain (ensemble: none)
    format: Format | None
    #: Jinja template that renders the config.pbtxt
    template: str
    #: runs only on an NVIDIA GPU with TensorRT
    gpu_only: bool = False
    #: served by Triton's TensorFlow backend (its last release: releases.LAST_TENSORFLOW_BACKEND_RELEASE)
    tensorflow_backend: bool = False


PLATFORMS: dict[str, Platform] = {
    p.target: p
    for p in (
        Platform(
            "savedmodel",
            "tensorflow_savedmodel",
            None,
            "model.savedmodel",
            "savedmodel",
            "tensorflow_savedmodel.pbtxt.j2",
            tensorflow_backend=True,
        ),
        Platform(
            "tftrt",
            "tensorflow_savedmodel",
            None,
            "model.savedmodel",
            "tftrt",
            "tensorflow_savedmodel.pbtxt.j2",
            gpu_only=True,
            tensorflow_backend=True,
        ),
        Platform("onnx", "onnxruntime_onnx", None, "model.onnx", "onnx", "onnxruntime_onnx.pbtxt.j2"),
        Platform("tensorrt", "tensorrt_plan", None, "model.plan", "plan", "tensorrt_plan.pbtxt.j2", gpu_only=True),
        Platform("python", None, "python", "model.py", "python", "python.pbtxt.j2"),
        Platform("ensemble", "ensemble", None, None, None, "ensemble.pbtxt.j2"),
    )
}

TARGETS: tuple[str, ...] = tuple(PLATFORMS)


def artifact_name(fmt: Format) -> str:
    """The file (or folder) name in a version folder of an artifact of format `fmt` (`onnx` -> model.onnx)."""
    for p in PLATFORMS.values():
        if p.format == fmt and p.model_file is not None:
            return p.model_file
    raise KeyError(f"no target in PLATFORMS has artifacts of format {fmt!r}")
