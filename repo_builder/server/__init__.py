"""The embedded tritonserver (from the nvidia-pytriton wheel) and the CPU preview of other backends."""

from __future__ import annotations

from repo_builder.server.embedded import EmbeddedServer, free_ports
from repo_builder.server.preview import PreviewedModel, prepare_repository

__all__ = ["EmbeddedServer", "PreviewedModel", "free_ports", "prepare_repository"]
