"""The built python-backend models in the real tritonserver (from the nvidia-pytriton wheel).

Served straight from the built repository (no preview rewriting): the generated model.py files load and
answer with the stored reference outputs, batching included. Also pins down a fact about the layout:
Triton tries to load every top-level folder, `.repo_builder/` included, so a server started with
`--model-control-mode=none` on the repository fails; with explicit control and the manifest's models
listed, `.repo_builder/` is never loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

try:
    from tests.integration.build_fixtures import BuiltExamples, built_examples
except ImportError:
    from build_fixtures import BuiltExamples, built_examples  # type: ignore[import-not-found,no-redef]  # noqa: F401

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
        from repo_builder.server.binary import find_distribution, make_backend_dir

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
def served(built_examples: BuiltExamples, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    pytest.importorskip("pytriton", reason="the embedded tritonserver comes with nvidia-pytriton")
    work = tmp_path_factory.mktemp("triton")
    args = ["--model-control-mode=explicit", *[f"--load-model={m}" for m in PYTHON_MODELS]]
    server = Server(built_examples.repository, work, args)
    try:
        if not server.wait_ready():
            pytest.fail(
                "tritonserver did not become ready:\n" + server.log.read_text(errors="replace")[-4000:]
            )
        yield server
    finally:
        server.stop()


def test_python_models_answer_with_the_reference_outputs(
    served: Server, built_examples: BuiltExamples
) -> None:
    import tritonclient.http as http

    client = http.InferenceServerClient(f"127.0.0.1:{served.http}")
    manifest = json.loads((built_examples.repository / ".repo_builder" / "manifest.json").read_text())
    for name in PYTHON_MODELS:
        entry = manifest["models"][name]
        ref = np.load(built_examples.repository / ".repo_builder" / entry["reference"])
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


def test_concurrent_requests_are_batched(served: Server, built_examples: BuiltExamples) -> None:
    import tritonclient.http as http

    ref = np.load(built_examples.repository / ".repo_builder" / "references" / "image_cnn_python.npz")
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


def test_meta_folder_is_not_loaded_with_explicit_control(served: Server) -> None:
    with urllib.request.urlopen(
        urllib.request.Request(
            f"http://127.0.0.1:{served.http}/v2/repository/index", method="POST", data=b"{}"
        )
    ) as r:
        index = {m["name"]: m for m in json.loads(r.read())}
    assert all(index[m].get("state") == "READY" for m in PYTHON_MODELS)
    assert index[".repo_builder"].get("state") in (None, "")  # listed as a folder, never loaded


def test_triton_tries_to_load_the_meta_folder_in_mode_none(
    built_examples: BuiltExamples, tmp_path: Path
) -> None:
    """Pins down the real server's behaviour that forces explicit model control (see the module docstring)."""
    pytest.importorskip("pytriton", reason="the embedded tritonserver comes with nvidia-pytriton")
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copytree(built_examples.repository / "image_cnn_python", repo / "image_cnn_python")
    shutil.copytree(built_examples.repository / ".repo_builder", repo / ".repo_builder")
    server = Server(repo, tmp_path, ["--model-control-mode=none"])
    try:
        server.wait_ready(timeout=60)
        server.proc.wait(timeout=60)
    finally:
        server.stop()
    log = server.log.read_text(errors="replace")
    assert "Poll failed for model directory '.repo_builder'" in log
