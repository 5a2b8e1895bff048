"""What the validator accepts as filled in by the server, and what it still reports."""

from __future__ import annotations

from google.protobuf import text_format
from tritonclient.grpc.model_config_pb2 import ModelConfig

from repo_builder.validate.configdiff import compare


def config(text: str) -> ModelConfig:
    return text_format.Parse('name: "m" backend: "python" max_batch_size: 8 ' + text, ModelConfig())


def test_gpus_of_a_gpu_group_that_names_none_are_filled_in() -> None:
    """A GPU host's Triton serves `KIND_GPU count 1` (or KIND_AUTO) as `gpus: [0]`: every default deployment."""
    for kind in ("KIND_GPU", "KIND_AUTO"):
        generated = config(f"instance_group {{ kind: {kind} count: 1 }}")
        served = config('instance_group { name: "m_0" kind: KIND_GPU count: 1 gpus: 0 }')
        differences, filled = compare(generated, served)
        assert differences == []
        assert "instance_group[0].gpus" in filled


def test_gpus_the_config_names_must_be_served() -> None:
    generated = config("instance_group { kind: KIND_GPU count: 1 gpus: 1 }")
    served = config('instance_group { name: "m_0" kind: KIND_GPU count: 1 gpus: 0 }')
    differences, _ = compare(generated, served)
    assert differences and "gpus" in differences[0]


def test_a_cpu_group_served_on_a_gpu_is_a_difference() -> None:
    generated = config("instance_group { kind: KIND_CPU count: 1 }")
    served = config('instance_group { name: "m_0" kind: KIND_GPU count: 1 gpus: 0 }')
    differences, _ = compare(generated, served)
    assert any("kind" in d for d in differences)
