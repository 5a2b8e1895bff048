"""Target tftrt where TF-TRT is missing (TensorFlow 2.18+ wheels have no TensorRT): `build` writes the
SavedModel and the TF-TRT recipe, and the compose file runs it before triton.

The recipe script is then executed here with TensorFlow's own converter API as far as it goes without
TensorRT: its arguments against TrtGraphConverterV2's signature and TF's own parameter checks, the INT8
calibration feeds from the .npz, the input shapes of converter.build(), fed by name to the real SavedModel.
Beyond that (TrtGraphConverterV2 itself, the engines, the saved TF-TRT model) TensorRT is needed: the test
checks that the script stops there with a clear message, then skips with that reason. Nothing here runs
TF-TRT.
"""

from __future__ import annotations

import inspect
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from repo_builder.converters.savedmodel2tftrt import load_recipe
from tests.integration.examples import EXAMPLES, run_build

pytestmark = [pytest.mark.tensorflow, pytest.mark.slow]

SPEC = """\
repository: model_repository
models:
  - name: two_tower_trt
    source: {python: "models.py:build_two_tower"}
    target: tftrt
    max_batch_size: 8
    precision: int8
    calibration: {data: calibration.npz, batch_size: 4, max_batches: 2}
    tftrt: {minimum_segment_size: 2, maximum_cached_engines: 3, profile_strategy: Range}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The spec built once: the repository's version folder of the tftrt model."""
    base = tmp_path_factory.mktemp("tftrt")
    shutil.copy2(EXAMPLES / "models.py", base / "models.py")
    rng = np.random.default_rng(0)
    np.savez(
        base / "calibration.npz",
        user_features=rng.random((10, 8)).astype(np.float32),
        item_features=rng.random((10, 12)).astype(np.float32),
    )
    (base / "spec.yaml").write_text(SPEC)
    done = run_build(base / "spec.yaml", base / "model_repository")
    assert done.returncode == 0, done.stdout + done.stderr
    return base


def test_build_writes_the_savedmodel_and_the_recipe(built: Path) -> None:
    repo = built / "model_repository"
    version = repo / "two_tower_trt" / "1"
    assert sorted(p.name for p in version.iterdir()) == ["build_tftrt.py", "calibration.npz", "tftrt_source.savedmodel"]
    assert (version / "tftrt_source.savedmodel" / "saved_model.pb").is_file()
    entry = json.loads((repo / "repo_builder_manifest.json").read_text())["models"]["two_tower_trt"]
    assert entry["status"] == "recipe"
    assert entry["recipe"] == "two_tower_trt/1/build_tftrt.py"
    assert entry["reference"] == "two_tower_trt/reference.npz"  # validate checks the TF-TRT model against it
    assert (repo / "two_tower_trt" / "reference.npz").is_file()
    assert any("TF-TRT is converted at deployment" in n for n in entry["notes"])
    services = yaml.safe_load((built / "docker-compose.yml").read_text())["services"]
    assert services["tftrt-builder"]["image"] == "nvcr.io/nvidia/tensorflow:25.02-tf2-py3"
    assert services["triton"]["depends_on"] == {"tftrt-builder": {"condition": "service_completed_successfully"}}
    assert (built / ".env").stat().st_mode & 0o777 == 0o600


def test_the_recipe_runs_until_tensorrt_is_needed(built: Path) -> None:
    import tensorflow as tf
    from tensorflow.python.compiler.tensorrt import trt_convert

    version = built / "model_repository" / "two_tower_trt" / "1"
    recipe = load_recipe(version / "build_tftrt.py")

    # the arguments, against this TensorFlow's converter API
    recipe.check_arguments(trt_convert)
    kwargs = recipe.converter_kwargs()
    inspect.signature(trt_convert.TrtGraphConverterV2.__init__).bind(None, **kwargs)  # every name is a parameter
    assert "conversion_params" not in kwargs  # deprecated; the keyword arguments instead
    assert kwargs["input_saved_model_dir"] == str(version / "tftrt_source.savedmodel")
    assert kwargs["precision_mode"] == "INT8" and kwargs["use_calibration"] is True
    assert kwargs["minimum_segment_size"] == 2 and kwargs["maximum_cached_engines"] == 3
    assert kwargs["use_dynamic_shape"] is True and kwargs["dynamic_shape_profile_strategy"] == "Range"
    assert kwargs["allow_build_at_runtime"] is False
    params = {k: kwargs[k] for k in trt_convert.TrtConversionParams._fields}
    trt_convert._check_conversion_params(trt_convert.TrtConversionParams(**params), is_v2=True)

    # the calibration feeds: full batches of 4 rows, at most 2, by input name
    batches = recipe.calibration_batches()
    assert len(batches) == 2
    for feed in batches:
        assert {k: (v.shape, v.dtype) for k, v in feed.items()} == {
            "user_features": ((4, 8), np.float32),
            "item_features": ((4, 12), np.float32),
        }

    # the shapes converter.build() runs: batch 1, the middle and max_batch_size
    inputs = recipe.build_inputs()
    assert [feed["user_features"].shape[0] for feed in inputs] == [1, 4, 8]

    # the feeds have the names and shapes the real SavedModel's signature takes, as TF-TRT will feed them
    fn = tf.saved_model.load(str(version / "tftrt_source.savedmodel")).signatures["serving_default"]
    for feed in [*batches, *inputs]:
        out = fn(**{k: tf.constant(v) for k, v in feed.items()})
        assert set(out) == {"score", "embedding"}
        assert out["score"].shape[0] == feed["user_features"].shape[0]

    problem = recipe.tensorrt_problem()
    if problem is None:  # TF-TRT here: the conversion itself is the build's, tested on a GPU host
        pytest.skip("TF-TRT is available here; the recipe's conversion runs in the build instead")
    # beyond this point TensorRT is needed: the script says so and stops, having checked the rest
    run = subprocess.run([sys.executable, str(version / "build_tftrt.py")], capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert "is built without TensorRT; run this script in nvcr.io/nvidia/tensorflow:<yy.mm>-tf2-py3" in run.stderr
    assert not (version / "model.savedmodel").exists()
    pytest.skip(f"TrtGraphConverterV2, converter.build() and save need TensorRT: {problem}")


def test_the_cpu_preview_runs_the_savedmodel_tftrt_converts(built: Path, tmp_path: Path) -> None:
    """`repo-builder serve` previews the model before any deployment: on the SavedModel the recipe converts
    (model.savedmodel does not exist yet). The served preview itself is the serve tests' business."""
    from repo_builder.serve.preview import prepare_repository

    served = prepare_repository(built / "model_repository", tmp_path / "served")
    (preview,) = served.previews
    assert preview.artifacts == {
        1: (built / "model_repository" / "two_tower_trt" / "1" / "tftrt_source.savedmodel").resolve()
    }
    assert "version 1: the SavedModel TF-TRT converts at deployment" in preview.changes
