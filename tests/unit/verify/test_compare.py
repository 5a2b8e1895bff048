"""The check's inputs (generated, ranged, sampled) and what it reports, with plain numpy runners."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from repo_builder.errors import ConversionError, SpecError
from repo_builder.inspect.tensors import Tensor
from repo_builder.spec.models import ModelSpec
from repo_builder.verify.compare import VARIABLE_SIZES, feeds, generate, verify
from repo_builder.verify.samples import load_samples

TOL = {"atol": 1e-4, "rtol": 1e-3}


def model(**extra: object) -> ModelSpec:
    return ModelSpec.model_validate({"name": "m", "source": {"python": "m.py:f"}, "target": "onnx", **extra})


def test_ranges_bound_integers_floats_and_strings() -> None:
    tensors = [Tensor("ids", "INT32", (None, 64)), Tensor("x", "FP32", (None, 64)), Tensor("s", "STRING", (None, 3))]
    feed = generate(tensors, 4, ranges={"ids": (0, 1), "x": (2.0, 3.0), "s": (10, 12)})
    assert set(np.unique(feed["ids"])) == {0, 1}  # both ends included
    assert feed["x"].min() >= 2.0 and feed["x"].max() < 3.0
    assert {int(v) for v in feed["s"].reshape(-1)} <= {10, 11, 12} and feed["s"].dtype == object


def test_strings_are_generated_as_decimal_text() -> None:
    feed = generate([Tensor("s", "STRING", (None, 2))], 3)
    assert feed["s"].shape == (3, 2)
    assert all(isinstance(v, bytes) and v.decode().isdigit() for v in feed["s"].reshape(-1))


def test_generated_strings_vary_in_length_and_content_between_rows_and_runs() -> None:
    """A model of the strings' length or text must not answer the same to every generated input (they were
    all one digit long: 'output length is the same for every generated input')."""
    tensors = [Tensor("text", "STRING", (None,))]
    first, second = (generate(tensors, 8, seed=s)["text"] for s in (0, 1))
    assert len({len(v) for v in first}) > 1
    assert any(len(v) == 1 and int(v) < 8 for v in first)  # words of a small vocabulary of digits are there too
    assert first.tolist() != second.tolist()
    runs = feeds(model(max_batch_size=8), tensors)
    assert len({tuple(len(v) for v in f["text"]) for _, f in runs}) == len(runs)


def test_constant_output_of_a_text_model_is_not_blamed_on_untrained_weights() -> None:
    def source(feed: dict) -> dict:
        return {"ids": np.zeros(len(feed["words"]), np.int64)}  # every generated word out of its vocabulary

    (note,) = verify(model(), [Tensor("words", "STRING", (None,))], source, source, TOL).notes
    assert "'ids' is the same for every generated input" in note
    assert "the generated strings are numbers' text" in note and "untrained" not in note


def test_variable_dims_are_checked_at_two_sizes() -> None:
    one = model(max_batch_size=0)
    runs = feeds(one, [Tensor("x", "FP32", (None, 3))])
    assert sorted(f["x"].shape[0] for _, f in runs) == sorted(VARIABLE_SIZES)
    batching = model(max_batch_size=8)
    runs = feeds(batching, [Tensor("x", "FP32", (None, None))])
    assert {f["x"].shape[1] for _, f in runs} == set(VARIABLE_SIZES)
    assert [b for b, _ in runs] == [1, 4, 8]


def test_constant_output_is_noted_and_a_varying_one_is_not() -> None:
    def source(feed: dict) -> dict:
        x = feed["x"]
        return {"probs": np.full((len(x), 10), 0.1, np.float32), "y": x * 2}

    result = verify(model(), [Tensor("x", "FP32", (None, 4))], source, source, TOL)
    assert len(result.notes) == 1
    assert "'probs' is the same for every generated input, so the check proves nothing" in result.notes[0]


def test_source_failing_on_generated_inputs_is_reported_with_the_fix() -> None:
    def source(feed: dict) -> dict:
        ids = feed["segment_ids"]
        if ids.max() > 1:
            raise ValueError("indices[0,3] = 5 is not in [0, 2)")
        return {"y": ids.astype(np.float32)}

    tensors = [Tensor("segment_ids", "INT32", (None, 6))]
    with pytest.raises(ConversionError) as e:
        verify(model(), tensors, source, source, TOL)
    text = str(e.value)
    assert "the source model itself fails on the check's generated inputs" in text
    assert "indices[0,3] = 5 is not in [0, 2)" in text and "verify: {ranges: {name: [low, high]}}" in text
    # with the range the check passes
    result = verify(model(), tensors, source, source, TOL, ranges={"segment_ids": (0, 1)})
    assert result.max_error == 0.0


def test_sample_data_is_what_the_check_and_the_reference_use(tmp_path: Path) -> None:
    m = model(max_batch_size=4, verify={"inputs": "samples.npz"})
    tensors = [Tensor("x", "FP32", (None, 2))]
    rows = np.arange(12, dtype=np.float64).reshape(6, 2)
    np.savez(tmp_path / "samples.npz", x=rows)
    samples = load_samples(m, tmp_path, tensors)
    assert samples["x"].dtype == np.float32
    result = verify(m, tensors, lambda f: {"y": f["x"] + 1}, lambda f: {"y": f["x"] + 1}, TOL, samples=samples)
    assert np.array_equal(result.reference_inputs["x"], rows[:4].astype(np.float32))  # max_batch_size rows
    assert result.batch_sizes == [1, 2, 4]


def test_sample_data_that_does_not_fit_the_model_is_refused(tmp_path: Path) -> None:
    m = model(verify={"inputs": "samples.npz"})
    np.savez(tmp_path / "samples.npz", x=np.zeros((2, 3)), z=np.zeros(2))
    with pytest.raises(SpecError, match=r"no array for input\(s\) 'w'; arrays 'z' name no input"):
        load_samples(m, tmp_path, [Tensor("x", "FP32", (None, 3)), Tensor("w", "FP32", (None, 1))])
    np.savez(tmp_path / "samples.npz", x=np.zeros((2, 3)))
    with pytest.raises(SpecError, match=r"input 'x' has shape \[2, 3\]; the model takes \[batch, 4\]"):
        load_samples(m.model_copy(update={"max_batch_size": 8}), tmp_path, [Tensor("x", "FP32", (None, 4))])


def test_sample_data_from_a_function(tmp_path: Path) -> None:
    (tmp_path / "samples.py").write_text(
        "import numpy as np\ndef feed():\n    return {'s': np.array([[b'7'], [b'x']])}\n"
    )
    m = model(verify={"inputs": "samples.py:feed"})
    samples = load_samples(m, tmp_path, [Tensor("s", "STRING", (None, 1))])
    assert samples["s"].tolist() == [[b"7"], [b"x"]]


def test_a_range_with_low_above_high_is_refused() -> None:
    with pytest.raises(ValueError, match=r"range \[3, 1\] has low > high"):
        model(verify={"ranges": {"ids": [3, 1]}})


def test_gpu_tolerance_allows_for_tf32() -> None:
    """fp32 on a GPU runs as TF32: the reference's CPU tolerance widens there (1.5e-4 was seen on an H200)."""
    from repo_builder.verify.compare import on_device

    cpu = {"atol": 1e-4, "rtol": 1e-3}
    assert on_device(cpu, "CPU") == cpu
    gpu = on_device(cpu, "GPU")
    assert gpu["atol"] >= 1.5e-4 * 10 and gpu["rtol"] >= cpu["rtol"]
    fp16 = {"atol": 1e-2, "rtol": 5e-2}
    assert on_device(fp16, "GPU") == fp16  # already wider than TF32 needs
