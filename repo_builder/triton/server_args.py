"""The one tritonserver argument builder: a small typed config -> argv (pytriton's TritonServerConfig).

Both the docker-compose deployment (deploy/compose.py) and the embedded server (serve/embedded.py)
describe their server with a `ServerArgs` and take `to_args_list()`, so every flag is spelled here:

    ServerArgs(model_repository="/models", http_port=8000).to_args_list()
    -> ["tritonserver", "--model-repository=/models", "--disable-auto-complete-config",
        "--model-control-mode=none", "--http-port=8000"]

A field left None is not passed (tritonserver's own default applies). The order of the flags is fixed
(the rendered docker-compose.yml files are compared byte for byte).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

ModelControlMode = Literal["none", "explicit", "poll"]


@dataclass(frozen=True)
class RestrictedApis:
    """APIs reachable only with a request header `header: key` (Triton: "Limit endpoint access")."""

    apis: tuple[str, ...]
    header: str
    #: the key, or a placeholder filled in later (compose's `${VAR:?...}`)
    key: str


@dataclass(frozen=True)
class ServerArgs:
    """What tritonserver is told on its command line."""

    model_repository: str
    binary: str = "tritonserver"
    backend_directory: str | None = None
    cache_directory: str | None = None
    #: the repository's configs are used as written: the server never completes them itself
    disable_auto_complete_config: bool = True
    strict_readiness: bool | None = None
    exit_on_error: bool | None = None
    model_control_mode: ModelControlMode = "none"
    #: models loaded at start-up in explicit mode; empty: every model (`*`)
    load_models: Sequence[str] = ()
    #: the address of HTTP, gRPC and metrics; None: tritonserver's default (every interface)
    address: str | None = None
    http_port: int | None = None
    grpc_port: int | None = None
    metrics_port: int | None = None
    allow_gpu_metrics: bool | None = None
    restricted: RestrictedApis | None = None
    #: size of the local response cache in bytes; None: no cache
    cache_size_bytes: int | None = None
    #: `backend,setting=value` items
    backend_configs: Sequence[str] = ()
    exit_timeout_secs: int | None = None
    log_verbose: int | None = None
    extra_args: Sequence[str] = field(default_factory=tuple)

    def to_args_list(self) -> list[str]:
        """The argv, binary first."""
        args = [self.binary, f"--model-repository={self.model_repository}"]
        if self.backend_directory is not None:
            args.append(f"--backend-directory={self.backend_directory}")
        if self.cache_directory is not None:
            args.append(f"--cache-directory={self.cache_directory}")
        if self.disable_auto_complete_config:
            args.append("--disable-auto-complete-config")
        if self.strict_readiness is not None:
            args.append(f"--strict-readiness={_bool(self.strict_readiness)}")
        if self.exit_on_error is not None:
            args.append(f"--exit-on-error={_bool(self.exit_on_error)}")
        args.append(f"--model-control-mode={self.model_control_mode}")
        if self.model_control_mode == "explicit":
            args += [f"--load-model={m}" for m in (self.load_models or ["*"])]
        for protocol, port in (("http", self.http_port), ("grpc", self.grpc_port), ("metrics", self.metrics_port)):
            if self.address is not None:
                args.append(f"--{protocol}-address={self.address}")
            if port is not None:
                args.append(f"--{protocol}-port={port}")
        if self.allow_gpu_metrics is not None:
            args.append(f"--allow-gpu-metrics={_bool(self.allow_gpu_metrics)}")
        if self.restricted is not None:
            r = self.restricted
            value = f"{','.join(r.apis)}:{r.header}={r.key}"
            args += [f"--http-restricted-api={value}", f"--grpc-restricted-protocol={value}"]
        if self.cache_size_bytes is not None:
            args.append(f"--cache-config=local,size={self.cache_size_bytes}")
        args += [f"--backend-config={c}" for c in self.backend_configs]
        if self.exit_timeout_secs is not None:
            args.append(f"--exit-timeout-secs={self.exit_timeout_secs}")
        if self.log_verbose is not None:
            args.append(f"--log-verbose={self.log_verbose}")
        return args + list(self.extra_args)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def connect_host(address: str) -> str:
    """Where a client reaches a server bound to `address` (an IP): the loopback for 0.0.0.0 or ::,
    IPv6 in brackets (for host:port)."""
    ip = ipaddress.ip_address(address)
    if ip.is_unspecified:
        return "127.0.0.1" if ip.version == 4 else "[::1]"
    return f"[{ip}]" if ip.version == 6 else str(ip)
