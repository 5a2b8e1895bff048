"""What a rebuild keeps of the previous repository (build/carry.py) with the real TensorFlow and tf2onnx: a
model whose config settings alone changed keeps its artifact and reference and has its config rendered
again, without TensorFlow; a change its artifact depends on converts it again."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from repo_builder.validate.expected import read_repository
from tests.integration.examples import EXAMPLES, BuiltExamples, copy_examples, run_build

pytestmark = pytest.mark.tensorflow

MLP = {
    "name": "mlp",
    "source": {"python": "models.py:build_mlp"},
    "target": "onnx",
    "max_batch_size": 16,
    "outputs": [{"name": "probs", "dtype": "FP32", "dims": [4]}],
}


def write_spec(folder: Path, models: list[dict[str, Any]]) -> Path:
    spec = folder / "models.yaml"
    spec.write_text(yaml.safe_dump({"repository": "repo", "models": models}, sort_keys=False))
    return spec


def entry(repo: Path, name: str) -> dict[str, Any]:
    return json.loads((repo / "repo_builder_manifest.json").read_text())["models"][name]


def reference(repo: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(repo / name / "reference.npz") as data:
        return {k: data[k] for k in data.files}


def test_a_config_only_edit_renders_the_config_again_and_keeps_the_artifact(tmp_path: Path) -> None:
    shutil.copy2(EXAMPLES / "models.py", tmp_path / "models.py")
    (tmp_path / "labels.txt").write_text("a\nb\nc\nd\n")
    spec = write_spec(tmp_path, [MLP])
    repo = tmp_path / "repo"
    first = run_build(spec, repo)
    assert first.returncode == 0, first.stdout + first.stderr
    onnx_file = repo / "mlp" / "1" / "model.onnx"
    before: dict[str, Any] = {
        "onnx": (onnx_file.stat().st_ino, onnx_file.stat().st_mtime_ns, onnx_file.read_bytes()),
        "entry": entry(repo, "mlp"),
        "reference": reference(repo, "mlp"),
        "config": (repo / "mlp" / "config.pbtxt").read_text(),
    }
    # a second name for the previous config: the new one must not be written through the carried link
    os.link(repo / "mlp" / "config.pbtxt", tmp_path / "previous_config.pbtxt")

    edited = {
        **MLP,
        "outputs": [{"name": "probs", "dtype": "FP32", "dims": [4], "labels": "labels.txt"}],
        "instance_groups": [{"kind": "KIND_CPU", "count": 3}],
        "dynamic_batching": {"max_queue_delay_microseconds": 500, "preferred_batch_size": [4, 8]},
        "version_policy": {"all": True},
        "validation": {"p99_latency_ms": 50},
    }
    write_spec(tmp_path, [edited])
    done = run_build(spec, repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "TENSORFLOW_NOT_IMPORTED" in done.stdout  # rendered in the build's own process, without TensorFlow
    assert "config re-rendered" in done.stdout and "re-rendered the config of 1 model(s)" in done.stdout
    assert "converted" not in done.stdout.replace("re-rendered", "")

    stat = onnx_file.stat()
    assert (stat.st_ino, stat.st_mtime_ns, onnx_file.read_bytes()) == before["onnx"]
    after_ref = reference(repo, "mlp")
    assert after_ref.keys() == before["reference"].keys()
    assert all(np.array_equal(after_ref[k], before["reference"][k]) for k in after_ref)
    config = (repo / "mlp" / "config.pbtxt").read_text()
    assert config != before["config"]
    for line in ("count: 3", "kind: KIND_CPU", "max_queue_delay_microseconds: 500", 'label_filename: "labels.txt"'):
        assert line in config, config
    assert (repo / "mlp" / "labels.txt").read_text() == "a\nb\nc\nd\n"
    assert (tmp_path / "previous_config.pbtxt").read_text() == before["config"]
    assert "config.pbtxt rendered again" in (repo / "mlp" / "build.log").read_text()

    new = entry(repo, "mlp")
    assert new["conversion_hash"] == before["entry"]["conversion_hash"]
    assert new["inputs_hash"] != before["entry"]["inputs_hash"]
    assert new["settings"]["instance_groups"] == [{"kind": "KIND_CPU", "count": 3}]
    for key in ("artifacts", "reference", "tolerance", "max_error", "inputs", "outputs", "max_batch_size", "status"):
        assert new[key] == before["entry"][key], key
    assert new["validation"]["p99_latency_ms"] == 50

    # what `validate` reads of the repository: the new config, the same reference and tolerance
    expected = read_repository(repo).models["mlp"]
    assert expected.config is not None and expected.config.instance_group[0].count == 3
    assert list(expected.config.dynamic_batching.preferred_batch_size) == [4, 8]
    assert expected.versions == [1] and expected.thresholds == {"p99_latency_ms": 50.0}
    assert expected.tolerance == {k: float(v) for k, v in before["entry"]["tolerance"].items()}
    got = read_repository(repo).reference(expected)
    assert got is not None and np.array_equal(got[0]["features"], before["reference"]["input/features"])

    again = run_build(spec, repo)  # nothing changed since: carried as it is
    assert again.returncode == 0 and "unchanged" in again.stdout and "re-rendered" not in again.stdout

    write_spec(tmp_path, [{**edited, "opset": 15}])  # the artifact depends on it: converted again
    reconverted = run_build(spec, repo)
    assert reconverted.returncode == 0, reconverted.stdout + reconverted.stderr
    assert "converted 1 model(s)" in reconverted.stdout and "re-rendered" not in reconverted.stdout
    assert onnx_file.stat().st_ino != before["onnx"][0]
    import onnx

    assert onnx.load(str(onnx_file)).opset_import[0].version == 15
    assert entry(repo, "mlp")["conversion_hash"] != new["conversion_hash"]
    assert "count: 3" in (repo / "mlp" / "config.pbtxt").read_text()


def test_an_edit_of_the_source_converts_again(tmp_path: Path) -> None:
    shutil.copy2(EXAMPLES / "models.py", tmp_path / "models.py")
    spec = write_spec(tmp_path, [MLP])
    repo = tmp_path / "repo"
    assert run_build(spec, repo).returncode == 0
    digest = entry(repo, "mlp")["conversion_hash"]
    with (tmp_path / "models.py").open("a") as f:
        f.write("\n# edited\n")
    write_spec(tmp_path, [{**MLP, "instance_groups": [{"kind": "KIND_CPU", "count": 2}]}])
    done = run_build(spec, repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "converted 1 model(s)" in done.stdout and "re-rendered" not in done.stdout
    assert entry(repo, "mlp")["conversion_hash"] != digest
    assert "count: 2" in (repo / "mlp" / "config.pbtxt").read_text()


def test_a_config_edit_triton_would_refuse_keeps_the_previous_build(tmp_path: Path) -> None:
    """The spec names no tensors, so only the tensors the previous build found show the warmup is wrong."""
    shutil.copy2(EXAMPLES / "models.py", tmp_path / "models.py")
    model = {"name": "mlp", "source": {"python": "models.py:build_mlp"}, "target": "onnx"}
    spec = write_spec(tmp_path, [model])
    repo = tmp_path / "repo"
    assert run_build(spec, repo).returncode == 0
    config = (repo / "mlp" / "config.pbtxt").read_text()
    write_spec(tmp_path, [{**model, "warmup": [{"name": "w", "inputs": {"nope": {"data": "zero"}}}]}])
    done = run_build(spec, repo)
    assert done.returncode == 1
    assert "TENSORFLOW_NOT_IMPORTED" in done.stdout
    assert "FAILED (previous kept)" in done.stdout and "nope" in done.stderr
    assert (repo / "mlp" / "config.pbtxt").read_text() == config
    assert (repo / "mlp" / "1" / "model.onnx").is_file()
    assert "nope" in (repo / "mlp" / "build.log").read_text()


def test_a_step_whose_config_alone_changed_leaves_its_ensemble_as_it_was(
    built_examples: BuiltExamples, tmp_path: Path
) -> None:
    spec = copy_examples(tmp_path / "examples")
    repo = tmp_path / "repo"
    shutil.copytree(built_examples.repository, repo)
    data = yaml.safe_load(spec.read_text())
    data["models"][0]["instance_groups"] = [{"kind": "KIND_CPU", "count": 2}]  # tabular_mlp
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    done = run_build(spec, repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "TENSORFLOW_NOT_IMPORTED" in done.stdout
    assert "re-rendered the config of 1 model(s), their artifacts kept (only config settings changed): tabular_mlp" in (
        done.stdout
    )
    assert "converted" not in done.stdout.replace("re-rendered", "")
    before = entry(built_examples.repository, "tabular_pipeline")
    assert entry(repo, "tabular_pipeline")["inputs_hash"] == before["inputs_hash"]  # its reference carried
