"""What the build's check feeds real models: value ranges (the model's own and the spec's), strings, sample
data, a source that fails on the generated inputs, and outputs that prove nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.integration.examples import run_build

pytestmark = pytest.mark.tensorflow

MODELS = """
import keras
import tensorflow as tf


def segments():
    # BERT's segment ids: an Embedding with a vocabulary of 2
    ids = keras.Input((6,), dtype="int32", name="segment_ids")
    x = keras.layers.Embedding(2, 4)(ids)
    return keras.Model(ids, keras.layers.Dense(3, name="y")(keras.layers.Flatten()(x)))


class Gather(tf.Module):
    # a lookup table of two rows: ids 0..1 only (on the CPU, tf.gather fails on other ids)
    table = tf.constant([[1.0, 2.0], [3.0, 4.0]])

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.int32, name="ids")])
    def __call__(self, ids):
        return {"rows": tf.gather(self.table, ids)}


def gather():
    return Gather()


class Parse(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.string, name="text")])
    def __call__(self, text):
        return {"number": tf.strings.to_number(text) * 2.0}


def parse():
    return Parse()


def constant():
    # untrained weights answer the same for every input (keras.applications with weights=None do so)
    x = keras.Input((4,), name="x")
    y = keras.layers.Dense(3, kernel_initializer="zeros", bias_initializer="ones", name="probs")(x)
    return keras.Model(x, y)
"""


def test_check_inputs_on_real_models(tmp_path: Path) -> None:
    (tmp_path / "models.py").write_text(MODELS)
    np.savez(tmp_path / "text.npz", text=np.array([[b"1.5", b"-2"], [b"40", b"0.25"]]))
    models = [
        {"name": "segments", "source": {"python": "models.py:segments"}, "target": "onnx"},
        {
            "name": "gather",
            "source": {"python": "models.py:gather"},
            "target": "savedmodel",
            "verify": {"ranges": {"ids": [0, 1]}},
        },
        {"name": "gather_unranged", "source": {"python": "models.py:gather"}, "target": "savedmodel"},
        {"name": "parse", "source": {"python": "models.py:parse"}, "target": "savedmodel"},
        {
            "name": "parse_sampled",
            "source": {"python": "models.py:parse"},
            "target": "savedmodel",
            "verify": {"inputs": "text.npz"},
        },
        {"name": "constant", "source": {"python": "models.py:constant"}, "target": "onnx"},
    ]
    spec = tmp_path / "models.yaml"
    spec.write_text(yaml.safe_dump({"repository": "repo", "models": models}))
    done = run_build(spec, tmp_path / "repo")
    repo = tmp_path / "repo"
    data = json.loads((repo / "repo_builder_manifest.json").read_text())
    assert set(data["models"]) == {"segments", "gather", "parse", "parse_sampled", "constant"}, done.stderr

    # the model's own range: an Embedding of 2 takes ids 0 and 1
    ids = np.load(repo / "segments" / "reference.npz")["input/segment_ids"]
    assert set(np.unique(ids)) == {0, 1}
    assert np.load(repo / "gather" / "reference.npz")["input/ids"].max() == 1

    # without the range the source itself fails, and the message says how to give one
    error = data["failed"]["gather_unranged"]["error"]
    assert "the source model itself fails on the check's generated inputs" in error
    assert "verify: {ranges: {name: [low, high]}}" in error

    # strings: generated as numbers' text, or the user's samples, which are also the stored reference
    generated = np.load(repo / "parse" / "reference.npz", allow_pickle=False)  # validate never unpickles
    assert all(v.decode().isdigit() for v in generated["input/text"].reshape(-1))
    sampled = np.load(repo / "parse_sampled" / "reference.npz", allow_pickle=False)
    assert sampled["input/text"].tolist() == [[b"1.5", b"-2"], [b"40", b"0.25"]]
    assert np.allclose(sampled["output/number"], [[3.0, -4.0], [80.0, 0.5]])

    # an output that never varies is built, with a note that the check proved nothing about it
    notes = data["models"]["constant"]["notes"]
    assert any("'probs' is the same for every generated input" in n for n in notes), notes
    assert not any("same for every" in n for n in data["models"]["segments"]["notes"])
    assert "proves nothing" in done.stdout.replace("\n", "")


def test_string_model_outputs_vary_on_generated_text(tmp_path: Path) -> None:
    """A SavedModel of text (its strings' length and upper case): the generated strings differ in length and
    content, so no output comes out the same for every input (every string was one digit long, and the note
    blamed untrained weights)."""
    import tensorflow as tf

    class Text(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            return {"length": tf.strings.length(text), "upper": tf.strings.upper(text)}

    module = Text()
    tf.saved_model.save(module, str(tmp_path / "text"), signatures=module.serve)
    spec = tmp_path / "models.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "repository": "repo",
                "models": [{"name": "text", "source": {"saved_model": "text"}, "target": "savedmodel"}],
            }
        )
    )
    done = run_build(spec, tmp_path / "repo")
    data = json.loads((tmp_path / "repo" / "repo_builder_manifest.json").read_text())
    assert data["models"]["text"]["status"] == "built", done.stdout + done.stderr
    assert not any("same for every" in n for n in data["models"]["text"]["notes"]), data["models"]["text"]["notes"]
    assert "untrained" not in done.stdout + done.stderr
    ref = np.load(tmp_path / "repo" / "text" / "reference.npz", allow_pickle=False)
    assert len(set(ref["output/length"].reshape(-1).tolist())) > 1
