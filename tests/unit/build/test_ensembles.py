"""The build's ensemble wave without TensorFlow: Triton's ensemble rules checked again with the step models'
configs as built (their tensors came from inspection, which the spec's own check could not see), and a
cycle through ensembles that reached the build does not recurse forever."""

from __future__ import annotations

from pathlib import Path

import yaml

from repo_builder.build.ensembles import ensemble, ensembles
from repo_builder.build.results import ModelResult
from repo_builder.repository.layout import config_path
from repo_builder.repository.manifest import ModelStatus
from repo_builder.spec import Spec, load_spec
from repo_builder.spec.models import EnsembleStep, ModelSpec

#: what the build wrote for `base` after inspection found its tensors
BASE_CONFIG = """\
name: "base"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "image" data_type: TYPE_UINT8 dims: [ 4 ] } ]
output [ { name: "scores" data_type: TYPE_FP32 dims: [ 2 ] } ]
"""


def _spec(tmp_path: Path, step: dict[str, object]) -> Spec:
    (tmp_path / "m.py").write_text("def f():\n    return None\n")
    path = tmp_path / "models.yaml"
    models = [
        {"name": "base", "source": {"python": "m.py:f"}, "target": "onnx"},  # tensors from the model
        {
            "name": "chain",
            "target": "ensemble",
            "inputs": [{"name": "x", "dtype": "FP32", "dims": [4]}],
            "outputs": [{"name": "y", "dtype": "FP32", "dims": [2]}],
            "steps": [step],
        },
    ]
    path.write_text(yaml.safe_dump({"models": models}))
    return load_spec(path)


def _stage(tmp_path: Path) -> Path:
    stage = tmp_path / "stage"
    config_path(stage, "base").parent.mkdir(parents=True)
    config_path(stage, "base").write_text(BASE_CONFIG)
    return stage


def test_ensemble_is_checked_against_the_built_steps(tmp_path: Path) -> None:
    """The spec passes (base's tensors are unknown at load); the built configs show the mapping is wrong."""
    spec = _spec(tmp_path, {"model": "base", "input_map": {"x": "x"}, "output_map": {"y": "y"}})
    stage = _stage(tmp_path)
    result = ensemble(spec, spec.model("chain"), stage)
    assert result.status == ModelStatus.FAILED
    assert result.error == (
        "with the tensors its step models were built with, Triton would refuse it:\n"
        "  - steps[0] -> input_map -> x: in ensemble chain, ensemble tensor x is mapping to non-existing input x "
        "in model base; its inputs: image\n"
        "  - steps[0] -> input_map: in ensemble chain, input image in model base is not mapped to any ensemble "
        "tensors; add `image: <tensor>` to this step's input_map\n"
        "  - steps[0] -> output_map -> y: in ensemble chain, ensemble tensor y is mapped from non-existing output "
        "y in model base; its outputs: scores"
    )
    assert not config_path(stage, "chain").exists()


def test_dtype_of_a_built_step_must_agree(tmp_path: Path) -> None:
    spec = _spec(tmp_path, {"model": "base", "input_map": {"image": "x"}, "output_map": {"scores": "y"}})
    result = ensemble(spec, spec.model("chain"), _stage(tmp_path))
    assert result.status == ModelStatus.FAILED
    assert result.error is not None
    assert (
        "steps[0] -> input_map -> image: in ensemble chain, ensemble tensor x: inconsistent data type: TYPE_FP32 "
        "is inferred from model chain while TYPE_UINT8 is inferred from model base" in result.error
    )


def test_matching_built_steps_write_the_ensemble(tmp_path: Path) -> None:
    spec = _spec(tmp_path, {"model": "base", "input_map": {"image": "x"}, "output_map": {"scores": "y"}})
    stage = _stage(tmp_path)
    config_path(stage, "base").write_text(BASE_CONFIG.replace("TYPE_UINT8", "TYPE_FP32"))
    result = ensemble(spec, spec.model("chain"), stage)
    assert result.status == ModelStatus.BUILT, result.error
    assert config_path(stage, "chain").is_file()


def test_a_cycle_that_reached_the_build_does_not_recurse_forever(tmp_path: Path) -> None:
    """The spec refuses a cycle through ensembles; the build's step hashing stops at one anyway."""

    def step(model: str) -> EnsembleStep:
        return EnsembleStep.model_construct(model=model, version=-1, input_map={"x": "x"}, output_map={"y": "y"})

    a = ModelSpec.model_construct(name="a", target="ensemble", steps=[step("b")])
    b = ModelSpec.model_construct(name="b", target="ensemble", steps=[step("a")])
    spec = Spec.model_construct(models=[a, b])
    repo, stage = tmp_path / "repo", tmp_path / "stage"
    stage.mkdir()
    results: dict[str, ModelResult] = {}
    hashes = {"a": "1", "b": "2"}
    ensembles(spec, repo, stage, None, False, results, hashes, {}, {}, lambda _n, _s: None)  # type: ignore[arg-type]
    assert {r.status for r in results.values()} == {ModelStatus.FAILED}
    assert hashes["a"] != "1" and hashes["b"] != "2"
