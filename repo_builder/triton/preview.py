"""The CPU preview's config rewrite, shared by the embedded server (which serves it) and the validator (which
recognizes it, also from another process, by its PREVIEW_MARKER parameter)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from repo_builder.errors import DeploymentError

if TYPE_CHECKING:
    from tritonclient.grpc.model_config_pb2 import ModelConfig

#: parameter of a previewed model's config: the platform (or backend) it stands in for
PREVIEW_MARKER = "repo_builder_preview"


def parse_config(text: str, where: str) -> ModelConfig:
    from google.protobuf import text_format
    from tritonclient.grpc.model_config_pb2 import ModelConfig

    try:
        return text_format.Parse(text, ModelConfig())
    except text_format.ParseError as e:
        raise DeploymentError(f"{where}: not a valid Triton model configuration: {e}") from e


def preview_config(config: ModelConfig) -> tuple[ModelConfig, list[str]]:
    """The config the embedded server loads in place of `config` (a copy), and what changed.

    Same name, tensors, batching and instance counts; the python backend instead of the model's own, CPU
    instead of GPU, no GPU-only settings; and a PREVIEW_MARKER parameter naming the original platform, by
    which a validator in another process knows it talks to a preview.
    """
    from tritonclient.grpc.model_config_pb2 import ModelConfig, ModelInstanceGroup

    original = config.platform or config.backend
    preview = ModelConfig()
    preview.CopyFrom(config)
    changes: list[str] = []
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
        if group.kind == ModelInstanceGroup.KIND_GPU:
            group.kind = ModelInstanceGroup.KIND_CPU
            changes.append(f"instance_group[{i}].kind KIND_GPU -> KIND_CPU (no GPU)")
        if group.gpus:
            group.ClearField("gpus")
            changes.append(f"instance_group[{i}].gpus cleared")
        if group.profile:
            group.ClearField("profile")
            changes.append(f"instance_group[{i}].profile cleared (TensorRT only)")
    if preview.HasField("optimization"):
        preview.ClearField("optimization")
        changes.append("optimization cleared (GPU accelerators and CUDA graphs do not apply)")
    preview.parameters[PREVIEW_MARKER].string_value = original
    return preview, changes


def is_preview(config: ModelConfig) -> bool:
    return PREVIEW_MARKER in config.parameters
