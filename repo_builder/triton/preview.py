"""The embedded server's config rewrites, shared by the server (which serves them) and the validator (which
recognizes them, also from another process, by their marker parameters):

- the preview: a model whose backend the embedded server lacks, served through the python backend;
- the placement: on a host without GPUs, GPU instance groups served on the CPU (on a GPU host they stay).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from repo_builder.errors import DeploymentError

if TYPE_CHECKING:
    from tritonclient.grpc.model_config_pb2 import ModelConfig

#: parameter of a previewed model's config: the platform (or backend) it stands in for
PREVIEW_MARKER = "repo_builder_preview"
#: parameter of a config whose GPU instance groups were served on the CPU (a host without GPUs)
CPU_HOST_MARKER = "repo_builder_cpu_host"


def parse_config(text: str, where: str) -> ModelConfig:
    from google.protobuf import text_format
    from tritonclient.grpc.model_config_pb2 import ModelConfig

    try:
        return text_format.Parse(text, ModelConfig())
    except text_format.ParseError as e:
        raise DeploymentError(f"{where}: not a valid Triton model configuration: {e}") from e


def place(config: ModelConfig, gpu_host: bool) -> tuple[ModelConfig, list[str]]:
    """A copy of `config` placed on the host, and what changed: on a host without GPUs, every KIND_GPU group
    becomes KIND_CPU (its gpus cleared), marked by CPU_HOST_MARKER; on a GPU host, nothing changes."""
    from tritonclient.grpc.model_config_pb2 import ModelConfig, ModelInstanceGroup

    placed = ModelConfig()
    placed.CopyFrom(config)
    changes: list[str] = []
    if gpu_host:
        return placed, changes
    for i, group in enumerate(placed.instance_group):
        if group.kind == ModelInstanceGroup.KIND_GPU:
            group.kind = ModelInstanceGroup.KIND_CPU
            changes.append(f"instance_group[{i}].kind KIND_GPU -> KIND_CPU (no GPU on this host)")
        if group.gpus:
            group.ClearField("gpus")
            changes.append(f"instance_group[{i}].gpus cleared")
    if changes:
        placed.parameters[CPU_HOST_MARKER].string_value = "KIND_GPU served as KIND_CPU"
    return placed, changes


def preview_config(config: ModelConfig, gpu_host: bool = False) -> tuple[ModelConfig, list[str]]:
    """The config the embedded server loads in place of `config` (a copy), and what changed.

    Same name, tensors, batching and instance groups (placed on the host: see `place`); the python backend
    instead of the model's own, no TensorRT-only or accelerator settings; and a PREVIEW_MARKER parameter
    naming the original platform, by which a validator in another process knows it talks to a preview.
    """
    original = config.platform or config.backend
    preview, changes = place(config, gpu_host)
    preview.platform = ""
    preview.backend = "python"
    preview.runtime = ""
    if preview.default_model_filename:
        changes.append(f"default_model_filename {preview.default_model_filename!r} cleared")
        preview.default_model_filename = ""
    if preview.cc_model_filenames:
        changes.append("cc_model_filenames cleared")
        preview.ClearField("cc_model_filenames")
    for i, group in enumerate(preview.instance_group):
        if group.profile:
            group.ClearField("profile")
            changes.append(f"instance_group[{i}].profile cleared (TensorRT only)")
    if preview.HasField("optimization"):
        preview.ClearField("optimization")
        changes.append("optimization cleared (the backend's accelerators and CUDA graphs do not apply)")
    preview.parameters[PREVIEW_MARKER].string_value = original
    return preview, changes


def served_by_us(config: ModelConfig, served: ModelConfig) -> ModelConfig | None:
    """What an embedded server serves for the repository's `config`, known by the markers of the config it
    `served`; None when it serves the config as written."""
    gpu_host = CPU_HOST_MARKER not in served.parameters
    if is_preview(served):
        return preview_config(config, gpu_host)[0]
    if not gpu_host:
        return place(config, gpu_host)[0]
    return None


def is_preview(config: ModelConfig) -> bool:
    return PREVIEW_MARKER in config.parameters
