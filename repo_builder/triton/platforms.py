"""The one table of targets: Triton platform or backend, default model file name, config template."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Platform:
    target: str
    #: value of `platform:` in config.pbtxt, or None when `backend:` is used instead
    platform: str | None
    #: value of `backend:` in config.pbtxt, or None
    backend: str | None
    #: Triton's default model file (or folder) name inside a version folder
    model_file: str | None
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
            "tensorflow_savedmodel.pbtxt.j2",
            tensorflow_backend=True,
        ),
        Platform(
            "tftrt",
            "tensorflow_savedmodel",
            None,
            "model.savedmodel",
            "tensorflow_savedmodel.pbtxt.j2",
            gpu_only=True,
            tensorflow_backend=True,
        ),
        Platform("onnx", "onnxruntime_onnx", None, "model.onnx", "onnxruntime_onnx.pbtxt.j2"),
        Platform("tensorrt", "tensorrt_plan", None, "model.plan", "tensorrt_plan.pbtxt.j2", gpu_only=True),
        Platform("python", None, "python", "model.py", "python.pbtxt.j2"),
        Platform("ensemble", "ensemble", None, None, "ensemble.pbtxt.j2"),
    )
}

TARGETS: tuple[str, ...] = tuple(PLATFORMS)
