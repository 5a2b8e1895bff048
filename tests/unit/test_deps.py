"""Without TensorFlow (or tf2onnx, onnx), commands and converters stop with the install hint, not a traceback.

Nothing is uninstalled: a module set to None in sys.modules cannot be imported (ModuleNotFoundError), which
is what an absent package looks like to the code. The CLI runs in a subprocess with that prelude, so the
test process keeps its own TensorFlow.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from repo_builder import deps
from repo_builder.converters import CONVERTERS, Context
from repo_builder.errors import MissingDependencyError
from repo_builder.spec.models import ModelSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
HINT = "Install it with: pip install 'repo-builder[convert]'"


def _cli_without(blocked: list[str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`repo-builder ARGS...` in a fresh interpreter where the `blocked` modules cannot be imported."""
    prelude = (
        "import sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None\n"
        f"sys.argv = ['repo-builder', *{list(args)!r}]\n"
        "from repo_builder.cli.app import main\n"
        "main()\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), "HOME": str(cwd), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-c", prelude], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    "source",
    ["exported", "model.keras", "model.py:build"],
    ids=["saved_model", "keras_file", "python"],
)
def test_inspect_without_tensorflow_gives_the_install_hint(source: str, tmp_path: Path) -> None:
    (tmp_path / "exported").mkdir()
    (tmp_path / "exported" / "saved_model.pb").write_bytes(b"")
    (tmp_path / "model.keras").write_bytes(b"")
    (tmp_path / "model.py").write_text("import tensorflow as tf\n\n\ndef build():\n    return tf.Module()\n")
    result = _cli_without(["tensorflow"], "inspect", source, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("error: tensorflow is needed for loading and converting TensorFlow models")
    assert result.stderr.rstrip().endswith(HINT)
    assert "Traceback" not in result.stderr
    assert "please report it" not in result.stderr


def test_require_names_the_extra_of_a_submodule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    monkeypatch.setitem(sys.modules, "tf2onnx.tf_loader", None)  # as if absent, also after a test imported it
    with pytest.raises(MissingDependencyError) as caught:
        deps.require("tf2onnx.tf_loader")
    assert caught.value.message.endswith(HINT)
    assert deps.install_hint("tf2onnx.tf_loader") == "pip install 'repo-builder[convert]'"
    assert deps.install_hint("tensorrt") == "pip install 'repo-builder[tensorrt]'"


MODEL = ModelSpec.model_validate(
    {
        "name": "m",
        "source": {"saved_model": "exported"},
        "target": "onnx",
        "inputs": [{"name": "x", "dtype": "FP32", "dims": [4]}],
        "outputs": [{"name": "y", "dtype": "FP32", "dims": [2]}],
    }
)


@pytest.mark.parametrize(
    ("converter", "blocked"),
    [
        ("tensorflow2savedmodel", "tensorflow"),
        ("savedmodel2onnx", "tensorflow"),
        ("savedmodel2onnx", "tf2onnx"),
        ("savedmodel2onnx", "onnx"),
        ("savedmodel2tftrt", "tensorflow"),
    ],
)
def test_converters_without_their_dependency_give_the_install_hint(
    converter: str, blocked: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, blocked, None)
    c = CONVERTERS[converter]
    assert (c.available() or "").endswith(" missing: pip install 'repo-builder[convert]'")
    ctx = Context(tmp_path, tmp_path / "work", tmp_path / "repo", logging.getLogger("test_deps"))
    with pytest.raises(MissingDependencyError) as caught:
        c.convert(MODEL, tmp_path / "src", tmp_path / "out", ctx)
    assert "pip install 'repo-builder[convert]'" in caught.value.message


def test_build_without_tensorflow_gives_the_install_hint(tmp_path: Path) -> None:
    """`repo-builder build` without TensorFlow: every model fails with the install hint, exit 1, no traceback.

    The build's workers are spawned processes, which a sys.modules prelude does not reach: here a package
    named tensorflow that raises ModuleNotFoundError stands first on PYTHONPATH, for them too."""
    fake = tmp_path / "no_tensorflow" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise ModuleNotFoundError("No module named tensorflow", name="tensorflow")\n')
    (tmp_path / "models.py").write_text("import tensorflow as tf\n\n\ndef build():\n    return tf.Module()\n")
    (tmp_path / "spec.yaml").write_text(
        "models:\n  - name: m\n    source: {python: models.py:build}\n    target: onnx\n"
        "    inputs: [{name: x, dtype: FP32, dims: [4]}]\n    outputs: [{name: y, dtype: FP32, dims: [2]}]\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{fake.parent}:{REPO_ROOT}",
        "HOME": str(tmp_path),
        "COLUMNS": "200",
    }
    code = (
        "import sys\nsys.argv = ['repo-builder', 'build', 'spec.yaml']\nfrom repo_builder.cli.app import main\nmain()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 1, result.stderr
    assert "m failed: tensorflow is needed for loading and converting TensorFlow models" in result.stderr
    assert HINT in result.stderr
    assert "Traceback" not in result.stderr
    assert "please report it" not in result.stderr
