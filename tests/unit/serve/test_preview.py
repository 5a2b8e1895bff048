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
