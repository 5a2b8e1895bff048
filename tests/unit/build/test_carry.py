"""The model as its previous build resolved it (build.carry.resolved_from), for a config rendered again."""

from __future__ import annotations

from repo_builder.build.carry import resolved_from
from repo_builder.repository.manifest import ManifestEntry, ModelStatus, model_entry
from repo_builder.spec.models import ModelSpec

SOURCE = {"python": "models.py:f"}


def model(**fields: object) -> ModelSpec:
    return ModelSpec.model_validate({"name": "m", "source": SOURCE, "target": "onnx", **fields})


def test_tensors_the_model_gave_come_from_the_record_reshape_included() -> None:
    resolved = model(
        max_batch_size=4,
        inputs=[{"name": "x", "dtype": "FP32", "dims": [1], "reshape": []}],
        outputs=[{"name": "y", "dtype": "INT64", "dims": [3]}],
    )
    entry = model_entry(resolved, ModelStatus.BUILT, tensors=True)
    assert entry.inputs is not None and entry.inputs[0].reshape == []
    again = resolved_from(model(instance_groups=[{"kind": "KIND_CPU", "count": 2}]), entry)
    assert again is not None
    assert again.max_batch_size == 4
    assert [(t.name, t.dtype, t.dims, t.reshape) for t in again.inputs or []] == [("x", "FP32", [1], [])]
    assert [(t.name, t.dtype, t.dims, t.reshape) for t in again.outputs or []] == [("y", "INT64", [3], None)]
    assert again.instance_groups is not None and again.instance_groups[0].count == 2


def test_the_spec_s_tensors_keep_their_labels_and_take_the_recorded_reshape() -> None:
    entry = ManifestEntry.model_validate(
        {
            "max_batch_size": 0,
            "inputs": [{"name": "x", "dtype": "FP32", "dims": [1], "reshape": []}],
            "outputs": [{"name": "y", "dtype": "FP32", "dims": [2]}],
        }
    )
    spec = model(
        max_batch_size=0,
        inputs=[{"name": "x", "dtype": "FP32", "dims": [1], "optional": True}],
        outputs=[{"name": "y", "dtype": "FP32", "dims": [2], "labels": "labels.txt"}],
    )
    again = resolved_from(spec, entry)
    assert again is not None and again.inputs is not None and again.outputs is not None
    assert again.inputs[0].reshape == [] and again.inputs[0].optional
    assert again.outputs[0].labels == "labels.txt"


def test_a_record_that_does_not_fit_the_spec_is_none() -> None:
    entry = ManifestEntry.model_validate(
        {
            "max_batch_size": 8,
            "inputs": [{"name": "x", "dtype": "FP32", "dims": [4]}],
            "outputs": [{"name": "y", "dtype": "FP32", "dims": [2]}],
        }
    )
    outputs = [{"name": "y", "dtype": "FP32", "dims": [2]}]
    assert resolved_from(model(inputs=[{"name": "z", "dtype": "FP32", "dims": [4]}], outputs=outputs), entry) is None
    assert resolved_from(model(inputs=[{"name": "x", "dtype": "FP16", "dims": [4]}], outputs=outputs), entry) is None
    assert resolved_from(model(inputs=[{"name": "x", "dtype": "FP32", "dims": [5]}], outputs=outputs), entry) is None
    assert resolved_from(model(), ManifestEntry()) is None
