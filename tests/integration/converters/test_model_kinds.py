"""The kinds of real models issue 11 found failing, each built here from a small model of that kind with the
real TensorFlow, tf2onnx and onnxruntime (one build of tests/integration/converters/kinds.py's spec)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.integration.converters.kinds import SPEC, write_kinds
from tests.integration.examples import run_build

pytestmark = [pytest.mark.tensorflow, pytest.mark.slow]


@dataclass(frozen=True)
class Built:
    folder: Path
    repository: Path
    output: str
    manifest: dict[str, Any]

    def entry(self, name: str) -> dict[str, Any]:
        return self.manifest["models"].get(name, {})

    def onnx(self, name: str) -> Any:
        import onnxruntime as ort

        return ort.InferenceSession(
            str(self.repository / name / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
        )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    folder = tmp_path_factory.mktemp("kinds")
    write_kinds(folder)
    spec = folder / "models.yaml"
    spec.write_text(SPEC)
    repo = folder / "model_repository"
    done = run_build(spec, repo)
    manifest = json.loads((repo / "repo_builder_manifest.json").read_text())
    return Built(folder, repo, done.stdout + done.stderr, manifest)


def _built(built: Built, *names: str) -> None:
    for name in names:
        assert built.entry(name).get("status") == "built", f"{name}:\n{built.output}"


def test_tf1_saved_model_with_variables_builds_every_target(built: Built) -> None:
    _built(built, "hpt_onnx", "hpt_savedmodel", "hpt_python")
    x = np.array([[1.0], [4.0]], dtype=np.float32)
    (y,) = built.onnx("hpt_onnx").run(["y"], {"x": x})
    np.testing.assert_allclose(y, 0.5 * x + 2.0)
    # the savedmodel target serves the folder as it is (Triton's TensorFlow backend loads it)
    served = built.repository / "hpt_savedmodel" / "1" / "model.savedmodel" / "saved_model.pb"
    assert served.read_bytes() == (built.folder / "half_plus_two" / "saved_model.pb").read_bytes()
    for name in ("hpt_onnx", "hpt_savedmodel", "hpt_python"):
        assert built.entry(name)["max_error"] == 0
    assert "TF1 = True" in (built.repository / "hpt_python" / "1" / "model.py").read_text()


def test_capitalised_tensor_names_are_kept(built: Built) -> None:
    _built(built, "names_onnx", "names_python")
    session = built.onnx("names_onnx")
    assert [i.name for i in session.get_inputs()] == ["INPUT0"]
    assert [o.name for o in session.get_outputs()] == ["OUTPUT0"]
    assert [t["name"] for t in built.entry("names_python")["inputs"]] == ["INPUT0"]


def test_reference_dtype_is_its_base_type(built: Built) -> None:
    from repo_builder.inspect.sources import read_signature

    _, outputs = read_signature(built.folder / "counter", "counter")
    assert [(t.name, t.dtype) for t in outputs] == [("a", "FP32"), ("y", "FP32")]
    # its scalar output `a` keeps it from batching, and a non-batching model cannot return a scalar in
    # Triton (its core refuses the config): the build says so, past the dtype (once "unknown datatype")
    for name in ("counter_onnx", "counter_python"):
        error = built.manifest["failed"][name]["error"]
        assert "model output 'a' cannot have empty reshape for non-batching model" in error, error
        assert "float32_ref" not in error


def test_nested_dict_outputs_are_flattened(built: Built) -> None:
    _built(built, "nested_onnx")
    names = [t["name"] for t in built.entry("nested_onnx")["outputs"]]
    assert names == ["logits_raw", "logits_scaled", "total"]
    x = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    raw, scaled, total = built.onnx("nested_onnx").run(names, {"x": x})
    w = np.array([[1.0, -1.0], [0.5, 2.0], [3.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(raw, x @ w)
    np.testing.assert_allclose(scaled, 2 * x @ w)
    np.testing.assert_allclose(total, [[6.0]])


def test_unknown_rank_takes_the_spec_dims(built: Built) -> None:
    _built(built, "any_rank_onnx")
    entry = built.entry("any_rank_onnx")
    assert [(t["name"], t["dims"]) for t in entry["inputs"]] == [("x", [-1, 4])]
    assert [(t["name"], t["dims"]) for t in entry["outputs"]] == [("y", [-1, 4])]
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    (y,) = built.onnx("any_rank_onnx").run(["y"], {"x": x})
    np.testing.assert_allclose(y, 2 * x + 1)
    assert "input 'x' (FP32) has unknown rank in the model's signature; give its dims in the spec's `inputs:`" in (
        " ".join(built.output.split())
    )


def test_exact_gelu_erfc_converts(built: Built) -> None:
    _built(built, "gelu_onnx")
    import onnx

    ops = {n.op_type for n in onnx.load(str(built.repository / "gelu_onnx" / "1" / "model.onnx")).graph.node}
    assert "Erf" in ops and "Erfc" not in ops
    assert built.entry("gelu_onnx")["max_error"] < 1e-5


def test_unconvertible_op_is_named_with_the_targets_that_work(built: Built) -> None:
    assert "lgamma_onnx" not in built.manifest["models"]
    text = " ".join(built.output.split())
    assert "model lgamma_onnx: tf2onnx cannot convert these TensorFlow ops (opset 17): Lgamma (x1)." in text
    assert "Targets that run the model as TensorFlow: savedmodel, or python with `python_runtime: tensorflow`." in text


def test_lookup_table_converts_with_its_contents_and_string_inputs_verify(built: Built) -> None:
    """tf2onnx's table contents reach the conversion (they were dropped: 'cannot convert HashTableV2'), the
    output tf2onnx leaves without a shape gets the signature's, and onnxruntime is fed strings as str: the
    build's check (and the python target's model.py) hands it TensorFlow's bytes, read as "b'0'" before."""
    _built(built, "vocab_onnx", "vocab_python")
    words = np.array([["0", "4", "5"], ["6", "x", "2"]], dtype=object)
    (ids,) = built.onnx("vocab_onnx").run(["ids"], {"words": words})
    assert ids.tolist() == [[1, 3, 0], [4, 0, 2]]
    for name in ("vocab_onnx", "vocab_python"):
        assert built.entry(name)["max_error"] == 0
        ref = np.load(built.repository / name / "reference.npz", allow_pickle=False)
        assert ref["output/ids"].max() > 0, "generated ids hit the table: the check compared real lookups"


def test_reproduce_command_points_at_a_folder_that_exists(built: Built) -> None:
    log = (built.repository / "hpt_onnx" / "build.log").read_text()
    line = next(x for x in log.splitlines() if "python -m tf2onnx.convert" in x)
    folder = Path(line.split("--saved-model ")[1].split()[0])
    assert folder == (built.folder / "half_plus_two").resolve() and folder.is_dir()
    assert "staging" not in line
