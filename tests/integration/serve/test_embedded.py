"""The embedded tritonserver: start, preview, stop (real server from the nvidia-pytriton wheel)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from repo_builder.errors import DeploymentError
from repo_builder.serve import EmbeddedServer, free_ports, prepare_repository
from repo_builder.serve.binary import find_distribution, make_backend_dir
from repo_builder.serve.embedded import SHM_DIR
from repo_builder.triton.server_args import ServerArgs
from tests.integration.sample_repository import CONFIGS, PY_ADD_MODEL

pytestmark = pytest.mark.server


def py_add_repository(root: Path, model_py: str = PY_ADD_MODEL) -> Path:
    (root / "py_add" / "1").mkdir(parents=True)
    (root / "py_add" / "config.pbtxt").write_text(textwrap.dedent(CONFIGS["py_add"]))
    (root / "py_add" / "1" / "model.py").write_text(model_py)
    return root


def shm_regions(prefix: str) -> list[str]:
    return sorted(p.name for p in SHM_DIR.glob(f"{prefix}*"))


def test_triton_does_not_ignore_hidden_repo_builder_folder(tmp_path: Path) -> None:
    """Why repo-builder writes no top-level folder (its manifest is a top-level file, its references and
    logs sit in the model folders): the real server tries to load every top-level folder, hidden ones
    included, as a model. A metadata folder `.repo_builder/` (the layout before) made it exit."""
    repo = py_add_repository(tmp_path / "repo")
    (repo / ".repo_builder" / "references").mkdir(parents=True)
    (repo / ".repo_builder" / "manifest.json").write_text("{}")
    dist = find_distribution()
    backends = make_backend_dir(dist, tmp_path / "backends")
    http, grpc, metrics = free_ports(3)
    env = dict(os.environ, LD_LIBRARY_PATH=str(dist.libs), PATH=f"{Path(sys.prefix) / 'bin'}:{os.environ['PATH']}")
    args = ServerArgs(
        binary=str(dist.binary),
        model_repository=str(repo),
        backend_directory=str(backends),
        address="127.0.0.1",
        http_port=http,
        grpc_port=grpc,
        metrics_port=metrics,
        allow_gpu_metrics=False,
    )
    result = subprocess.run(
        args.to_args_list(),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Poll failed for model directory '.repo_builder'" in log
    assert "failed to load all models" in log


def test_serves_repository_with_preview(embedded_server: EmbeddedServer, model_repository: Path) -> None:
    import tritonclient.http as httpclient

    served = embedded_server.served
    assert served is not None
    assert served.left_out == []  # hidden entries would be; the manifest is a file, never linked
    assert not (served.path / "repo_builder_manifest.json").exists()
    assert sorted(served.passed_through) == ["ens", "py_add"]
    previews = {p.name: p for p in embedded_server.previews}
    expected = {"onnx_mlp": ("onnxruntime_onnx", "onnxruntime"), "trt_mlp": ("tensorrt_plan", "onnxruntime")}
    if (model_repository / "tf_scale").exists():
        expected["tf_scale"] = ("tensorflow_savedmodel", "tensorflow")
    assert {n: (p.original, p.runtime) for n, p in previews.items()} == expected
    assert previews["trt_mlp"].artifacts == {1: (model_repository / "trt_mlp" / "1" / "model.onnx").resolve()}
    assert "instance_group[0].kind KIND_GPU -> KIND_CPU (no GPU on this host)" in previews["onnx_mlp"].changes
    # the user's repository is untouched
    assert not (model_repository / "onnx_mlp" / "1" / "model.py").exists()
    assert (model_repository / "onnx_mlp" / "config.pbtxt").read_text().startswith('name: "onnx_mlp"\nplatform:')

    client = httpclient.InferenceServerClient(embedded_server.http_url, network_timeout=10)
    try:
        config = client.get_model_config("onnx_mlp")
        assert client.is_server_ready()
    finally:
        client.close()
    assert config["backend"] == "python" and config["platform"] == ""
    assert config["max_batch_size"] == 16
    assert "dynamic_batching" in config
    assert [(g["kind"], g["count"]) for g in config["instance_group"]] == [("KIND_CPU", 2)]
    assert config["input"][0]["name"] == "features" and config["input"][0]["dims"] == [16]


def test_preview_batches_all_requests_of_an_execute_call(embedded_server: EmbeddedServer) -> None:
    """Concurrent requests of different batch sizes come back each with its own rows."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import onnxruntime as ort
    import tritonclient.grpc as grpcclient

    onnx = embedded_server.repository / "onnx_mlp" / "1" / "model.onnx"
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(5)
    batches = [rng.normal(size=(n, 16)).astype(np.float32) for n in (1, 3, 2, 5, 1, 4) * 4]

    def infer(x: np.ndarray) -> np.ndarray:
        client = grpcclient.InferenceServerClient(embedded_server.grpc_url)
        try:
            item = grpcclient.InferInput("features", list(x.shape), "FP32")
            item.set_data_from_numpy(x)
            return np.asarray(client.infer("onnx_mlp", [item], client_timeout=10).as_numpy("probs"))
        finally:
            client.close()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(infer, batches))
    for x, got in zip(batches, results, strict=True):
        np.testing.assert_allclose(got, session.run(["probs"], {"features": x})[0], atol=1e-6)


def test_stop_leaves_no_process_and_no_shared_memory(tmp_path: Path) -> None:
    server = EmbeddedServer(py_add_repository(tmp_path / "repo"), http_port=None)
    with server:
        assert server.process is not None
        pid = server.process.pid
        workdir = server.served.path.parent if server.served else None
        assert shm_regions(server.shm_prefix), "the python backend should have created its regions"
    assert server.process is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # no stub left in the server's process group
    assert shm_regions(server.shm_prefix) == []
    assert workdir is not None and not workdir.exists()


def test_startup_failure_names_the_model_and_keeps_the_log(tmp_path: Path) -> None:
    """A model whose model.py raises: the message names it with Triton's reason and where it raised (in
    the user's repository, not the served copy), and the log it names still exists."""
    broken = "class TritonPythonModel:\n    def initialize(self, args):\n        raise RuntimeError('boom in init')\n"
    repo = py_add_repository(tmp_path / "repo", broken)
    server = EmbeddedServer(repo, startup_timeout=120)
    with pytest.raises(DeploymentError) as info:
        server.start()
    lines = info.value.message.splitlines()
    assert lines[0] == "tritonserver exited with code 1 while starting: 1 model(s) failed to load"
    assert lines[1] == (
        f"  py_add version 1: Internal: RuntimeError: boom in init (at {repo}/py_add/1/model.py(3): initialize)"
    )
    assert lines[2] == "Triton: error: creating server: Internal - failed to load all models"
    assert lines[3].startswith("The server's log is kept: ")
    kept = Path(lines[3].removeprefix("The server's log is kept: "))
    try:
        assert "boom in init" in kept.read_text()
    finally:
        kept.unlink()
    assert server.process is None and shm_regions(server.shm_prefix) == []


def test_serve_names_the_model_whose_config_triton_refuses(tmp_path: Path) -> None:
    """`repo-builder serve` on a repository with one model Triton refuses (a dim of -7) beside a good one:
    exit 1 naming that model and Triton's words, not the options table; the --log-file is kept."""
    repo = py_add_repository(tmp_path / "repo")
    (repo / "bad" / "1").mkdir(parents=True)
    (repo / "bad" / "1" / "model.py").write_text(PY_ADD_MODEL)
    config = textwrap.dedent(CONFIGS["py_add"]).replace('"py_add"', '"bad"')
    (repo / "bad" / "config.pbtxt").write_text(config.replace("dims: [ 4 ] } ]\noutput", "dims: [ -7 ] } ]\noutput"))
    assert "-7" in (repo / "bad" / "config.pbtxt").read_text()
    log = tmp_path / "triton.log"
    done = subprocess.run(
        [sys.executable, "-m", "repo_builder", "serve", str(repo), "--log-file", str(log)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    err = " ".join(done.stderr.split())
    assert (
        "error: tritonserver exited with code 1 while starting: 1 model(s) failed to load bad: model input 'x' "
        "dimension must be integer >= 1, or -1 to indicate a variable-size dimension for bad"
    ) in err, done.stderr
    assert f"The server's log is kept: {log}" in err
    assert "Option" not in done.stderr and "Traceback" not in done.stderr
    assert "Poll failed for model directory 'bad'" in log.read_text()


def test_serves_on_an_explicit_address(tmp_path: Path) -> None:
    """`EmbeddedServer(address=...)`: HTTP, gRPC and metrics listen there (here every interface);
    clients on this host connect through the loopback."""
    with EmbeddedServer(py_add_repository(tmp_path / "repo"), address="0.0.0.0", startup_timeout=120) as server:
        assert server.http_url == f"127.0.0.1:{server.http_port}"
        with urllib.request.urlopen(f"http://{server.http_url}/v2/health/ready", timeout=5) as response:
            assert response.status == 200
        log = server.log_path.read_text(errors="replace")
        for protocol in ("http", "grpc", "metrics"):
            assert f"--{protocol}-address=0.0.0.0" in log.splitlines()[0]
        assert f"0.0.0.0:{server.http_port}" in log  # "Started HTTPService at 0.0.0.0:PORT"


def test_serve_command_takes_an_address(tmp_path: Path) -> None:
    """`repo-builder serve REPO --address 127.0.0.1`: the option reaches the server's arguments."""
    repo = py_add_repository(tmp_path / "repo")
    log = tmp_path / "server.log"
    http, grpc, metrics = free_ports(3)
    command = [sys.executable, "-m", "repo_builder", "serve", str(repo), "--address", "127.0.0.1"]
    command += ["--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics)]
    proc = _start_serving([*command, "--log-file", str(log)])
    try:
        lines = _lines_until_serving(proc)
        said = " ".join("".join(lines).split())  # the stderr console wraps long lines
        assert f"HTTP http://127.0.0.1:{http}" in said, said
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/health/ready", timeout=5) as response:
            assert response.status == 200
        assert f"--http-address=127.0.0.1 --http-port={http}" in log.read_text(errors="replace")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_preview_of_a_plan_needs_its_onnx(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "trt_mlp" / "1").mkdir(parents=True)
    (repo / "trt_mlp" / "config.pbtxt").write_text(textwrap.dedent(CONFIGS["trt_mlp"]))
    with pytest.raises(DeploymentError) as info:
        prepare_repository(repo, tmp_path / "served")
    onnx = repo.resolve() / "trt_mlp" / "1" / "model.onnx"
    assert info.value.message == (
        "cannot preview these models on the embedded server:\n"
        f"  trt_mlp version 1: the ONNX the plan is built from is missing: {onnx}\n"
        "Rebuild the repository (repo-builder build) so every artifact exists."
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["ctrl-c", "sigterm", "sighup"])
def test_serve_command_stops_cleanly_on_signal(tmp_path: Path, sig: signal.Signals) -> None:
    repo = py_add_repository(tmp_path / "repo")
    code = (
        "import sys\nfrom pathlib import Path\nfrom repo_builder.cli.serve import serve_command\n"
        f"sys.exit(serve_command(Path({str(repo)!r})))\n"
    )
    proc = _start_serving([sys.executable, "-c", code])
    try:
        lines = _lines_until_serving(proc)
        assert any("Press Ctrl-C" in line for line in lines), "".join(lines)
        children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(p) == proc.pid]
        assert len(children) == 1  # tritonserver
        assert shm_regions(f"triton_python_backend_shm_region_rb{proc.pid}_")
        proc.send_signal(sig)
        assert proc.wait(60) == 0
        rest = proc.stderr.read()
        assert "stopping tritonserver" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with pytest.raises(ProcessLookupError):
        os.killpg(children[0], 0)
    assert shm_regions(f"triton_python_backend_shm_region_rb{proc.pid}_") == []


def _start_serving(command: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=Path(__file__).resolve().parents[3]
    )


def _lines_until_serving(proc: subprocess.Popen[str], timeout: float = 120) -> list[str]:
    """What `serve` wrote on stderr up to "Press Ctrl-C to stop" (or its exit, or the timeout)."""
    assert proc.stderr is not None
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        lines.append(line)
        if "Press Ctrl-C to stop" in line or not line:
            break
    return lines


def _ppid(proc_dir: Path) -> int:
    try:
        stat = (proc_dir / "stat").read_text()
    except OSError:
        return -1
    return int(stat.rsplit(")", 1)[1].split()[1])
