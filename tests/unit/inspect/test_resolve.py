"""Completing the spec from the model's tensors (inspect.resolve) and comparing outputs (verify.compare)."""

from __future__ import annotations

import numpy as np
import pytest

from repo_builder.errors import SpecError
from repo_builder.inspect.resolve import apply_spec_names, resolve
from repo_builder.inspect.tensors import Loaded, Tensor
from repo_builder.spec import ModelSpec
from repo_builder.verify.compare import batch_sizes, compare, generate

IMAGE = [Tensor("image", "FP32", (None, 32, 32, 3))]
PROBS = [Tensor("probs", "FP32", (None, 10))]


def model(**kw: object) -> ModelSpec:
    base: dict[str, object] = {"name": "m", "source": {"python": "models.py:f"}, "target": "onnx"}
    base.update(kw)
    return ModelSpec.model_validate(base)


def test_fills_in_what_the_spec_leaves_out() -> None:
    r = resolve(model(), IMAGE, PROBS)
    assert r.max_batch_size == 8
    assert [(t.name, t.dtype, t.dims) for t in r.inputs or []] == [("image", "FP32", [32, 32, 3])]
    assert [(t.name, t.dtype, t.dims) for t in r.outputs or []] == [("probs", "FP32", [10])]


def test_no_batch_dim_means_max_batch_size_0() -> None:
    r = resolve(model(), [Tensor("x", "FP32", (3, 4))], [Tensor("y", "FP32", (None,))])
    assert r.max_batch_size == 0
    assert r.inputs is not None and r.inputs[0].dims == [3, 4]
    assert r.outputs is not None and r.outputs[0].dims == [-1]


def test_per_item_scalar_gets_dims_1_and_empty_reshape() -> None:
    r = resolve(model(), [Tensor("x", "FP32", (None, 4))], [Tensor("score", "FP32", (None,))])
    assert r.outputs is not None
    assert (r.outputs[0].dims, r.outputs[0].reshape) == ([1], [])


def test_explicit_max_batch_size_needs_a_batch_dim() -> None:
    with pytest.raises(SpecError) as e:
        resolve(model(max_batch_size=4), [Tensor("x", "FP32", (3, 4))], [Tensor("y", "FP32", (3,))])
    assert "max_batch_size is 4 but 'x' has shape [3, 4] with no variable first (batch) dimension" in str(e.value)


def test_contradictions_show_both_sides() -> None:
    spec = model(
        inputs=[{"name": "img", "dtype": "FP32", "dims": [32, 32, 3]}],
        outputs=[{"name": "probs", "dtype": "FP16", "dims": [10, 1]}],
    )
    with pytest.raises(SpecError) as e:
        resolve(spec, IMAGE, PROBS)
    assert str(e.value) == (
        "model m: the spec contradicts the model (models.py:f):\n"
        "  - input 'img': spec names it, the model has no such input; model inputs: image (FP32 [-1, 32, "
        "32, 3])\n"
        "  - input(s) image of the model are not in the spec; a model needs all its inputs\n"
        "  - output 'probs': spec dtype FP16, model dtype FP32\n"
        "  - output 'probs': spec rank 2 (dims [10, 1]), model rank 1 (dims [10], full shape [-1, 10], "
        "max_batch_size 8)\n"
        "Run `repo-builder inspect` on the source to see its tensors as spec YAML."
    )


def test_fixed_dim_that_differs() -> None:
    spec = model(inputs=[{"name": "image", "dtype": "FP32", "dims": [64, 32, 3]}])
    with pytest.raises(SpecError, match=r"input 'image': dim 0 is 64 in the spec, 32 in the model"):
        resolve(spec, IMAGE, PROBS)


def test_spec_may_fix_a_variable_dim() -> None:
    spec = model(inputs=[{"name": "ids", "dtype": "INT32", "dims": [128]}])
    r = resolve(spec, [Tensor("ids", "INT32", (None, None))], PROBS)
    assert r.inputs is not None and r.inputs[0].dims == [128]


def test_compare_reports_max_abs_and_rel() -> None:
    e = np.array([[1.0, 2.0]], dtype=np.float32)
    ok = compare("y", e, e + 1e-6, atol=1e-4, rtol=1e-3)
    assert ok.ok and ok.max_abs == pytest.approx(1e-6, rel=0.1)
    bad = compare("y", e, e + np.array([[0.0, 0.5]], dtype=np.float32), atol=1e-4, rtol=1e-3)
    assert not bad.ok and bad.max_abs == pytest.approx(0.5) and bad.max_rel == pytest.approx(0.25)
    assert not compare("y", e, e[:, :1], 1e-4, 1e-3).ok


def test_generated_inputs_have_dtypes_and_dims() -> None:
    feed = generate([Tensor("ids", "INT32", (None, None)), Tensor("x", "FP16", (None, 3))], batch=4)
    assert feed["ids"].shape == (4, 8) and feed["ids"].dtype == np.int32 and feed["ids"].max() < 8
    assert feed["x"].shape == (4, 3) and feed["x"].dtype == np.float16


def test_batch_sizes() -> None:
    assert batch_sizes(model(max_batch_size=64)) == [1, 32, 64]
    assert batch_sizes(model(max_batch_size=0)) == [0]
    assert batch_sizes(model(verify={"batch_sizes": [2, 100]})) == [2, 8]


def _loaded(inputs: list[Tensor], outputs: list[Tensor]) -> Loaded:
    return Loaded("saved_model", inputs, outputs, lambda feed: {"output_0": feed["inputs"]})


def test_spec_names_replace_made_up_names() -> None:
    loaded = _loaded([Tensor("inputs", "FP32", (None, 16))], [Tensor("output_0", "FP32", (None, 4))])
    spec = model(
        inputs=[{"name": "features", "dtype": "FP32", "dims": [16]}],
        outputs=[{"name": "probs", "dtype": "FP32", "dims": [4]}],
    )
    renamed, mapping = apply_spec_names(spec, loaded)
    assert mapping == {"inputs": "features", "output_0": "probs"}
    assert [t.name for t in renamed.inputs] == ["features"]
    assert renamed.call({"features": 1}) == {"probs": 1}


def test_several_made_up_names_map_by_dtype_and_dims() -> None:
    loaded = _loaded(
        [Tensor("inputs", "FP32", (None, 12)), Tensor("inputs_1", "FP32", (None, 8))],
        [Tensor("output_0", "FP32", (None, 1))],
    )
    spec = model(
        inputs=[
            {"name": "user", "dtype": "FP32", "dims": [8]},
            {"name": "item", "dtype": "FP32", "dims": [12]},
        ]
    )
    assert apply_spec_names(spec, loaded)[1] == {"inputs_1": "user", "inputs": "item"}
    ambiguous = model(
        inputs=[{"name": "a", "dtype": "FP32", "dims": [-1]}, {"name": "b", "dtype": "FP32", "dims": [-1]}]
    )
    assert apply_spec_names(ambiguous, loaded)[1] == {}


def test_real_names_are_never_replaced() -> None:
    loaded = _loaded([Tensor("features", "FP32", (None, 16))], [Tensor("probs", "FP32", (None, 4))])
    spec = model(inputs=[{"name": "x", "dtype": "FP32", "dims": [16]}])
    assert apply_spec_names(spec, loaded)[1] == {}


# --------------------------------------------------------------------------------------------- unknown rank


def test_unknown_rank_takes_the_spec_dims() -> None:
    inputs = [Tensor("x", "FP32", None), Tensor("mask", "INT32", (None, 4))]
    outputs = [Tensor("y", "FP32", (None, 4))]
    spec = model(
        inputs=[{"name": "x", "dtype": "FP32", "dims": [-1, 3]}, {"name": "mask", "dtype": "INT32", "dims": [4]}]
    )
    r = resolve(spec, inputs, outputs)
    assert r.max_batch_size == 8  # the tensors of known rank decide it
    assert [(t.name, t.dims) for t in r.inputs or []] == [("x", [-1, 3]), ("mask", [4])]


def test_unknown_rank_the_spec_does_not_give_is_a_problem() -> None:
    with pytest.raises(SpecError) as e:
        resolve(model(), [Tensor("x", "FP32", None)], [Tensor("y", "FP32", (None, 2))])
    assert (
        "input 'x' (FP32) has unknown rank in the model's signature; give its dims in the spec's `inputs:` "
        "(without the batch dimension), e.g. {name: x, dtype: FP32, dims: [-1, 3]}"
    ) in e.value.message
