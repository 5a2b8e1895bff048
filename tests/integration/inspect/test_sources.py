"""`repo-builder inspect`: a model's tensors as spec YAML, read with the real TensorFlow."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from repo_builder.cli.inspect import inspect_command
from repo_builder.errors import SpecError
from repo_builder.inspect.sources import inspect_yaml, read_signature
from repo_builder.spec import Source, Spec
from tests.integration.examples import EXAMPLES, BuiltExamples

pytestmark = pytest.mark.tensorflow

TWO_TOWER = """\
# max_batch_size: 8 is the default for a model whose tensors all have a variable first dim
- name: two_tower
  source: {python: 'models.py:build_two_tower'}
  target: onnx
  max_batch_size: 8
  inputs:
  - name: user_features
    dtype: FP32
    dims: [8]
  - name: item_features
    dtype: FP32
    dims: [12]
  outputs:
  - name: score
    dtype: FP32
    dims: [1]
  - name: embedding
    dtype: FP32
    dims: [6]
"""


def test_inspect_python_factory_prints_spec_yaml() -> None:
    assert inspect_yaml(Source(python="models.py:build_two_tower"), EXAMPLES) == TWO_TOWER


def test_inspect_output_is_a_valid_spec() -> None:
    text = inspect_yaml(Source(python="models.py:build_text"), EXAMPLES, name="text")
    spec = Spec.model_validate({"models": yaml.safe_load(text)})
    (m,) = spec.models
    assert m.inputs is not None and (m.inputs[0].name, m.inputs[0].dtype, m.inputs[0].dims) == (
        "token_ids",
        "INT32",
        [-1],
    )


def test_inspect_command_on_a_saved_model(built_examples: BuiltExamples, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(built_examples.repository)
    out = io.StringIO()

    class Out:
        def print(self, text: str, **_: object) -> None:
            out.write(text)

    assert inspect_command("image_cnn_savedmodel/1/model.savedmodel", name="cnn", console_out=Out()) == 0
    doc = yaml.safe_load(out.getvalue())[0]
    assert doc["inputs"] == [{"name": "image", "dtype": "FP32", "dims": [32, 32, 3]}]
    assert doc["outputs"] == [{"name": "class_probs", "dtype": "FP32", "dims": [10]}]
    assert doc["source"] == {"saved_model": "image_cnn_savedmodel/1/model.savedmodel"}


def test_signature_is_read_without_loading(built_examples: BuiltExamples) -> None:
    path = built_examples.repository / "image_cnn_savedmodel" / "1" / "model.savedmodel"
    inputs, _ = read_signature(path, "serving_default")
    assert [(t.name, t.dtype, t.shape) for t in inputs] == [("image", "FP32", (None, 32, 32, 3))]
    with pytest.raises(SpecError) as e:
        read_signature(path, "predict")
    assert str(e.value) == (
        f"{path}: signature 'predict' not found; the SavedModel has: serving_default. "
        "Set `signature:` in the spec to one of them."
    )


def test_source_argument_kinds() -> None:
    assert Source.from_arg("m.keras").kind == "keras_file"
    assert Source.from_arg("old.h5").kind == "keras_file"
    assert Source.from_arg("models.py:build").kind == "python"
    assert Source.from_arg("pkg.models:build").kind == "python"
    assert Source.from_arg("exported/resnet").kind == "saved_model"


def test_missing_factory_function_lists_what_exists() -> None:
    with pytest.raises(SpecError) as e:
        inspect_yaml(Source(python="models.py:build_nothing"), EXAMPLES)
    assert e.value.message == (  # the file's own functions, not what it imports (typing.Any)
        "source python 'models.py:build_nothing': models.py has no function 'build_nothing'; "
        "it has: build_cnn, build_mlp, build_normalizer, build_text, build_two_tower"
    )


def test_inspect_command_keeps_tensorflow_chatter_aside(tmp_path: Path) -> None:
    """stdout is the spec YAML alone and stderr stays empty (TensorFlow's C++ start-up logs go aside);
    a missing file is reported before TensorFlow is imported."""
    done = subprocess.run(
        [sys.executable, "-m", "repo_builder", "inspect", "models.py:build_mlp"],
        capture_output=True,
        text=True,
        cwd=EXAMPLES,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert yaml.safe_load(done.stdout)[0]["inputs"] == [{"name": "features", "dtype": "FP32", "dims": [16]}]
    missing = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "repo_builder", "inspect", "nothing.keras"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert missing.returncode == 1
    assert "error: nothing.keras: no such file or folder" in missing.stderr
    assert "tensorflow" not in missing.stderr.replace("error: nothing.keras", "")


def test_legacy_tf_keras_model(tmp_path: Path) -> None:
    """Legacy Keras 2 (tf_keras) models load through the same path (needs `pip install tf-keras`)."""
    pytest.importorskip("tf_keras", reason="tf-keras (legacy Keras 2) is not installed here")
    (tmp_path / "legacy.py").write_text(
        "import tf_keras\n"
        "def build():\n"
        "    x = tf_keras.Input((5,), name='legacy_in')\n"
        "    return tf_keras.Model(x, tf_keras.layers.Dense(3, name='legacy_out')(x))\n"
    )
    code = (
        "from pathlib import Path; from repo_builder.inspect.sources import inspect_yaml; from repo_builder.spec "
        "import Source;"
        f"print(inspect_yaml(Source(python='legacy.py:build'), Path({str(tmp_path)!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    doc = yaml.safe_load(out)[0]
    assert doc["inputs"] == [{"name": "legacy_in", "dtype": "FP32", "dims": [5]}]
    assert doc["outputs"] == [{"name": "legacy_out", "dtype": "FP32", "dims": [3]}]


# ------------------------------------------------------------------ the kinds of models issue 11 found failing


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.integration.converters.kinds import write_kinds

    folder = tmp_path_factory.mktemp("kinds")
    write_kinds(folder)
    return folder


def test_inspect_tf1_saved_model_with_a_reference_dtype(kinds: Path) -> None:
    doc = yaml.safe_load(inspect_yaml(Source(saved_model="counter"), kinds, signature="counter"))[0]
    assert [(t["name"], t["dtype"]) for t in doc["outputs"]] == [("a", "FP32"), ("y", "FP32")]
    assert doc["target"] == "onnx"


def test_inspect_flattens_nested_outputs(kinds: Path) -> None:
    """A tf.Module or Keras model may return nested dicts (a SavedModel signature cannot): `outer_inner`."""
    doc = yaml.safe_load(inspect_yaml(Source(python="kinds.py:nested"), kinds))[0]
    assert [(t["name"], t["dims"]) for t in doc["outputs"]] == [
        ("logits_raw", [2]),
        ("logits_scaled", [2]),
        ("total", [1]),
    ]
    assert doc["target"] == "onnx"


def test_inspect_names_ops_tf2onnx_cannot_convert(kinds: Path) -> None:
    text = inspect_yaml(Source(python="kinds.py:lgamma"), kinds)
    assert (
        "# tf2onnx cannot convert Lgamma: targets onnx, tensorrt and python with onnxruntime will fail; savedmodel, "
        "or python with `python_runtime: tensorflow`, run the model as TensorFlow\n"
    ) in text
    assert yaml.safe_load(text)[0]["target"] == "savedmodel"
    gelu = inspect_yaml(Source(python="kinds.py:gelu"), kinds)  # Erfc is converted as 1 - Erf
    assert "cannot convert" not in gelu and yaml.safe_load(gelu)[0]["target"] == "onnx"
    table = inspect_yaml(Source(python="kinds.py:vocab"), kinds)  # tables convert (custom_opsets' handlers)
    assert "cannot convert" not in table and yaml.safe_load(table)[0]["target"] == "onnx"


def test_inspect_marks_an_input_of_unknown_rank(kinds: Path) -> None:
    text = inspect_yaml(Source(python="kinds.py:any_rank"), kinds)
    assert (
        "# x, y: unknown rank in the model's signature; dims [-1] is a placeholder, replace it with the tensor's "
        "real dims\n"
    ) in text
    assert yaml.safe_load(text)[0]["inputs"] == [{"name": "x", "dtype": "FP32", "dims": [-1]}]


def test_a_saved_model_tensorflow_rejects_is_a_located_error(kinds: Path) -> None:
    import shutil

    from repo_builder.errors import ConversionError
    from repo_builder.inspect.sources import load_factory, load_source

    module = load_factory("kinds.py:gelu", kinds)()
    broken = kinds / "broken_sm"
    module.export(str(broken))
    shutil.rmtree(broken / "variables")
    with pytest.raises(ConversionError) as e:
        load_source(Source(saved_model="broken_sm"), kinds)
    assert e.value.message.startswith(f"source saved_model {broken}: TensorFlow's SavedModel loader rejects it: ")
    assert e.value.message.endswith(
        f"check it with `saved_model_cli show --dir {broken} --all`, or save the model again"
    )


def test_keras_lambda_layer_loads_only_with_safe_mode_off(kinds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    from repo_builder.errors import ConversionError
    from repo_builder.inspect.sources import load_source

    inp = keras.Input((3,), name="x")
    model = keras.Model(inp, keras.layers.Lambda(lambda t: t * 3.0, name="y")(inp))
    (kinds / "keras").mkdir(exist_ok=True)
    model.save(kinds / "keras" / "lambda.keras")
    with pytest.raises(ConversionError) as e:
        load_source(Source(keras_file="keras/lambda.keras"), kinds)
    # the fix names the file as the spec (and the command line) do, not by its bare name
    assert e.value.message.startswith(
        f"source keras_file {kinds / 'keras' / 'lambda.keras'} holds Python code (a Lambda layer) that Keras loads "
        "only with safe_mode off, which EXECUTES that code. If you trust the file: in the spec, set `safe_mode: "
        "false` in the model's source: {keras_file: keras/lambda.keras, safe_mode: false}; with inspect: "
        "`repo-builder inspect keras/lambda.keras --no-safe-mode`."
    )
    assert "tf-keras" not in e.value.message
    assert "tf_keras:" not in e.value.message  # tf_keras' own failure on a Keras 3 file (the whole config) is noise
    loaded = load_source(Source(keras_file="keras/lambda.keras", safe_mode=False), kinds)
    import numpy as np

    out = loaded.call({"x": np.ones((1, 3), dtype=np.float32)})
    np.testing.assert_allclose(np.asarray(out["y"]), [[3.0, 3.0, 3.0]])

    # inspect: the same refusal, and --no-safe-mode prints a spec entry that says safe_mode: false
    monkeypatch.chdir(kinds)
    printed = io.StringIO()

    class Out:
        def print(self, text: str, **_: object) -> None:
            printed.write(text)

    with pytest.raises(ConversionError, match=re.escape("`repo-builder inspect keras/lambda.keras --no-safe-mode`")):
        inspect_command("keras/lambda.keras", console_out=Out())
    assert inspect_command("keras/lambda.keras", console_out=Out(), safe_mode=False) == 0
    doc = yaml.safe_load(printed.getvalue())[0]
    assert doc["source"] == {"keras_file": "keras/lambda.keras", "safe_mode": False}
    assert Source.model_validate(doc["source"]).safe_mode is False
    with pytest.raises(SpecError, match=re.escape("--no-safe-mode applies to a Keras .keras or .h5 file only")):
        inspect_command("half_plus_two", console_out=Out(), safe_mode=False)
