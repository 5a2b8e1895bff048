"""ONNX -> Triton python-backend model whose model.py runs the ONNX file with onnxruntime (CPU)."""

from __future__ import annotations

from typing import ClassVar

from repo_builder.converters._python import ToPython
from repo_builder.converters.base import Format


class Onnx2Python(ToPython):
    name: ClassVar[str] = "onnx2python"
    source: ClassVar[Format] = "onnx"
    runtime: ClassVar[str] = "onnxruntime"
