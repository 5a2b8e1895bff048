"""`repo-builder build` on the examples with the real TensorFlow, tf2onnx and onnxruntime."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from repo_builder.repository.write import sha256_tree
from tests.integration.examples import BUILD_SCRIPT, EXAMPLES, PYTHON, BuiltExamples, copy_examples, run_build

pytestmark = pytest.mark.tensorflow

EXPECTED = {
    "tabular_mlp": ("onnx", "model.onnx"),
    "image_cnn": ("onnx", "model.onnx"),
    "image_cnn_savedmodel": ("savedmodel", "model.savedmodel"),
    "image_cnn_python": ("python", "model.py"),
    "text_classifier": ("onnx", "model.onnx"),
    "two_tower": ("onnx", "model.onnx"),
    "normalizer": ("python", "model.py"),
}


def write_spec(folder: Path, models: list[dict]) -> Path:
    """models.yaml in `folder` with these models, built into `folder/repo`."""
    spec = folder / "models.yaml"
    spec.write_text(yaml.safe_dump({"repository": "repo", "models": models}))
    return spec


def manifest(repo: Path) -> dict:
    return json.loads((repo / "repo_builder_manifest.json").read_text())


def tree_digest(repo: Path) -> dict[str, str]:
    return {str(p.relative_to(repo)): sha256_tree(p) for p in sorted(repo.rglob("*")) if p.is_file()}


def test_every_example_is_built_and_verified(built_examples: BuiltExamples) -> None:
    repo = built_examples.repository
    data = manifest(repo)
    assert data["failed"] == {}
    assert set(data["models"]) == {*EXPECTED, "tabular_pipeline"}
    for name, (target, artifact) in EXPECTED.items():
        entry = data["models"][name]
        assert entry["target"] == target
        assert entry["status"] == "built"
        assert (repo / name / "1" / artifact).exists()
        assert entry["max_error"] is not None and entry["max_error"] <= entry["tolerance"]["atol"]
        for rel, digest in entry["artifacts"].items():
            assert sha256_tree(repo / name / rel) == digest
        assert entry["reference"] == f"{name}/reference.npz"  # relative to the repository root
        refs = np.load(repo / entry["reference"])
        mbs = entry["max_batch_size"]
        for kind in ("inputs", "outputs"):
            for t in entry[kind]:
                array = refs[f"{kind[:-1]}/{t['name']}"]
                assert array.shape[0] == max(1, mbs)
                assert len(array.shape) == len(t["dims"]) + 1
        assert (repo / name / "build.log").read_text().count("reproduce with:") == 1
    ensemble = data["models"]["tabular_pipeline"]
    assert ensemble["status"] == "built"
    assert ensemble["reference"] == "tabular_pipeline/reference.npz"
    assert ensemble["tolerance"] == {"atol": 1e-4, "rtol": 1e-3}  # the steps' fp32 tolerance
    # nothing Triton would try to load as a model: no top-level folder but the models', no scratch
    assert {p.name for p in repo.iterdir() if p.is_dir()} == set(data["models"])
    assert {p.name for p in repo.iterdir() if p.is_file()} <= {"repo_builder_manifest.json", "README.md"}
    assert not (repo / ".work").exists()
    assert (repo / "tabular_pipeline" / "1").is_dir()
    assert "converted 8 model(s)" in built_examples.output  # 7 conversions and the ensemble's reference


def test_ensemble_reference_is_its_steps_run_one_after_the_other(built_examples: BuiltExamples) -> None:
    """normalizer (python target, TensorFlow SavedModel) then tabular_mlp (ONNX), computed here apart from
    the build: the ensemble's reference is what its steps give, wiring included."""
    import onnxruntime as ort
    import tensorflow as tf

    repo = built_examples.repository
    ref = np.load(repo / "tabular_pipeline" / "reference.npz")
    raw = ref["input/raw_features"]
    assert raw.shape == (8, 16) and raw.dtype == np.float32
    normalize = tf.saved_model.load(str(repo / "normalizer" / "1" / "model.savedmodel")).signatures["serving_default"]
    normalized = normalize(raw_features=tf.constant(raw))["normalized"].numpy()
    session = ort.InferenceSession(str(repo / "tabular_mlp" / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    (probs,) = session.run(["probs"], {"features": normalized})
    np.testing.assert_allclose(ref["output/probs"], probs, atol=1e-6)
    assert not np.allclose(probs, session.run(["probs"], {"features": raw})[0], atol=1e-3)  # the order matters


def test_served_names_are_the_names_the_user_sees(built_examples: BuiltExamples) -> None:
    import onnx

    repo = built_examples.repository
    two = onnx.load(str(repo / "two_tower" / "1" / "model.onnx"))
    assert sorted(i.name for i in two.graph.input) == ["item_features", "user_features"]
    assert sorted(o.name for o in two.graph.output) == ["embedding", "score"]
    config = (repo / "image_cnn_savedmodel" / "config.pbtxt").read_text()
    assert 'name: "image"' in config and 'name: "class_probs"' in config
    text = manifest(repo)["models"]["text_classifier"]
    assert text["inputs"] == [{"name": "token_ids", "dtype": "INT32", "dims": [-1]}]
    assert text["max_batch_size"] == 16
    from repo_builder.inspect.sources import read_signature

    inputs, outputs = read_signature(repo / "image_cnn_savedmodel" / "1" / "model.savedmodel")
    assert [t.name for t in inputs] == ["image"] and [t.name for t in outputs] == ["class_probs"]


def test_noop_rebuild_converts_nothing_without_tensorflow(built_examples: BuiltExamples, tmp_path: Path) -> None:
    before = tree_digest(built_examples.repository)
    started = time.monotonic()
    done = run_build(built_examples.spec, built_examples.repository)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nothing to convert" in done.stdout
    assert "TENSORFLOW_NOT_IMPORTED" in done.stdout
    assert seconds < 3.0, f"a no-op rebuild took {seconds:.1f}s"
    after = tree_digest(built_examples.repository)
    assert before == after


def test_changed_setting_converts_only_that_model(built_examples: BuiltExamples, tmp_path: Path) -> None:
    spec = copy_examples(tmp_path / "examples")
    repo = tmp_path / "repo"
    shutil.copytree(built_examples.repository, repo)
    data = yaml.safe_load(spec.read_text())
    data["models"][0]["opset"] = 15  # tabular_mlp
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    done = run_build(spec, repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "converted 2 model(s)" in done.stdout  # tabular_mlp, and the reference of its ensemble
    import onnx

    assert onnx.load(str(repo / "tabular_mlp" / "1" / "model.onnx")).opset_import[0].version == 15
    before, after = manifest(built_examples.repository)["models"], manifest(repo)["models"]
    assert after["image_cnn"] == before["image_cnn"]
    assert after["tabular_pipeline"]["inputs_hash"] != before["tabular_pipeline"]["inputs_hash"]


def test_only_converts_the_named_model(built_examples: BuiltExamples, tmp_path: Path) -> None:
    spec = copy_examples(tmp_path / "examples")
    repo = tmp_path / "repo"
    shutil.copytree(built_examples.repository, repo)
    done = run_build(spec, repo, "--only", "two_tower")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "converted 1 model(s)" in done.stdout
    before, after = manifest(built_examples.repository)["models"], manifest(repo)["models"]
    assert set(after) == set(before)
    assert all(after[name] == before[name] for name in before if name != "two_tower")


def start_forced_build(
    built_examples: BuiltExamples, tmp_path: Path, **popen: Any
) -> tuple[subprocess.Popen[str], Path, Path, dict[str, str]]:
    """A copy of the built examples, and a `--force` rebuild of it started in a child process."""
    spec = copy_examples(tmp_path / "examples")
    repo = tmp_path / "repo"
    shutil.copytree(built_examples.repository, repo)
    before = tree_digest(repo)
    script = spec.parent / "_build.py"
    script.write_text(BUILD_SCRIPT)
    proc = subprocess.Popen([PYTHON, str(script), str(spec), str(repo), "--force"], cwd=spec.parent, text=True, **popen)
    return proc, spec, repo, before


def _session_processes(sid: int) -> list[str]:
    """Command lines of the live processes of session `sid` (zombies excluded)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:  # state, ..., session id
            found.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
    return found


def test_killed_build_leaves_the_previous_repository_intact(built_examples: BuiltExamples, tmp_path: Path) -> None:
    proc, spec, repo, before = start_forced_build(
        built_examples, tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait until conversions are writing into the staging folder
            logs = list(tmp_path.glob(".repo.staging-*/*/build.log"))
            if logs and any("step: tensorflow2savedmodel" in p.read_text(errors="replace") for p in logs):
                break
            assert proc.poll() is None, "the build ended before it could be killed"
            time.sleep(0.1)
        else:
            pytest.fail("the build never started converting")
        os.kill(proc.pid, signal.SIGKILL)  # the build process only, as `kill -9 PID` does
        proc.wait()
        deadline = time.monotonic() + 15  # its workers notice and end (they would wait forever otherwise)
        while _session_processes(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _session_processes(proc.pid) == [], "worker processes outlived the killed build"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert tree_digest(repo) == before
    assert list(tmp_path.glob(".repo.staging-*")), "the killed build's staging folder should be left aside"
    done = run_build(spec, repo)  # the next build works and tidies the leftover staging folder
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nothing to convert" in done.stdout
    assert not list(tmp_path.glob(".repo.staging-*"))
    after = tree_digest(repo)
    (
        after.pop("repo_builder_manifest.json"),
        before.pop("repo_builder_manifest.json"),
    )  # names the new spec path
    assert after == before


@pytest.mark.parametrize("how", ["sigterm", "terminal_closed"])
def test_interrupted_build_removes_its_staging_folder(built_examples: BuiltExamples, tmp_path: Path, how: str) -> None:
    """`kill PID` (SIGTERM to the build) and a closed terminal (SIGHUP to its whole process group) unwind
    like Ctrl-C: the staging folder goes, the repository stays, no process and no semaphore is left."""
    shm_before = set(os.listdir("/dev/shm"))
    proc, _spec, repo, before = start_forced_build(
        built_examples, tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".repo.staging-*/*/build.log")) and time.monotonic() < deadline:
        time.sleep(0.1)
    if how == "sigterm":
        proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(proc.pid, signal.SIGHUP)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert tree_digest(repo) == before
    deadline = time.monotonic() + 15
    while _session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _session_processes(proc.pid) == []
    assert not list(tmp_path.glob(".repo.staging-*"))
    assert not {n for n in set(os.listdir("/dev/shm")) - shm_before if n.startswith("sem.mp-")}


def test_failing_model_is_reported_and_the_others_build(tmp_path: Path) -> None:
    (tmp_path / "models.py").write_text(
        "import keras\n"
        "def good():\n"
        "    x = keras.Input((4,), name='x')\n"
        "    return keras.Model(x, keras.layers.Dense(2, name='y')(x))\n"
        "def broken():\n"
        "    raise RuntimeError('the factory is broken on purpose')\n"
    )
    spec = write_spec(
        tmp_path,
        [
            {
                "name": "good",
                "source": {"python": "models.py:good"},
                "target": "savedmodel",
                "versions": [1, 2],
            },
            {"name": "broken", "source": {"python": "models.py:broken"}, "target": "onnx"},
            {
                "name": "wrong_dtype",
                "source": {"python": "models.py:good"},
                "target": "onnx",
                "inputs": [{"name": "x", "dtype": "INT32", "dims": [5]}],
            },
        ],
    )
    done = run_build(spec, tmp_path / "repo")
    assert done.returncode == 1
    repo = tmp_path / "repo"
    data = manifest(repo)
    assert set(data["models"]) == {"good"}
    assert (repo / "good" / "1" / "model.savedmodel" / "saved_model.pb").is_file()
    # no folder (Triton refuses to start on a model folder without config.pbtxt); the log is a top-level file
    assert not (repo / "broken").exists()
    assert data["failed"]["broken"]["log"] == "broken.build.log"
    assert "the factory is broken on purpose" in data["failed"]["broken"]["error"]
    assert "broken on purpose" in (repo / "broken.build.log").read_text()
    error = data["failed"]["wrong_dtype"]["error"]
    assert "input 'x': spec dtype INT32, model dtype FP32" in error
    assert "input 'x': dim 0 is 5 in the spec, 4 in the model (dims [4])" in error
    flat = done.stderr.replace("\n", "")  # the console wraps long paths
    assert "broken failed:" in flat and "/repo/broken.build.log" in flat
    assert "2 model(s) failed: broken, wrong_dtype" in flat
    assert "converted 1 model(s)" in done.stdout and "up to date" not in done.stdout
    good = data["models"]["good"]
    assert sorted(good["artifacts"]) == ["1/model.savedmodel", "2/model.savedmodel"]
    assert (repo / "good" / "2" / "model.savedmodel" / "saved_model.pb").is_file()

    # the model breaks later: the rebuild fails and the repository keeps its previous build
    before = tree_digest(repo / "good")
    models_py = tmp_path / "models.py"
    models_py.write_text(
        models_py.read_text().replace(
            "    x = keras.Input", "    raise ValueError('now broken')\n    x = keras.Input", 1
        )
    )
    again = run_build(spec, repo)
    assert again.returncode == 1
    data = manifest(repo)
    assert data["models"]["good"] == good
    assert "now broken" in data["failed"]["good"]["error"]
    assert data["failed"]["good"]["kept"] == "the previous build of this model"
    after = tree_digest(repo / "good")
    assert after.pop("build.log") != before.pop("build.log")  # the log of this failure replaces the old
    assert after == before
    assert "now broken" in (repo / "good" / "build.log").read_text()
    assert "keeps the previous build" in again.stderr


def test_other_sources_saved_model_and_keras_files(built_examples: BuiltExamples, tmp_path: Path) -> None:
    """SavedModel folder (ours, and Keras 3's own tf.saved_model.save naming), .keras and .h5 files."""
    script = (
        "import sys, keras, tensorflow as tf\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import models\n"
        "m = models.build_mlp()\n"
        "m.save(sys.argv[2] + '/mlp.keras')\n"
        "m.save(sys.argv[2] + '/mlp.h5')\n"
        "tf.saved_model.save(m, sys.argv[2] + '/keras3_saved')\n"
    )
    subprocess.run(
        [PYTHON, "-c", script, str(built_examples.spec.parent), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    shutil.copytree(
        built_examples.repository / "image_cnn_savedmodel" / "1" / "model.savedmodel", tmp_path / "cnn_saved"
    )
    (tmp_path / "fixed.py").write_text(
        "import tensorflow as tf\n"
        "class Fixed(tf.Module):\n"
        "    @tf.function(input_signature=[tf.TensorSpec([3, 4], tf.float32, name='grid')])\n"
        "    def __call__(self, grid):\n"
        "        return {'row_sums': tf.reduce_sum(grid, axis=1), 'scaled': grid * 2.0}\n"
        "def build():\n"
        "    return Fixed()\n"
    )
    spec = write_spec(
        tmp_path,
        [
            {"name": "no_batch", "source": {"python": "fixed.py:build"}, "target": "python"},
            {"name": "from_keras", "source": {"keras_file": "mlp.keras"}, "target": "onnx"},
            {"name": "from_h5", "source": {"keras_file": "mlp.h5"}, "target": "savedmodel"},
            {"name": "from_saved", "source": {"saved_model": "cnn_saved"}, "target": "python"},
            {
                "name": "keras3_named",
                "source": {"saved_model": "keras3_saved"},
                "target": "onnx",
                "inputs": [{"name": "features", "dtype": "FP32", "dims": [16]}],
                "outputs": [{"name": "probs", "dtype": "FP32", "dims": [4]}],
            },
            {
                "name": "keras3_saved",
                "source": {"saved_model": "keras3_saved"},
                "target": "onnx",
                "max_batch_size": 4,
            },
        ],
    )
    done = run_build(spec, tmp_path / "repo")
    assert done.returncode == 0, done.stdout + done.stderr
    data = manifest(tmp_path / "repo")["models"]
    assert [t["name"] for t in data["from_keras"]["inputs"]] == ["features"]
    assert [t["name"] for t in data["from_h5"]["outputs"]] == ["probs"]
    assert [t["name"] for t in data["from_saved"]["inputs"]] == ["image"]
    assert [t["name"] for t in data["keras3_saved"]["inputs"]] == ["inputs"]
    assert [t["name"] for t in data["keras3_saved"]["outputs"]] == ["output_0"]
    assert data["keras3_named"]["renamed"] == {"inputs": "features", "output_0": "probs"}
    assert data["no_batch"]["max_batch_size"] == 0
    assert data["no_batch"]["inputs"] == [{"name": "grid", "dtype": "FP32", "dims": [3, 4]}]
    assert data["no_batch"]["outputs"] == [
        {"name": "row_sums", "dtype": "FP32", "dims": [3]},
        {"name": "scaled", "dtype": "FP32", "dims": [3, 4]},
    ]
    assert np.load(tmp_path / "repo" / "no_batch" / "reference.npz")["input/grid"].shape == (3, 4)
    assert "max_batch_size: 0" in (tmp_path / "repo" / "no_batch" / "config.pbtxt").read_text()
    import onnx

    named = onnx.load(str(tmp_path / "repo" / "keras3_named" / "1" / "model.onnx"))
    assert [i.name for i in named.graph.input] == ["features"]
    assert [o.name for o in named.graph.output] == ["probs"]
    assert all(e["status"] == "built" and e["max_error"] < 1e-4 for e in data.values())


def test_tftrt_target_without_tensorrt_leaves_the_conversion_to_the_deployment(tmp_path: Path) -> None:
    """TF 2.21 has no TensorRT: a tftrt model is built as the SavedModel TF-TRT converts plus its recipe,
    which the compose file runs on the target GPU (the recipe itself: tests/integration/converters)."""
    from repo_builder.converters.savedmodel2tftrt import SavedModel2TFTRT

    if SavedModel2TFTRT().available() is None:
        pytest.skip("this TensorFlow has TF-TRT: the model is converted at build time instead")
    (tmp_path / "models.py").write_text(
        "import keras\n"
        "def good():\n"
        "    x = keras.Input((4,), name='x')\n"
        "    return keras.Model(x, keras.layers.Dense(2, name='y')(x))\n"
    )
    spec = write_spec(
        tmp_path,
        [{"name": "trt", "source": {"python": "models.py:good"}, "target": "tftrt", "precision": "fp16"}],
    )
    done = run_build(spec, tmp_path / "repo")
    assert done.returncode == 0, done.stdout + done.stderr
    entry = manifest(tmp_path / "repo")["models"]["trt"]
    assert entry["status"] == "recipe" and entry["recipes"] == {"1": "trt/1/build_tftrt.py"}
    assert any("TF-TRT is converted at deployment" in n and "nvcr.io/nvidia/tensorflow" in n for n in entry["notes"])
    version = tmp_path / "repo" / "trt" / "1"
    assert sorted(p.name for p in version.iterdir()) == ["build_tftrt.py", "tftrt_source.savedmodel"]
    assert "tftrt-builder" in (tmp_path / "docker-compose.yml").read_text()


def test_tensorrt_target_writes_onnx_and_recipe_without_tensorrt(tmp_path: Path) -> None:
    from repo_builder.converters.onnx2plan import Onnx2Plan

    if Onnx2Plan().available() is None:
        pytest.skip("TensorRT is importable here: the plan is built instead of a recipe")
    (tmp_path / "models.py").write_text(
        "import keras\n"
        "def text():\n"
        "    x = keras.Input((None,), dtype='int32', name='ids')\n"
        "    e = keras.layers.Embedding(50, 4)(x)\n"
        "    return keras.Model(x, keras.layers.Dense(2, "
        "name='y')(keras.layers.GlobalAveragePooling1D()(e)))\n"
    )
    spec = write_spec(
        tmp_path,
        [
            {
                "name": "plan",
                "source": {"python": "models.py:text"},
                "target": "tensorrt",
                "precision": "fp16",
                "max_batch_size": 16,
                "tensorrt": {"shapes": {"ids": {"min": [1], "opt": [32], "max": [256]}}},
            },
        ],
    )
    done = run_build(spec, tmp_path / "repo")
    assert done.returncode == 0, done.stdout + done.stderr
    repo = tmp_path / "repo"
    entry = manifest(repo)["models"]["plan"]
    assert entry["status"] == "recipe"
    assert entry["recipe"] == "plan/1/build_plan.sh"
    assert entry["platform"] == "tensorrt_plan"
    assert 'platform: "tensorrt_plan"' in (repo / "plan" / "config.pbtxt").read_text()
    recipe = (repo / entry["recipe"]).read_text()
    assert "--minShapes=ids:1x1 --optShapes=ids:8x32 --maxShapes=ids:16x256" in recipe.replace(" \\\n  ", " ")
    assert (repo / "plan" / "1" / "model.onnx").is_file()  # next to where model.plan goes
    assert not (repo / "plan" / "1" / "model.plan").exists()
    assert "built at deployment" in done.stdout


@pytest.mark.gpu
@pytest.mark.tensorrt
def test_tftrt_conversion_on_a_tensorrt_build(tmp_path: Path) -> None:
    from repo_builder.converters.savedmodel2tftrt import SavedModel2TFTRT

    problem = SavedModel2TFTRT().available()
    if problem:
        pytest.skip(f"no TF-TRT here: {problem[:160]}")
    (tmp_path / "models.py").write_text(
        "import keras\n"
        "def mlp():\n"
        "    x = keras.Input((16,), name='x')\n"
        "    h = keras.layers.Dense(64, activation='relu')(x)\n"
        "    return keras.Model(x, keras.layers.Dense(4, name='y')(h))\n"
    )
    spec = write_spec(
        tmp_path,
        [
            {
                "name": "trt",
                "source": {"python": "models.py:mlp"},
                "target": "tftrt",
                "precision": "fp16",
            },
        ],
    )
    done = run_build(spec, tmp_path / "repo")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "% of OPs Converted" in (tmp_path / "repo" / "trt" / "build.log").read_text()


@pytest.mark.gpu
@pytest.mark.tensorrt
def test_tensorrt_plan_is_built_where_tensorrt_exists(tmp_path: Path) -> None:
    from repo_builder.converters.onnx2plan import Onnx2Plan

    problem = Onnx2Plan().available()
    if problem:
        pytest.skip(f"no TensorRT here: {problem[:160]}")
    (tmp_path / "models.py").write_text(
        "import keras\n"
        "def mlp():\n"
        "    x = keras.Input((16,), name='x')\n"
        "    return keras.Model(x, keras.layers.Dense(4, name='y')(x))\n"
    )
    spec = write_spec(
        tmp_path,
        [
            {
                "name": "plan",
                "source": {"python": "models.py:mlp"},
                "target": "tensorrt",
                "verify": False,
            },
        ],
    )
    done = run_build(spec, tmp_path / "repo")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "repo" / "plan" / "1" / "model.plan").is_file()


def test_legacy_tf_keras_factory_and_h5(tmp_path: Path) -> None:
    """Legacy Keras 2 (tf_keras) models: from a factory, and an .h5 file saved by tf_keras."""
    pytest.importorskip("tf_keras", reason="tf-keras (legacy Keras 2) is not installed here")
    (tmp_path / "legacy.py").write_text(
        "import tf_keras\n"
        "def build():\n"
        "    tf_keras.utils.set_random_seed(0)\n"
        "    x = tf_keras.Input((5,), name='legacy_in')\n"
        "    h = tf_keras.layers.Dense(8, activation='relu')(x)\n"
        "    return tf_keras.Model(x, tf_keras.layers.Dense(3, name='legacy_out')(h))\n"
    )
    subprocess.run(
        [
            PYTHON,
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); import legacy; "
            "legacy.build().save(sys.argv[1] + '/legacy.h5')",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    spec = write_spec(
        tmp_path,
        [
            {"name": "legacy_onnx", "source": {"python": "legacy.py:build"}, "target": "onnx"},
            {"name": "legacy_h5", "source": {"keras_file": "legacy.h5"}, "target": "savedmodel"},
        ],
    )
    done = run_build(spec, tmp_path / "repo")
    assert done.returncode == 0, done.stdout + done.stderr
    data = manifest(tmp_path / "repo")["models"]
    for name in ("legacy_onnx", "legacy_h5"):
        assert [t["name"] for t in data[name]["inputs"]] == ["legacy_in"]
        assert [t["name"] for t in data[name]["outputs"]] == ["legacy_out"]
        assert data[name]["max_error"] < 1e-4


def test_reference_has_the_shapes_the_config_promises(tmp_path: Path) -> None:
    """A dim the model leaves variable and the spec fixes (max_batch_size 0, dims [3, 16]) is that size in
    the verification inputs and the stored reference, so the golden check sends what the server accepts."""
    shutil.copy2(EXAMPLES / "models.py", tmp_path / "models.py")
    spec = write_spec(
        tmp_path,
        [
            {
                "name": "fixed",
                "source": {"python": "models.py:build_mlp"},
                "target": "onnx",
                "max_batch_size": 0,
                "inputs": [{"name": "features", "dtype": "FP32", "dims": [3, 16]}],
            }
        ],
    )
    done = run_build(spec, tmp_path / "repo")
    assert done.returncode == 0, done.stdout + done.stderr
    ref = np.load(tmp_path / "repo" / "fixed" / "reference.npz")
    assert ref["input/features"].shape == (3, 16)
    assert ref["output/probs"].shape == (3, 4)


def test_an_ensemble_of_an_ensemble_listed_first(built_examples: BuiltExamples, tmp_path: Path) -> None:
    """An ensemble whose step is another ensemble builds whatever their order in the spec; its reference
    is its steps run through (the inner ensemble's steps included)."""
    spec = copy_examples(tmp_path / "examples")
    repo = tmp_path / "repo"
    shutil.copytree(built_examples.repository, repo)
    data = yaml.safe_load(spec.read_text())
    outer = {
        "name": "outer",
        "target": "ensemble",
        "inputs": [{"name": "raw", "dtype": "FP32", "dims": [16]}],
        "outputs": [{"name": "p", "dtype": "FP32", "dims": [4]}],
        "steps": [{"model": "tabular_pipeline", "input_map": {"raw_features": "raw"}, "output_map": {"probs": "p"}}],
    }
    data["models"].insert(0, outer)
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    done = run_build(spec, repo)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "converted 1 model(s)" in done.stdout  # the outer ensemble's reference; the rest is carried over
    inner = np.load(repo / "tabular_pipeline" / "reference.npz")
    ref = np.load(repo / "outer" / "reference.npz")
    np.testing.assert_array_equal(ref["input/raw"], inner["input/raw_features"])  # same seed, same shape
    np.testing.assert_allclose(ref["output/p"], inner["output/probs"], atol=1e-6)
