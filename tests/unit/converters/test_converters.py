"""Converters without TensorFlow: the registry, the planner, and the GPU-free parts of tftrt/tensorrt."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from repo_builder.converters import CONVERTERS, TARGET_FORMAT, plan
from repo_builder.converters.onnx2python import Onnx2Python
from repo_builder.converters.savedmodel2python import SavedModel2Python
from repo_builder.converters.savedmodel2tftrt import (
    build_shapes,
    capability_message,
    converted_share,
    converter_kwargs,
)
from repo_builder.spec import ModelSpec
from repo_builder.triton.platforms import PLATFORMS, TARGETS, artifact_name
from repo_builder.verify.compare import tolerance

CONVERTER_FILES = sorted(
    p.stem for p in (Path(__file__).resolve().parents[3] / "repo_builder" / "converters").glob("*2*.py")
)


def model(**kw: object) -> ModelSpec:
    base: dict[str, object] = {"name": "m", "source": {"python": "models.py:f"}, "target": "onnx"}
    base.update(kw)
    return ModelSpec.model_validate(base)


def test_every_converter_file_is_registered() -> None:
    assert sorted(CONVERTERS) == CONVERTER_FILES
    for name, c in CONVERTERS.items():
        assert c.name == name
        assert name == f"{c.source}2{c.target}"


def test_every_target_has_a_plan() -> None:
    assert set(TARGET_FORMAT) == set(TARGETS)
    for target, fmt in TARGET_FORMAT.items():
        assert fmt == PLATFORMS[target].format
        if fmt is not None:  # the chain ends in the format the targets' table gives
            assert plan(model(target=target))[-1].target == fmt


def test_artifact_names_come_from_the_targets_table() -> None:
    assert {c.target: artifact_name(c.target) for c in CONVERTERS.values()} == {
        "savedmodel": "model.savedmodel",
        "tftrt": "model.savedmodel",
        "onnx": "model.onnx",
        "plan": "model.plan",
        "python": "model.py",
    }
    assert Onnx2Python().artifact == "model.onnx"
    assert SavedModel2Python().artifact == "model.savedmodel"
    with pytest.raises(KeyError, match="'tensorflow'"):
        artifact_name("tensorflow")


@pytest.mark.parametrize(
    ("target", "extra", "chain"),
    [
        ("savedmodel", {}, ["tensorflow2savedmodel"]),
        ("onnx", {}, ["tensorflow2savedmodel", "savedmodel2onnx"]),
        ("tftrt", {}, ["tensorflow2savedmodel", "savedmodel2tftrt"]),
        ("tensorrt", {}, ["tensorflow2savedmodel", "savedmodel2onnx", "onnx2plan"]),
        ("python", {}, ["tensorflow2savedmodel", "savedmodel2onnx", "onnx2python"]),
        ("python", {"python_runtime": "tensorflow"}, ["tensorflow2savedmodel", "savedmodel2python"]),
    ],
)
def test_plan_chains_converters(target: str, extra: dict[str, object], chain: list[str]) -> None:
    assert [c.name for c in plan(model(target=target, **extra))] == chain


def test_tolerance_by_precision_and_override() -> None:
    assert tolerance(model()) == {"atol": 1e-4, "rtol": 1e-3}
    assert tolerance(model(target="tensorrt", precision="fp16")) == {"atol": 1e-2, "rtol": 5e-2}
    assert tolerance(model(verify={"atol": 0.5})) == {"atol": 0.5, "rtol": 1e-3}


def test_tftrt_capability_message_names_what_works() -> None:
    assert capability_message("2.17.0", True) is None
    message = capability_message("2.21.0", False)
    assert message is not None
    assert message.startswith(
        "target tftrt needs TensorFlow built with TensorRT (TF-TRT), and this TensorFlow (2.21.0) is not"
    )
    for expected in (
        "TensorFlow <= 2.17",
        "NGC TensorFlow container",
        "savedmodel",
        "onnx",
        "tensorrt",
        "python",
        "optimization: {tensorrt: true}",
    ):
        assert expected in message


def test_tftrt_converter_arguments() -> None:
    m = model(
        target="tftrt",
        precision="fp16",
        max_batch_size=16,
        inputs=[{"name": "x", "dtype": "FP32", "dims": [-1, 3]}],
        outputs=[{"name": "y", "dtype": "FP32", "dims": [2]}],
        tftrt={"minimum_segment_size": 5, "max_workspace_size_bytes": 1 << 28, "profile_strategy": "Optimal"},
    )
    assert converter_kwargs(m, Path("/s")) == {
        "input_saved_model_dir": "/s",
        "input_saved_model_signature_key": "serving_default",
        "precision_mode": "FP16",
        "minimum_segment_size": 5,
        "max_workspace_size_bytes": 1 << 28,
        "maximum_cached_engines": 1,
        "use_dynamic_shape": True,
        "dynamic_shape_profile_strategy": "Optimal",
        "allow_build_at_runtime": False,
    }
    assert build_shapes(m) == [{"x": (1, 8, 3)}, {"x": (8, 8, 3)}, {"x": (16, 8, 3)}]


def test_tftrt_int8_uses_calibration(tmp_path: Path) -> None:
    m = model(target="tftrt", precision="int8", calibration={"data": "calib.npz"})
    assert converter_kwargs(m, tmp_path)["use_calibration"] is True
    assert converter_kwargs(m, tmp_path)["precision_mode"] == "INT8"


def test_tftrt_share_of_converted_ops() -> None:
    summary = "...\n[*] Total number of TensorRT engines: 1\n[*] % of OPs Converted: 88.89% [16/18]\n"
    assert converted_share(summary) == (16, 18)
    assert converted_share("[*] % of OPs Converted: 0.00% [0/12]") == (0, 12)
    assert converted_share("no summary") is None


def test_importing_the_build_modules_does_not_import_tensorflow() -> None:
    import subprocess

    code = (
        "import sys; import repo_builder.build.build, repo_builder.inspect.resolve, repo_builder.inspect.sources, "
        "repo_builder.verify.compare, repo_builder.verify.runners, repo_builder.verify.ensemble, "
        "repo_builder.build.pipeline, repo_builder.build.pool, "
        "repo_builder.converters; print(sorted({'tensorflow', 'tf2onnx', 'onnx', 'onnxruntime'} & "
        "set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_layout_adds_no_folder_triton_would_load(tmp_path: Path) -> None:
    """Triton loads every top-level folder and warns about non-numeric folders in a model folder: what
    repo-builder adds is a top-level file, files in the model folder, and files in a version folder."""
    from repo_builder.repository.layout import (
        logs_path,
        manifest_path,
        references_path,
        version_dir,
        work_dir,
    )

    repo = tmp_path / "repo"
    assert manifest_path(repo) == repo / "repo_builder_manifest.json"
    assert references_path(repo, "m") == repo / "m" / "reference.npz"
    assert logs_path(repo, "m") == repo / "m" / "build.log"
    assert version_dir(repo, "m", 2) == repo / "m" / "2"
    assert work_dir(tmp_path / ".repo.staging-1") == tmp_path / ".repo.staging-1" / ".work"
