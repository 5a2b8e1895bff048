"""triton/server_args.py: the one tritonserver argument builder, as compose and the embedded server use it."""

from __future__ import annotations

from pathlib import Path

import pytest

from repo_builder.errors import DeploymentError
from repo_builder.serve.embedded import EmbeddedServer
from repo_builder.triton.server_args import RestrictedApis, ServerArgs, connect_host


def test_defaults_pass_only_what_is_set() -> None:
    assert ServerArgs(model_repository="/models").to_args_list() == [
        "tritonserver",
        "--model-repository=/models",
        "--disable-auto-complete-config",
        "--model-control-mode=none",
    ]


def test_every_flag_in_its_place() -> None:
    args = ServerArgs(
        model_repository="/models",
        binary="/opt/tritonserver",
        backend_directory="/b",
        cache_directory="/c",
        strict_readiness=True,
        exit_on_error=False,
        model_control_mode="explicit",
        load_models=("a", "b"),
        address="0.0.0.0",
        http_port=1,
        grpc_port=2,
        metrics_port=3,
        allow_gpu_metrics=False,
        restricted=RestrictedApis(("model-repository", "logging"), "admin-key", "secret"),
        cache_size_bytes=1024,
        backend_configs=("python,shm-region-prefix-name=x_",),
        exit_timeout_secs=5,
        log_verbose=1,
        extra_args=("--log-info=true",),
    )
    assert args.to_args_list() == [
        "/opt/tritonserver",
        "--model-repository=/models",
        "--backend-directory=/b",
        "--cache-directory=/c",
        "--disable-auto-complete-config",
        "--strict-readiness=true",
        "--exit-on-error=false",
        "--model-control-mode=explicit",
        "--load-model=a",
        "--load-model=b",
        "--http-address=0.0.0.0",
        "--http-port=1",
        "--grpc-address=0.0.0.0",
        "--grpc-port=2",
        "--metrics-address=0.0.0.0",
        "--metrics-port=3",
        "--allow-gpu-metrics=false",
        "--http-restricted-api=model-repository,logging:admin-key=secret",
        "--grpc-restricted-protocol=model-repository,logging:admin-key=secret",
        "--cache-config=local,size=1024",
        "--backend-config=python,shm-region-prefix-name=x_",
        "--exit-timeout-secs=5",
        "--log-verbose=1",
        "--log-info=true",
    ]


def test_explicit_mode_loads_every_model_by_default() -> None:
    args = ServerArgs(model_repository="/m", model_control_mode="explicit").to_args_list()
    assert args[-2:] == ["--model-control-mode=explicit", "--load-model=*"]


@pytest.mark.parametrize(
    ("address", "host"),
    [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("::", "[::1]"), ("::1", "[::1]"), ("10.1.2.3", "10.1.2.3")],
)
def test_connect_host(address: str, host: str) -> None:
    assert connect_host(address) == host


def test_embedded_server_listens_where_asked(tmp_path: Path) -> None:
    """The embedded server's argv comes from the same builder: HTTP, gRPC and metrics on its address."""
    default = EmbeddedServer(tmp_path).command(Path("/bin/tritonserver"), tmp_path / "b", tmp_path)
    assert [a for a in default if "-address=" in a] == [
        "--http-address=127.0.0.1",
        "--grpc-address=127.0.0.1",
        "--metrics-address=127.0.0.1",
    ]
    server = EmbeddedServer(tmp_path, address="0.0.0.0")
    server.http_port, server.grpc_port, server.metrics_port = 1, 2, 3
    command = server.command(Path("/bin/tritonserver"), tmp_path / "b", tmp_path)
    assert command[0] == "/bin/tritonserver"
    assert "--http-address=0.0.0.0" in command and "--metrics-address=0.0.0.0" in command
    assert "--disable-auto-complete-config" in command
    assert server.http_url == "127.0.0.1:1" and server.metrics_url == "http://127.0.0.1:3/metrics"


def test_embedded_server_refuses_a_name_for_an_address(tmp_path: Path) -> None:
    with pytest.raises(DeploymentError, match="'localhost' is not an IP address"):
        EmbeddedServer(tmp_path, address="localhost")
