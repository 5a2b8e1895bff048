"""The embedded server's served repository, without starting the server: what a CPU preview carries over.
(That previews really load and answer is tested with the real tritonserver in tests/integration.)"""

from __future__ import annotations

from pathlib import Path

from repo_builder.serve.preview import prepare_repository

CONFIG = """
name: "mlp"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 2 ] label_filename: "labels.txt" } ]
model_warmup [ { name: "w" batch_size: 1 inputs { key: "x" value { data_type: TYPE_FP32 dims: [ 4 ]
  input_data_file: "x.bin" } } } ]
"""


def test_preview_keeps_the_files_its_config_names(tmp_path: Path) -> None:
    """Label files and warmup/ data sit next to config.pbtxt; the previewed model must see them too
    (Triton refuses to load a model whose label file is missing)."""
    model = tmp_path / "repo" / "mlp"
    (model / "1").mkdir(parents=True)
    (model / "1" / "model.onnx").write_bytes(b"onnx")
    (model / "config.pbtxt").write_text(CONFIG)
    (model / "labels.txt").write_text("a\nb\n")
    (model / "warmup").mkdir()
    (model / "warmup" / "x.bin").write_bytes(bytes(16))
    served = prepare_repository(tmp_path / "repo", tmp_path / "served")
    assert [p.name for p in served.previews] == ["mlp"]
    out = tmp_path / "served" / "mlp"
    assert (out / "labels.txt").read_text() == "a\nb\n"
    assert (out / "warmup" / "x.bin").read_bytes() == bytes(16)
    assert 'label_filename: "labels.txt"' in (out / "config.pbtxt").read_text()
    assert sorted(p.name for p in (out / "1").iterdir()) == ["model.onnx", "model.py", "preview.json"]
    assert (model / "config.pbtxt").read_text() == CONFIG  # the user's repository is untouched


def test_preferred_ports_when_free_else_free_ones(tmp_path: Path) -> None:
    """`serve` asks for Triton's 8000-8002: taken when all are free, else other free ports (no failure)."""
    import socket

    from repo_builder.serve.embedded import EmbeddedServer, free_ports

    a, b, c = free_ports(3)
    wanted = (a, b, c)
    server = EmbeddedServer(tmp_path, prefer_ports=wanted)
    server._pick_ports()
    assert (server.http_port, server.grpc_port, server.metrics_port) == wanted
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", wanted[1]))
        busy.listen()
        server = EmbeddedServer(tmp_path, prefer_ports=wanted)
        server._pick_ports()
        assert wanted[1] not in (server.http_port, server.grpc_port, server.metrics_port)
    explicit = EmbeddedServer(tmp_path, http_port=wanted[0], prefer_ports=(1, 2, 3))
    explicit._pick_ports()
    assert explicit.http_port == wanted[0] and explicit.grpc_port != 2  # explicit ports win over preferred


PYTHON_GPU = """
name: "py"
backend: "python"
max_batch_size: 8
input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 4 ] } ]
instance_group [ { kind: KIND_GPU count: 2 gpus: [ 0 ] }, { kind: KIND_CPU count: 1 } ]
"""


def _python_model(repo: Path) -> Path:
    model = repo / "py"
    (model / "1").mkdir(parents=True)
    (model / "1" / "model.py").write_text("class TritonPythonModel: pass\n")
    (model / "config.pbtxt").write_text(PYTHON_GPU)
    return model


def test_python_model_on_a_host_without_gpus_is_served_on_the_cpu(tmp_path: Path) -> None:
    """Triton refuses to start with a KIND_GPU group and no GPU: on a CPU host the group runs on the CPU,
    marked so that a validator in another process knows; the user's files stay untouched."""
    from repo_builder.triton.preview import CPU_HOST_MARKER, parse_config, served_by_us

    model = _python_model(tmp_path / "repo")
    served = prepare_repository(tmp_path / "repo", tmp_path / "served", gpu_host=False)
    config = parse_config((tmp_path / "served" / "py" / "config.pbtxt").read_text(), "served")
    assert [(g.kind, list(g.gpus)) for g in config.instance_group] == [(2, []), (2, [])]  # KIND_CPU
    assert CPU_HOST_MARKER in config.parameters
    assert set(served.configs()) == {"py"}
    original = parse_config(PYTHON_GPU, "repo")
    assert served_by_us(original, config) == config  # what another process's validator expects
    assert (model / "config.pbtxt").read_text() == PYTHON_GPU


def test_python_model_on_a_gpu_host_stays_on_the_gpu(tmp_path: Path) -> None:
    _python_model(tmp_path / "repo")
    served = prepare_repository(tmp_path / "repo", tmp_path / "served", gpu_host=True)
    assert served.configs() == {}
    assert (tmp_path / "served" / "py" / "config.pbtxt").read_text() == PYTHON_GPU


def test_previews_keep_gpu_groups_on_a_gpu_host(tmp_path: Path) -> None:
    from repo_builder.triton.preview import CPU_HOST_MARKER, parse_config, preview_config

    config = parse_config(CONFIG + "instance_group [ { kind: KIND_GPU count: 1 } ]", "c")
    on_gpu, changes = preview_config(config, gpu_host=True)
    assert on_gpu.instance_group[0].kind == 1 and CPU_HOST_MARKER not in on_gpu.parameters  # KIND_GPU
    assert not any("KIND_CPU" in c for c in changes)
    on_cpu, changes = preview_config(config, gpu_host=False)
    assert on_cpu.instance_group[0].kind == 2 and CPU_HOST_MARKER in on_cpu.parameters
    assert "instance_group[0].kind KIND_GPU -> KIND_CPU (no GPU on this host)" in changes


def test_what_the_server_writes_stays_out_of_the_users_repository(tmp_path: Path) -> None:
    """The python backend's stub writes __pycache__ next to model.py: in the served copy, not the repository."""
    model = _python_model(tmp_path / "repo")
    prepare_repository(tmp_path / "repo", tmp_path / "served", gpu_host=True)
    version = tmp_path / "served" / "py" / "1"
    assert version.is_dir() and not version.is_symlink()
    (version / "__pycache__").mkdir()
    assert sorted(p.name for p in (model / "1").iterdir()) == ["model.py"]
