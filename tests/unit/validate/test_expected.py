"""What the validator expects a server to serve, read from a repository (no server needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repo_builder.validate.expected import read_repository

CONFIG = """
name: "m"
platform: "onnxruntime_onnx"
max_batch_size: 0
{policy}
input [ {{ name: "x" data_type: TYPE_FP32 dims: [ 4 ] }} ]
output [ {{ name: "y" data_type: TYPE_FP32 dims: [ 2 ] }} ]
"""


@pytest.mark.parametrize(
    ("policy", "served"),
    [
        ("", [3]),
        ("version_policy: { latest: { num_versions: 2 } }", [2, 3]),
        ("version_policy: { all: { } }", [1, 2, 3]),
        ("version_policy: { specific: { versions: [ 1, 3 ] } }", [1, 3]),
    ],
)
def test_expected_versions_follow_the_version_policy(tmp_path: Path, policy: str, served: list[int]) -> None:
    """Every built version is in the manifest; the server serves those the config's policy picks."""
    model = tmp_path / "m"
    for v in (1, 2, 3):
        (model / str(v)).mkdir(parents=True)
    (model / "config.pbtxt").write_text(CONFIG.format(policy=policy))
    manifest = {"format": 1, "models": {"m": {"versions": [1, 2, 3]}}}
    (tmp_path / "repo_builder_manifest.json").write_text(json.dumps(manifest))
    assert read_repository(tmp_path).models["m"].versions == served
    (tmp_path / "repo_builder_manifest.json").unlink()  # without a manifest: the version folders
    assert read_repository(tmp_path).models["m"].versions == served
