"""The TF-TRT recipe without TensorFlow: what the generated script holds, and that it is Python.

Its execution with TensorFlow's own converter API is tests/integration/converters/test_tftrt_recipe.py.
"""

from __future__ import annotations

import ast
import contextlib
from pathlib import Path

import numpy as np

from repo_builder.converters import CONVERTERS
from repo_builder.converters.savedmodel2tftrt import load_recipe, recipe_script
from repo_builder.spec import ModelSpec


def _model(**kw: object) -> ModelSpec:
    base: dict[str, object] = {
        "name": "m",
        "source": {"python": "models.py:f"},
        "target": "tftrt",
        "max_batch_size": 8,
        "inputs": [{"name": "x", "dtype": "FP32", "dims": [-1, 3]}, {"name": "ids", "dtype": "INT64", "dims": [5]}],
        "outputs": [{"name": "y", "dtype": "FP32", "dims": [2]}],
    }
    base.update(kw)
    return ModelSpec.model_validate(base)


def _constants(text: str) -> dict[str, object]:
    """The script's top-level constants, read without running it."""
    found = {}
    for node in ast.parse(text).body:
        targets = [node.target] if isinstance(node, ast.AnnAssign) else getattr(node, "targets", [])
        for t in targets:
            if isinstance(t, ast.Name) and t.id.isupper():
                with contextlib.suppress(ValueError):  # not a literal (HERE / "...")
                    found[t.id] = ast.literal_eval(node.value)  # type: ignore[arg-type]
    return found


def test_tftrt_is_deferrable() -> None:
    """Without TF-TRT the build writes the recipe instead of failing the model up front."""
    assert CONVERTERS["savedmodel2tftrt"].deferrable is True


def test_the_recipe_holds_the_specs_settings() -> None:
    m = _model(
        precision="fp16",
        versions=[3],
        tftrt={"minimum_segment_size": 4, "maximum_cached_engines": 2, "profile_strategy": "Range+Optimal"},
    )
    text = recipe_script(m, 3)
    assert text.startswith("#!/usr/bin/env python3\n# Builds m/3/model.savedmodel with TF-TRT")
    consts = _constants(text)
    assert consts["CONVERTER_ARGS"] == {
        "input_saved_model_signature_key": "serving_default",
        "precision_mode": "FP16",
        "minimum_segment_size": 4,
        "max_workspace_size_bytes": 1 << 30,
        "maximum_cached_engines": 2,
        "use_dynamic_shape": True,
        "allow_build_at_runtime": False,
        "dynamic_shape_profile_strategy": "Range+Optimal",
    }
    assert consts["INPUTS"] == [("x", "float32"), ("ids", "int64")]
    assert consts["BUILD_SHAPES"] == [
        {"x": (1, 8, 3), "ids": (1, 5)},
        {"x": (4, 8, 3), "ids": (4, 5)},
        {"x": (8, 8, 3), "ids": (8, 5)},
    ]
    assert "CALIBRATION: Path | None = None" in text


def test_the_recipes_calibration_and_inputs_without_tensorflow(tmp_path: Path) -> None:
    """The data side of the recipe needs numpy only: full calibration batches by input name, build feeds."""
    m = _model(precision="int8", calibration={"data": "calib.npz", "batch_size": 4, "max_batches": 5})
    script = tmp_path / "build_tftrt.py"
    script.write_text(recipe_script(m, 1))
    np.savez(tmp_path / "calibration.npz", x=np.ones((10, 8, 3), np.float64), ids=np.zeros((10, 5), np.int32))
    recipe = load_recipe(script)
    assert tmp_path / "calibration.npz" == recipe.CALIBRATION
    batches = recipe.calibration_batches()
    assert len(batches) == 2  # 10 rows: two full batches of 4; TF-TRT wants one shape
    assert {k: (v.shape, v.dtype) for k, v in batches[0].items()} == {
        "x": ((4, 8, 3), np.float32),
        "ids": ((4, 5), np.int64),
    }
    assert [f["x"].shape for f in recipe.build_inputs()] == [(1, 8, 3), (4, 8, 3), (8, 8, 3)]
    assert recipe.converter_kwargs()["input_saved_model_dir"] == str(tmp_path / "tftrt_source.savedmodel")
    np.savez(tmp_path / "calibration.npz", x=np.ones((10, 8, 3)))
    try:
        recipe.calibration_batches()
    except SystemExit as e:
        assert "no array for input(s) ids" in str(e)
    else:
        raise AssertionError("a calibration file without an input's array is refused")
