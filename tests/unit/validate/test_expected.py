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


def test_string_references_load_without_pickle(tmp_path: Path) -> None:
    """A STRING model's reference (object arrays of bytes at build time) is written so that the validator,
    which never unpickles a repository's files, reads it back as the objects a Triton client sends."""
    import numpy as np

    from repo_builder.build.pipeline import save_reference

    model = tmp_path / "m"
    (model / "1").mkdir(parents=True)
    (model / "config.pbtxt").write_text(CONFIG.format(policy=""))
    text = np.array([[b"12", b"ab c"], [b"", "é".encode()]], dtype=object)
    save_reference(model / "reference.npz", {"input/x": text, "output/y": np.ones((2, 2), np.float32)})
    with np.load(model / "reference.npz", allow_pickle=False) as data:  # no pickled object arrays
        assert data["input/x"].dtype.kind == "S"
    manifest = {"format": 1, "models": {"m": {"versions": [1], "reference": "m/reference.npz"}}}
    (tmp_path / "repo_builder_manifest.json").write_text(json.dumps(manifest))
    repo = read_repository(tmp_path)
    ref = repo.reference(repo.models["m"])
    assert ref is not None
    inputs, outputs = ref
    assert inputs["x"].dtype == object and inputs["x"].tolist() == text.tolist()
    assert outputs["y"].dtype == np.float32


def test_an_unreadable_reference_is_a_located_error(tmp_path: Path) -> None:
    """A reference with pickled arrays (or not an npz at all) is a DeploymentError naming the file."""
    import numpy as np

    from repo_builder.errors import DeploymentError

    model = tmp_path / "m"
    (model / "1").mkdir(parents=True)
    (model / "config.pbtxt").write_text(CONFIG.format(policy=""))
    np.savez(model / "reference.npz", **{"input/x": np.array([b"a"], dtype=object)})  # pickled
    manifest = {"format": 1, "models": {"m": {"versions": [1], "reference": "m/reference.npz"}}}
    (tmp_path / "repo_builder_manifest.json").write_text(json.dumps(manifest))
    repo = read_repository(tmp_path)
    with pytest.raises(DeploymentError, match=r"m: cannot read reference file .*reference.npz .*build --force"):
        repo.reference(repo.models["m"])
