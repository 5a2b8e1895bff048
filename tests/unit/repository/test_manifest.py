"""The typed manifest (repository.manifest): today's JSON reads and writes back byte for byte, statuses are
an enum, and the one builder writes the keys each kind of entry has always had."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from repo_builder.repository.manifest import (
    Manifest,
    ManifestEntry,
    ModelStatus,
    TensorRecord,
    dump_manifest,
    model_entry,
    parse_manifest,
    read_manifest,
    write_manifest,
)
from repo_builder.spec import load_spec

#: a manifest written by the release before the typed records (a real build of the examples, with a
#: TensorRT recipe, a kept model and a failed one added)
BUILT = Path(__file__).parent / "data" / "manifest_built.json"


def test_todays_manifest_round_trips_byte_for_byte(tmp_path: Path) -> None:
    text = BUILT.read_text()
    manifest = parse_manifest(json.loads(text))
    assert dump_manifest(manifest) == text
    write_manifest(tmp_path, manifest)
    again = read_manifest(tmp_path)
    assert again is not None
    assert (tmp_path / "repo_builder_manifest.json").read_text() == text
    assert dump_manifest(again) == text


def test_entries_are_typed_with_status_enum() -> None:
    manifest = parse_manifest(json.loads(BUILT.read_text()))
    assert manifest.models is not None and manifest.failed is not None
    cnn = manifest.models["image_cnn"]
    assert cnn.status is ModelStatus.BUILT
    assert cnn.inputs == [TensorRecord(name="image", dtype="FP32", dims=[32, 32, 3])]
    assert cnn.reference == "image_cnn/reference.npz"
    plan = manifest.models["mlp_plan"]
    assert plan.status is ModelStatus.RECIPE
    assert plan.recipes == {1: "mlp_plan/1/build_plan.sh", 2: "mlp_plan/2/build_plan.sh"}
    assert manifest.models["tabular_pipeline"].steps
    assert manifest.failed["kept_model"].kept == "the previous build of this model"
    assert manifest.failed["broken"].kept is None


def test_partial_and_unknown_entries_are_kept_as_written() -> None:
    """validate reads manifests others wrote: every field is optional, unknown keys survive."""
    data = {"format": 1, "models": {"m": {"versions": [1, 2, 3], "future_key": {"x": 1}}, "n": {"status": "built"}}}
    manifest = parse_manifest(data)
    assert manifest.models is not None
    assert manifest.models["m"].versions == [1, 2, 3]
    assert manifest.models["n"].status is ModelStatus.BUILT
    assert manifest.dump() == data
    assert ManifestEntry().dump() == {}


def test_updated_sets_fields_and_keeps_the_rest() -> None:
    entry = ManifestEntry(status=ModelStatus.BUILT, reference=None)
    assert entry.updated(tolerance={"atol": 0.1, "rtol": 0.2}).dump() == {
        "status": "built",
        "reference": None,
        "tolerance": {"atol": 0.1, "rtol": 0.2},
    }
    assert entry.dump() == {"status": "built", "reference": None}


def _spec(tmp_path: Path) -> Path:
    tensors = {"inputs": [{"name": "x", "dtype": "float32", "dims": [4]}], "outputs": []}
    tensors["outputs"] = [{"name": "y", "dtype": "float32", "dims": [2]}]
    models = [
        {"name": "a", "source": {"python": "m.py:f"}, "target": "onnx", "max_batch_size": 8, **tensors},
        {
            "name": "e",
            "target": "ensemble",
            "max_batch_size": 8,
            **tensors,
            "steps": [{"model": "a", "input_map": {"x": "x"}, "output_map": {"y": "y"}}],
        },
    ]
    (tmp_path / "m.py").write_text("def f():\n    return None\n")
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"models": models}))
    return path


def test_the_one_builder_writes_the_keys_each_kind_of_entry_had(tmp_path: Path) -> None:
    spec = load_spec(_spec(tmp_path))
    a, e = spec.model("a"), spec.model("e")
    common = ["backend", "dynamic_batching", "max_batch_size", "platform", "status", "target", "validation", "versions"]
    rendered = model_entry(a, ModelStatus.RENDERED, settings={}).dump()
    assert sorted(rendered) == sorted([*common, "settings"])
    assert rendered["status"] == "rendered" and rendered["platform"] == "onnxruntime_onnx"
    ensemble = model_entry(e, ModelStatus.BUILT, tensors=True).dump()
    assert sorted(ensemble) == sorted(
        [*common, "inputs", "outputs", "source", "artifacts", "reference", "max_error", "steps"]
    )
    assert ensemble["steps"] == ["a"] and ensemble["dynamic_batching"] is False and ensemble["source"] is None
    assert ensemble["inputs"] == [{"name": "x", "dtype": "FP32", "dims": [4]}]


def test_render_writes_rendered_entries(tmp_path: Path) -> None:
    from repo_builder.repository.write import render_repository

    spec = load_spec(_spec(tmp_path))
    render_repository(spec, tmp_path / "repo")
    manifest = read_manifest(tmp_path / "repo")
    assert isinstance(manifest, Manifest) and manifest.models is not None
    assert {m.status for m in manifest.models.values()} == {ModelStatus.RENDERED}
    assert sorted(json.loads((tmp_path / "repo" / "repo_builder_manifest.json").read_text())) == [
        "entries",
        "format",
        "generator",
        "models",
        "triton",
    ]
