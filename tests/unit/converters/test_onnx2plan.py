"""The TensorRT target without a GPU: profile shapes, the trtexec recipe, the capability message.

The real plan build (TensorRT 10 Python API) is tested in tests/integration/build/test_build.py and skips here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from repo_builder.converters.onnx2plan import (
    Onnx2Plan,
    capability_message,
    profile_shapes,
    recipe_script,
    trtexec_args,
    write_recipe,
)
from repo_builder.spec import ModelSpec


def model(**kw: object) -> ModelSpec:
    base: dict[str, object] = {
        "name": "bert",
        "source": {"python": "models.py:f"},
        "target": "tensorrt",
        "max_batch_size": 32,
        "inputs": [
            {"name": "ids", "dtype": "INT32", "dims": [-1]},
            {"name": "extra", "dtype": "FP32", "dims": [4]},
        ],
        "outputs": [{"name": "y", "dtype": "FP32", "dims": [2]}],
    }
    base.update(kw)
    return ModelSpec.model_validate(base)


def test_profile_from_max_batch_size_and_dynamic_dims() -> None:
    assert profile_shapes(model()) == {
        "ids": ((1, 1), (16, 16), (32, 128)),
        "extra": ((1, 4), (16, 4), (32, 4)),
    }
    given = model(tensorrt={"opt_batch_size": 8, "shapes": {"ids": {"min": [4], "opt": [64], "max": [512]}}})
    assert profile_shapes(given)["ids"] == ((1, 4), (8, 64), (32, 512))


def test_profile_of_a_non_batching_model() -> None:
    m = model(
        max_batch_size=0,
        inputs=[{"name": "x", "dtype": "FP32", "dims": [3, 224, 224]}],
        outputs=[{"name": "y", "dtype": "FP32", "dims": [10]}],
    )
    assert profile_shapes(m) == {"x": ((3, 224, 224), (3, 224, 224), (3, 224, 224))}


def test_trtexec_command_fp16() -> None:
    assert trtexec_args(model(precision="fp16", tensorrt={"workspace_mib": 2048}), 1) == [
        "trtexec",
        "--onnx=bert/1/model.onnx",
        "--saveEngine=bert/1/model.plan",
        "--minShapes=ids:1x1,extra:1x4",
        "--optShapes=ids:16x16,extra:16x4",
        "--maxShapes=ids:32x128,extra:32x4",
        "--fp16",
        "--memPoolSize=workspace:2048M",
        "--timingCacheFile=bert/1/timing.cache",
    ]


def test_trtexec_command_int8_and_no_timing_cache() -> None:
    m = model(precision="int8", calibration={"data": "calib.npz"}, tensorrt={"timing_cache": False})
    args = trtexec_args(m, 2, calibration_cache=True)
    assert args[-3:] == [
        "--fp16",
        "--calib=bert/2/calibration.cache",
        "--memPoolSize=workspace:1024M",
    ]
    assert "--int8" in args
    assert not any(a.startswith("--timingCacheFile") for a in args)
    assert "placeholder INT8 ranges" in recipe_script(m, 2, calibration_cache=False)


def test_recipe_is_a_shell_script_relative_to_the_repository_root(tmp_path: Path) -> None:
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"onnx")
    script = write_recipe(tmp_path / "repo", model(precision="fp16"), 1, onnx)
    assert script == tmp_path / "repo" / "bert" / "1" / "build_plan.sh"  # next to model.plan
    assert (script.parent / "model.onnx").read_bytes() == b"onnx"
    text = script.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert 'cd "$(dirname "$0")/../.."\n' in text
    # the script really runs trtexec from the repository root: try it with a stand-in trtexec on PATH
    # (a test double, because TensorRT's trtexec cannot run here)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "trtexec").write_text('#!/bin/sh\npwd > "$PWD/trtexec.cwd"\necho "$@" > "$PWD/trtexec.args"\n')
    (bin_dir / "trtexec").chmod(0o755)
    subprocess.run([str(script)], check=True, env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, cwd=tmp_path)
    repo = tmp_path / "repo"
    assert (repo / "trtexec.cwd").read_text().strip() == str(repo)
    assert "--onnx=bert/1/model.onnx --saveEngine=bert/1/model.plan" in (repo / "trtexec.args").read_text()
    # $TRTEXEC names another one; without it and off PATH, the path in NVIDIA's TensorRT images is tried
    (repo / "trtexec.args").unlink()
    env = {"PATH": "/usr/bin:/bin", "TRTEXEC": str(bin_dir / "trtexec")}
    subprocess.run([str(script)], check=True, env=env, cwd=tmp_path)
    assert (repo / "trtexec.args").is_file()
    missing = subprocess.run([str(script)], env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path, capture_output=True, text=True)
    assert missing.returncode != 0 and "/usr/src/tensorrt/bin/trtexec" in missing.stderr


def test_capability_message() -> None:
    assert capability_message(None) is None
    message = capability_message("ModuleNotFoundError: No module named 'tensorrt'")
    assert message == (
        "TensorRT's Python API is not usable here (ModuleNotFoundError: No module named 'tensorrt'); the "
        "plan is "
        "built at deployment on the target GPU with trtexec from the recipe <model>/<version>/build_plan.sh "
        "(install "
        "TensorRT 10 with `pip install 'repo-builder[tensorrt]'` on a GPU host to build it now)"
    )


def test_available_here() -> None:
    problem = Onnx2Plan().available()
    try:
        import tensorrt  # noqa: F401
    except Exception:
        assert problem is not None and "trtexec" in problem
    else:
        pytest.skip("TensorRT is importable here")


class RecordingTensorRTDouble:
    """A TEST DOUBLE of the `tensorrt` module (TensorRT cannot run here: no GPU, no libnvinfer).

    It records the TensorRT 10 API calls build_plan() makes, so the wiring (explicit batch network, profile
    shapes, precision flags, workspace limit, timing cache) is checked; the real build runs in
    tests/integration/build/test_build.py::test_tensorrt_plan_is_built_where_tensorrt_exists on a GPU host.
    """

    class Logger:
        WARNING = "warning"

        def __init__(self, level: str) -> None:
            self.level = level

    class MemoryPoolType:
        WORKSPACE = "workspace"

    class BuilderFlag:
        FP16 = "fp16"
        INT8 = "int8"

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []
        double = self

        class Profile:
            def set_shape(self, name: str, lo: tuple[int, ...], mid: tuple[int, ...], hi: tuple[int, ...]) -> None:
                double.calls.append(("set_shape", name, lo, mid, hi))

        class Cache:
            def serialize(self) -> bytes:
                return b"timing"

        class Config:
            def set_memory_pool_limit(self, pool: str, size: int) -> None:
                double.calls.append(("set_memory_pool_limit", pool, size))

            def set_flag(self, flag: str) -> None:
                double.calls.append(("set_flag", flag))

            def add_optimization_profile(self, profile: object) -> None:
                double.calls.append(("add_optimization_profile",))

            def create_timing_cache(self, blob: bytes) -> Cache:
                double.calls.append(("create_timing_cache", blob))
                return Cache()

            def set_timing_cache(self, cache: object, ignore_mismatch: bool) -> None:
                double.calls.append(("set_timing_cache", ignore_mismatch))

            def get_timing_cache(self) -> Cache:
                return Cache()

        class Builder:
            def __init__(self, logger: object) -> None:
                pass

            def create_network(self, flags: int) -> str:
                double.calls.append(("create_network", flags))
                return "network"

            def create_builder_config(self) -> Config:
                return Config()

            def create_optimization_profile(self) -> Profile:
                return Profile()

            def build_serialized_network(self, network: str, config: object) -> bytes:
                double.calls.append(("build_serialized_network", network))
                return b"plan-bytes"

        class OnnxParser:
            num_errors = 0

            def __init__(self, network: str, logger: object) -> None:
                pass

            def parse_from_file(self, path: str) -> bool:
                double.calls.append(("parse_from_file", Path(path).name))
                return True

        self.Builder = Builder
        self.OnnxParser = OnnxParser


def test_build_plan_calls_tensorrt_10_api_recorded_by_a_double(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import logging
    import sys

    from repo_builder.converters.base import Context
    from repo_builder.converters.onnx2plan import build_plan

    double = RecordingTensorRTDouble()
    monkeypatch.setitem(sys.modules, "tensorrt", double)
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"onnx")
    ctx = Context(tmp_path, tmp_path, logging.getLogger("test"))
    build_plan(
        model(precision="fp16", tensorrt={"workspace_mib": 512}),
        onnx,
        tmp_path / "out" / "model.plan",
        tmp_path / "cache",
        ctx,
    )
    assert (tmp_path / "out" / "model.plan").read_bytes() == b"plan-bytes"
    assert (tmp_path / "cache" / "timing.cache").read_bytes() == b"timing"
    assert double.calls == [
        ("create_network", 0),
        ("parse_from_file", "model.onnx"),
        ("set_memory_pool_limit", "workspace", 512 << 20),
        ("set_shape", "ids", (1, 1), (16, 16), (32, 128)),
        ("set_shape", "extra", (1, 4), (16, 4), (32, 4)),
        ("add_optimization_profile",),
        ("set_flag", "fp16"),
        ("create_timing_cache", b""),
        ("set_timing_cache", False),
        ("build_serialized_network", "network"),
    ]


def test_convert_without_tensorrt_returns_the_recipe_files_for_the_repository_to_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """onnx2plan writes under its own folder only; repository.write.place_artifacts puts each version's
    recipe and ONNX in that version folder (the one writer of a model folder)."""
    import logging

    from repo_builder.converters.base import Context
    from repo_builder.repository.manifest import ModelStatus
    from repo_builder.repository.write import place_artifacts

    monkeypatch.setattr(Onnx2Plan, "available", lambda self: "no TensorRT here (test)")
    onnx = tmp_path / "src" / "model.onnx"
    onnx.parent.mkdir()
    onnx.write_bytes(b"onnx")
    out = tmp_path / "work" / "onnx2plan"
    m = model(versions=[1, 2])
    converted = Onnx2Plan().convert(m, onnx, out, Context(tmp_path, tmp_path / "work", logging.getLogger("test")))
    assert converted.status is ModelStatus.RECIPE
    assert converted.manifest == {
        "recipe": "bert/1/build_plan.sh",
        "recipes": {1: "bert/1/build_plan.sh", 2: "bert/2/build_plan.sh"},
    }
    assert sorted(converted.version_files) == [1, 2]
    produced = [p for named in converted.version_files.values() for p in named.values()]
    assert all(p.is_relative_to(out) for p in produced)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        ["src/model.onnx", *(p.relative_to(tmp_path).as_posix() for p in produced)]
    )
    stage = tmp_path / "stage"
    place_artifacts(stage, m, converted.files, converted.version_files)
    for v in (1, 2):
        assert sorted(p.name for p in (stage / "bert" / str(v)).iterdir()) == ["build_plan.sh", "model.onnx"]
        assert f"--saveEngine=bert/{v}/model.plan" in (stage / "bert" / str(v) / "build_plan.sh").read_text()
