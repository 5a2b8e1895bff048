"""SavedModel -> Triton python-backend model whose model.py runs the SavedModel with TensorFlow."""

from __future__ import annotations

from typing import ClassVar

from repo_builder.converters._python import ToPython
from repo_builder.converters.base import Format


class SavedModel2Python(ToPython):
    name: ClassVar[str] = "savedmodel2python"
    source: ClassVar[Format] = "savedmodel"
    runtime: ClassVar[str] = "tensorflow"
