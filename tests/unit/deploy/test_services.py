"""The builders' shell program, run here with bash on a repository whose recipes are stand-ins.

TensorRT's trtexec and TF-TRT cannot run here (no GPU, no TensorRT): the recipes in these tests are
stand-ins that write the model file and count their runs. What is real is the builder's program itself,
as compose hands it to bash (`$$` turned into `$`): the stamp that skips an unchanged model, the rebuild
when the recipe or an input changes, the refusal of a missing recipe, the chown to the repository's owner.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from repo_builder.deploy import compose
from repo_builder.deploy import services as deploy_services
from repo_builder.spec import load_spec

MLP = '{python: "models:build_mlp"}'


def _spec(tmp_path: Path, models: str):  # type: ignore[no-untyped-def]
    (tmp_path / "spec.yaml").write_text("repository: model_repository\nmodels:\n" + models)
    return load_spec(tmp_path / "spec.yaml")


PLAN_STANDIN = """#!/bin/sh
# stand-in for trtexec (no TensorRT here): writes the plan, counts its runs
set -eu
cd "$(dirname "$0")/../.."
echo run >> "$(dirname "$0")/runs.txt"
cat {folder}/model.onnx > {folder}/model.plan
"""

TFTRT_STANDIN = """# stand-in for TF-TRT (no TensorRT here): writes model.savedmodel, counts its runs
from pathlib import Path
here = Path(__file__).resolve().parent
with open(here / "runs.txt", "a") as f:
    f.write("run\\n")
graph = (here / "tftrt_source.savedmodel" / "saved_model.pb").read_bytes()
(here / "model.savedmodel").mkdir(exist_ok=True)
(here / "model.savedmodel" / "saved_model.pb").write_bytes(graph)
"""


def _repository(tmp_path: Path) -> tuple[Path, str, str]:
    """A repository with one plan recipe and one TF-TRT recipe (stand-ins), and the two builders' programs
    as bash receives them."""
    spec = _spec(
        tmp_path,
        f"  - name: plan\n    source: {MLP}\n    target: tensorrt\n"
        f"  - name: trt\n    source: {MLP}\n    target: tftrt\n",
    )
    repo = tmp_path / "model_repository"
    (repo / "plan" / "1").mkdir(parents=True)
    (repo / "plan" / "1" / "model.onnx").write_text("onnx v1")
    (repo / "plan" / "1" / "build_plan.sh").write_text(PLAN_STANDIN.format(folder="plan/1"))
    (repo / "trt" / "1" / "tftrt_source.savedmodel").mkdir(parents=True)
    (repo / "trt" / "1" / "tftrt_source.savedmodel" / "saved_model.pb").write_text("graph v1")
    (repo / "trt" / "1" / "build_tftrt.py").write_text(TFTRT_STANDIN)
    services = yaml.safe_load(compose.render_compose(spec, repo)["docker-compose.yml"])["services"]
    plan = services["engine-builder"]["command"][-1].replace("$$", "$")
    tftrt = services["tftrt-builder"]["command"][-1].replace("$$", "$")
    return repo, plan, tftrt


def _run(repo: Path, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=repo, capture_output=True, text=True)


def _runs(folder: Path) -> int:
    runs = folder / "runs.txt"
    return len(runs.read_text().splitlines()) if runs.is_file() else 0


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("sha256sum") is None, reason="needs bash, coreutils")
def test_the_builders_skip_an_unchanged_model(tmp_path: Path) -> None:
    repo, plan_script, tftrt_script = _repository(tmp_path)
    plan, trt = repo / "plan" / "1", repo / "trt" / "1"
    for script, folder, output in ((plan_script, plan, "model.plan"), (tftrt_script, trt, "model.savedmodel")):
        first = _run(repo, script)
        assert first.returncode == 0, first.stderr
        assert _runs(folder) == 1
        assert (folder / output).exists()
        assert (folder / f"{output}.stamp").read_text().strip()
        again = _run(repo, script)  # the next `up`: nothing changed, nothing rebuilt
        assert again.returncode == 0, again.stderr
        assert _runs(folder) == 1
        assert f"{folder.relative_to(repo).as_posix()}/{output} is up to date" in again.stdout

    # an input changed (the model was rebuilt): built again
    (plan / "model.onnx").write_text("onnx v2")
    assert _run(repo, plan_script).returncode == 0
    assert _runs(plan) == 2 and (plan / "model.plan").read_text() == "onnx v2"
    (trt / "tftrt_source.savedmodel" / "saved_model.pb").write_text("graph v2")
    assert _run(repo, tftrt_script).returncode == 0
    assert _runs(trt) == 2
    # the recipe changed (other settings): built again
    (plan / "build_plan.sh").write_text(PLAN_STANDIN.format(folder="plan/1") + "# fp16\n")
    assert _run(repo, plan_script).returncode == 0
    assert _runs(plan) == 3
    # the model file is gone: built again, whatever the stamp says
    (plan / "model.plan").unlink()
    assert _run(repo, plan_script).returncode == 0
    assert _runs(plan) == 4 and (plan / "model.plan").is_file()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_a_failed_recipe_leaves_no_stamp(tmp_path: Path) -> None:
    repo, plan_script, _ = _repository(tmp_path)
    (repo / "plan" / "1" / "build_plan.sh").write_text("#!/bin/sh\necho half > plan/1/model.plan\nexit 3\n")
    result = _run(repo, plan_script)
    assert result.returncode == 3
    assert not (repo / "plan" / "1" / "model.plan.stamp").exists()  # the half-written plan is rebuilt next time


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_a_missing_recipe_stops_the_builder(tmp_path: Path) -> None:
    repo, plan_script, _ = _repository(tmp_path)
    (repo / "plan" / "1" / "model.onnx").unlink()
    result = _run(repo, plan_script)
    assert result.returncode == 1
    assert "missing plan/1/model.onnx: run repo-builder build first; it writes the recipes" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another user needs root, as in the container")
def test_the_builder_gives_what_it_wrote_to_the_repositorys_owner(tmp_path: Path) -> None:
    """The builder runs as the image's root; what it writes goes to the owner of the repository folder."""
    repo, plan_script, _ = _repository(tmp_path)
    os.chown(repo, 12345, 12345)
    assert _run(repo, plan_script).returncode == 0
    for name in ("model.plan", "model.plan.stamp", "runs.txt"):
        stat = (repo / "plan" / "1" / name).stat()
        assert (stat.st_uid, stat.st_gid) == (12345, 12345), name


def test_recipes_of_each_kind(tmp_path: Path) -> None:
    import numpy as np

    np.savez(tmp_path / "calib.npz", x=np.zeros((8, 16), np.float32))
    spec = _spec(
        tmp_path,
        f"  - name: trt\n    source: {MLP}\n    target: tftrt\n    versions: [2]\n    precision: int8\n"
        "    calibration: {data: calib.npz}\n"
        f"  - name: plan\n    source: {MLP}\n    target: tensorrt\n",
    )
    assert deploy_services.engine_recipes(spec, tmp_path / "model_repository") == [
        deploy_services.Recipe(
            "trt",
            2,
            "trt/2/build_tftrt.py",
            "trt/2/model.savedmodel",
            "tftrt",
            ("trt/2/tftrt_source.savedmodel", "trt/2/calibration.npz"),
        ),
        deploy_services.Recipe("plan", 1, "plan/1/build_plan.sh", "plan/1/model.plan", "plan", ("plan/1/model.onnx",)),
    ]


def test_import_names() -> None:
    assert deploy_services.import_names(["numpy==1.26.4", "onnxruntime==1.31.1", "tensorflow==2.21.0"]) == [
        "numpy",
        "onnxruntime",
        "tensorflow",
    ]
