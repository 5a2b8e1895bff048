"""The built python-backend models in the real tritonserver (from the nvidia-pytriton wheel).

Served straight from a built repository (no preview rewriting, no copy), the way docker-compose serves it:
default `--model-control-mode=none`, `--disable-auto-complete-config`, `--strict-readiness=true`. The
repository is built from a spec with only the python-target models, which the embedded server runs
natively (it has no TensorFlow or ONNX Runtime backend). The generated model.py files load and answer with
the stored reference outputs, batching included, and what repo-builder adds (repo_builder_manifest.json,
<model>/reference.npz, <model>/build.log) does not disturb the server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.integration.examples import copy_examples, run_build

pytestmark = [pytest.mark.tensorflow, pytest.mark.server, pytest.mark.slow]

PYTHON_MODELS = ["image_cnn_python", "normalizer"]


def _free_ports(n: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Server:
    def __init__(self, repo: Path, work: Path, args: list[str]) -> None:
        from repo_builder.serve.binary import find_distribution, make_backend_dir

        dist = find_distribution()
        backends = make_backend_dir(dist, work / "backends")
        self.http, grpc, metrics = _free_ports(3)
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = str(dist.libs)
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        self.log = work / "server.log"
        cmd = [
            str(dist.binary),
            f"--model-repository={repo}",
            f"--backend-directory={backends}",
            f"--cache-directory={work / 'cache'}",
            "--http-address=127.0.0.1",
            f"--http-port={self.http}",
            "--grpc-address=127.0.0.1",
            f"--grpc-port={grpc}",
            "--metrics-address=127.0.0.1",
            f"--metrics-port={metrics}",
            "--allow-gpu-metrics=false",
            "--disable-auto-complete-config",
            f"--backend-config=python,shm-region-prefix-name=rbtest{self.http}_",
            *args,
        ]
        self.proc = subprocess.Popen(
            cmd, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def wait_ready(self, timeout: float = 120) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/v2/health/ready", timeout=1) as r:
                    if r.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.3)
        return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for shm in Path("/dev/shm").glob(f"rbtest{self.http}_*"):
            shm.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def python_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/models.yaml reduced to its python-target models, built with `repo-builder build -o`."""
    import yaml

    pytest.importorskip("pytriton", reason="the embedded tritonserver comes with nvidia-pytriton")
    base = tmp_path_factory.mktemp("python_models")
    spec = copy_examples(base / "examples")
    data = yaml.safe_load(spec.read_text())
    data["models"] = [m for m in data["models"] if m["name"] in PYTHON_MODELS]
    assert sorted(m["name"] for m in data["models"]) == sorted(PYTHON_MODELS)
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    repo = base / "model_repository"
    done = run_build(spec, repo)
    if done.returncode != 0:
        pytest.fail(f"building the python models failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return repo


@pytest.fixture(scope="module")
def served(python_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("triton")
    # as the compose file starts it (besides --disable-auto-complete-config, which Server always passes)
    args = ["--model-control-mode=none", "--strict-readiness=true"]
    server = Server(python_repository, work, args)
    try:
        if not server.wait_ready():
            pytest.fail("tritonserver did not become ready:\n" + server.log.read_text(errors="replace")[-4000:])
        yield server
    finally:
        server.stop()


def test_python_models_answer_with_the_reference_outputs(served: Server, python_repository: Path) -> None:
    import tritonclient.http as http

    client = http.InferenceServerClient(f"127.0.0.1:{served.http}")
    manifest = json.loads((python_repository / "repo_builder_manifest.json").read_text())
    for name in PYTHON_MODELS:
        entry = manifest["models"][name]
        ref = np.load(python_repository / entry["reference"])
        tol = entry["tolerance"]
        for batch in (1, 3, entry["max_batch_size"]):
            inputs = []
            for t in entry["inputs"]:
                value = ref[f"input/{t['name']}"][:batch]
                item = http.InferInput(t["name"], list(value.shape), t["dtype"])
                item.set_data_from_numpy(value)
                inputs.append(item)
            result = client.infer(name, inputs)
            for t in entry["outputs"]:
                np.testing.assert_allclose(
                    result.as_numpy(t["name"]),
                    ref[f"output/{t['name']}"][:batch],
                    atol=tol["atol"],
                    rtol=tol["rtol"],
                )


def test_concurrent_requests_are_batched(served: Server, python_repository: Path) -> None:
    import tritonclient.http as http

    ref = np.load(python_repository / "image_cnn_python" / "reference.npz")
    x, y = ref["input/image"], ref["output/class_probs"]

    def one(i: int) -> float:
        client = http.InferenceServerClient(f"127.0.0.1:{served.http}")
        item = http.InferInput("image", [1, *x.shape[1:]], "FP32")
        item.set_data_from_numpy(x[i % len(x)][None])
        out = client.infer("image_cnn_python", [item]).as_numpy("class_probs")
        return float(np.abs(out[0] - y[i % len(y)]).max())

    with ThreadPoolExecutor(16) as pool:
        errors = list(pool.map(one, range(48)))
    assert max(errors) < 1e-4
    client = http.InferenceServerClient(f"127.0.0.1:{served.http}")
    stats = client.get_inference_statistics("image_cnn_python")["model_stats"][0]
    assert int(stats["inference_count"]) >= 48


def test_built_repository_is_served_whole_with_default_model_control(served: Server, python_repository: Path) -> None:
    """Everything repo-builder writes is where Triton does not look: the server loaded every model of the
    repository (it would have exited on any folder it could not load, and --strict-readiness holds
    readiness until all are ready) and lists nothing else."""
    assert (python_repository / "repo_builder_manifest.json").is_file()
    for name in PYTHON_MODELS:
        assert (python_repository / name / "reference.npz").is_file()
        assert (python_repository / name / "build.log").is_file()
    with urllib.request.urlopen(
        urllib.request.Request(f"http://127.0.0.1:{served.http}/v2/repository/index", method="POST", data=b"{}")
    ) as r:
        index = {m["name"]: m for m in json.loads(r.read())}
    assert sorted(index) == sorted(PYTHON_MODELS)
    assert all(index[m].get("state") == "READY" for m in PYTHON_MODELS)
    log = served.log.read_text(errors="replace")
    assert "fails to convert to integral number" not in log  # no sub-folder in a model folder
    assert served.proc.poll() is None
