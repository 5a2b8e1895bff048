"""One tf2onnx conversion per source and build (build/shared.py), with the real TensorFlow and tf2onnx: the
targets of one source that go through ONNX convert it once, in one worker or several, and each gets the
bytes a build of it alone gives."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.examples import EXAMPLES, PYTHON

pytestmark = pytest.mark.tensorflow

SOURCE = {"python": "models.py:build_cnn"}
MODELS: list[dict[str, Any]] = [
    {"name": "cnn_onnx", "source": SOURCE, "target": "onnx"},
    {"name": "cnn_python", "source": SOURCE, "target": "python"},
    {"name": "cnn_plan", "source": SOURCE, "target": "tensorrt"},  # the ONNX its recipe builds a plan from
    {"name": "cnn_savedmodel", "source": SOURCE, "target": "savedmodel"},  # no ONNX
]
#: the line savedmodel2onnx logs each time it runs tf2onnx, and the one of a model that took another's ONNX
CONVERTING = "with tf2onnx; equivalent command"
TAKEN = "in this build: taken from it"
#: a factory that builds other weights each time it is called
UNSEEDED = """

def build_unseeded():
    import keras

    x = keras.Input((4,), name="x")
    return keras.Model(x, keras.layers.Dense(2, name="y")(x))
"""


def build(folder: Path, models: list[dict[str, Any]], jobs: str = "2") -> Path:
    folder.mkdir(parents=True)
    shutil.copy2(EXAMPLES / "models.py", folder / "models.py")
    with (folder / "models.py").open("a") as f:
        f.write(UNSEEDED)
    spec = folder / "models.yaml"
    spec.write_text(yaml.safe_dump({"repository": "repo", "models": models}, sort_keys=False))
    command = [PYTHON, "-m", "repo_builder", "build", str(spec), "-j", jobs]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    return folder / "repo"


def count(repo: Path, line: str) -> int:
    return sum(p.read_text().count(line) for p in repo.glob("*/build.log"))


def artifacts(repo: Path) -> dict[str, str]:
    """sha256 of each version folder's files (fingerprint.pb aside: TensorFlow stamps each SavedModel)."""
    return {
        str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(repo.glob("*/1/**/*"))
        if p.is_file() and p.name != "fingerprint.pb"
    }


def test_targets_of_one_source_convert_it_once_and_get_the_bytes_of_a_lone_build(tmp_path: Path) -> None:
    together = build(tmp_path / "together", MODELS, jobs="2")
    assert count(together, CONVERTING) == 1
    assert count(together, TAKEN) == 2
    reverse = build(tmp_path / "reverse", MODELS[::-1], jobs="1")
    assert count(reverse, CONVERTING) == 1
    alone: dict[str, str] = {}
    for m in MODELS[:3]:
        repo = build(tmp_path / m["name"], [m], jobs="1")
        assert count(repo, CONVERTING) == 1
        alone.update(artifacts(repo))
    shared = {k: v for k, v in artifacts(together).items() if not k.startswith("cnn_savedmodel/")}
    assert any(k.endswith("model.onnx") for k in shared) and any(k.endswith("build_plan.sh") for k in shared)
    assert shared == alone
    assert artifacts(reverse) == artifacts(together)


def test_a_factory_that_builds_other_weights_each_time_converts_for_each_model(tmp_path: Path) -> None:
    """An unseeded factory's models hold different weights: each must convert its own, or its check fails."""
    source = {"python": "models.py:build_unseeded"}
    models = [{"name": "a", "source": source, "target": "onnx"}, {"name": "b", "source": source, "target": "python"}]
    repo = build(tmp_path / "unseeded", models, jobs="2")
    assert count(repo, CONVERTING) == 2 and count(repo, TAKEN) == 0
