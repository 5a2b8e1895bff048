"""The spec's rules again at build time, on the tensors the real TensorFlow model has: a non-batching model
with a scalar input (the shape of TensorFlow's own VarsAndArithmeticObjectGraph test module) fails with what
to do instead, where before it wrote a config that stopped the whole server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.build.test_build import manifest, write_spec
from tests.integration.examples import run_build

pytestmark = pytest.mark.tensorflow

SCALAR_MODULE = '''\
import tensorflow as tf


class Arithmetic(tf.Module):
    """y = a * x + b on scalars, as TensorFlow's VarsAndArithmeticObjectGraph."""

    def __init__(self):
        super().__init__()
        self.a = tf.Variable(2.0)
        self.b = tf.Variable(3.0)

    @tf.function(input_signature=[tf.TensorSpec([], tf.float32, name="x")])
    def compute(self, x):
        return {"y": self.a * x + self.b}


def build():
    return Arithmetic()
'''


def test_scalar_input_of_a_non_batching_model_fails_with_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "scalar.py").write_text(SCALAR_MODULE)
    spec = write_spec(
        tmp_path, [{"name": "arith", "source": {"python": "scalar.py:build"}, "target": "onnx", "max_batch_size": 0}]
    )
    done = run_build(spec, tmp_path / "repo")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "arith failed" in done.stderr
    assert manifest(tmp_path / "repo")["failed"]["arith"]["error"] == (
        "model arith: with the tensors of its source (scalar.py:build) Triton would refuse its config:\n"
        "  - inputs[0] (x) -> reshape: model input 'x' cannot have empty reshape for non-batching model as scalar "
        "tensors are not supported; a model that does not batch (max_batch_size 0) cannot take or return a scalar "
        "in Triton: give the tensor dims [1] without reshape and reshape it inside the model (e.g. "
        "tf.reshape(x, [])), or let the model batch (max_batch_size > 0: dims [1] with reshape [] is then one "
        "scalar per batch item)\n"
        "  - outputs[0] (y) -> reshape: model output 'y' cannot have empty reshape for non-batching model as "
        "scalar tensors are not supported; a model that does not batch (max_batch_size 0) cannot take or return a "
        "scalar in Triton: give the tensor dims [1] without reshape and reshape it inside the model (e.g. "
        "tf.reshape(x, [])), or let the model batch (max_batch_size > 0: dims [1] with reshape [] is then one "
        "scalar per batch item)"
    )
    assert not (tmp_path / "repo" / "arith").exists()  # no config Triton would refuse
