"""Small models of the kinds real users bring (issue 11), written here with the real TensorFlow: TF1
SavedModels as TF Serving's test models are made (half_plus_two with reference variables, Triton's INPUT0 /
OUTPUT0 names, a signature returning a variable: DT_FLOAT_REF), and factories for exact GELU (Erfc), nested
dict outputs, an input of unknown rank, an op tf2onnx cannot convert, a Keras Lambda layer and a vocabulary
lookup table."""

from __future__ import annotations

import shutil
from pathlib import Path

FACTORIES = '''
import keras
import tensorflow as tf


def gelu():
    """Exact GELU: TensorFlow computes it with Erfc, which tf2onnx has no handler for."""
    inp = keras.Input((8,), name="x")
    h = keras.layers.Dense(16, activation=keras.activations.gelu)(inp)
    return keras.Model(inp, keras.layers.Dense(4, name="y")(h))


class Nested(tf.Module):
    def __init__(self):
        self.w = tf.Variable([[1.0, -1.0], [0.5, 2.0], [3.0, 0.0]])

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def __call__(self, x):
        h = x @ self.w
        return {"logits": {"raw": h, "scaled": 2.0 * h}, "total": tf.reduce_sum(x, axis=1, keepdims=True)}


def nested():
    return Nested()


class AnyRank(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32, name="x")])
    def __call__(self, x):
        return {"y": x * 2.0 + 1.0}


def any_rank():
    return AnyRank()


class Vocab(tf.Module):
    """A vocabulary lookup (tf.lookup.StaticHashTable, as StringLookup and TF text models have): STRING in."""

    def __init__(self):
        keys = tf.constant(["0", "2", "4", "6"])
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(keys, tf.constant([1, 2, 3, 4], tf.int64)), default_value=0
        )

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.string, name="words")])
    def __call__(self, words):
        return {"ids": self.table.lookup(words)}


def vocab():
    return Vocab()


def lgamma():
    """tf.math.lgamma: an op tf2onnx cannot convert."""
    inp = keras.Input((4,), name="x")
    return keras.Model(inp, keras.layers.Lambda(lambda t: tf.math.lgamma(tf.abs(t) + 1.0), name="y")(inp))
'''


def tf1_saved_model(path: Path, x: str = "x", y: str = "y", with_variable_output: bool = False) -> Path:
    """y = 0.5 * x + 2 with TF1 reference variables a, b, written with tf.compat.v1's Builder like TF Serving's
    half_plus_two; `with_variable_output` adds the signature `counter` returning the variable a itself (its
    dtype in the signature is DT_FLOAT_REF, like TF Serving's counter model)."""
    import tensorflow as tf

    v1 = tf.compat.v1
    shutil.rmtree(path, ignore_errors=True)
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as session:
        xt = v1.placeholder(tf.float32, [None, 1], name="x")
        a = v1.Variable(0.5, name="a", use_resource=False)
        b = v1.Variable(2.0, name="b", use_resource=False)
        yt = tf.add(tf.multiply(a, xt), b, name="y")
        session.run(v1.global_variables_initializer())
        predict = v1.saved_model.signature_def_utils.predict_signature_def
        signatures = {"serving_default": predict({x: xt}, {y: yt})}
        if with_variable_output:
            signatures["counter"] = predict({x: xt}, {y: yt, "a": a})
        builder = v1.saved_model.Builder(str(path))
        builder.add_meta_graph_and_variables(session, [v1.saved_model.SERVING], signature_def_map=signatures)
        builder.save()
    return path


def write_kinds(folder: Path) -> Path:
    """The sources of every kind in `folder`; returns the factories' file."""
    folder.mkdir(parents=True, exist_ok=True)
    tf1_saved_model(folder / "half_plus_two")
    tf1_saved_model(folder / "triton_names", x="INPUT0", y="OUTPUT0")
    tf1_saved_model(folder / "counter", with_variable_output=True)
    factories = folder / "kinds.py"
    factories.write_text(FACTORIES)
    return factories


SPEC = """\
models:
  - {name: hpt_onnx, source: {saved_model: half_plus_two}, target: onnx}
  - {name: hpt_savedmodel, source: {saved_model: half_plus_two}, target: savedmodel}
  - {name: hpt_python, source: {saved_model: half_plus_two}, target: python, python_runtime: tensorflow}
  - {name: names_onnx, source: {saved_model: triton_names}, target: onnx}
  - {name: names_python, source: {saved_model: triton_names}, target: python}
  - {name: counter_onnx, source: {saved_model: counter}, signature: counter, target: onnx}
  - {name: counter_python, source: {saved_model: counter}, signature: counter, target: python,
     python_runtime: tensorflow}
  - {name: gelu_onnx, source: {python: 'kinds.py:gelu'}, target: onnx}
  - {name: nested_onnx, source: {python: 'kinds.py:nested'}, target: onnx}
  - name: any_rank_onnx
    source: {python: 'kinds.py:any_rank'}
    target: onnx
    max_batch_size: 0
    inputs: [{name: x, dtype: FP32, dims: [-1, 4]}]
  - {name: any_rank_unset, source: {python: 'kinds.py:any_rank'}, target: onnx}
  - {name: lgamma_onnx, source: {python: 'kinds.py:lgamma'}, target: onnx}
  - {name: vocab_onnx, source: {python: 'kinds.py:vocab'}, target: onnx}
  - {name: vocab_python, source: {python: 'kinds.py:vocab'}, target: python}
"""
