"""The embedded tritonserver (from the nvidia-pytriton wheel) and the CPU preview of other backends."""

from __future__ import annotations

from repo_builder.serve.embedded import EmbeddedServer, free_ports
from repo_builder.serve.preview import PreviewedModel, prepare_repository

__all__ = ["EmbeddedServer", "PreviewedModel", "free_ports", "prepare_repository"]
