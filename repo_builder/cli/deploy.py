"""`repo-builder compose` and `repo-builder up`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from repo_builder.deploy.compose import (
    ADMIN_APIS,
    COMPOSE_FILE,
    engine_recipes,
    normal_path,
    shown_path,
    write_compose,
)
from repo_builder.deploy.docker import docker_status
from repo_builder.errors import DeploymentError
from repo_builder.repository.manifest import read_manifest
from repo_builder.spec.load import load_spec
from repo_builder.triton.server_args import connect_host

if TYPE_CHECKING:
    from rich.console import Console


def compose_command(
    spec_path: str | Path,
    output: str | Path | None = None,
    *,
    force: bool = False,
    console_out: Console | None = None,
) -> int:
    """`repo-builder compose SPEC [-o REPO] [--force]`: rewrite only the deployment files.

    The written paths are the command's result: on `console_out` (default: stdout), one a line.
    """
    from rich.console import Console

    out = console_out if console_out is not None else Console(highlight=False, soft_wrap=True)
    spec = load_spec(spec_path)
    notes: list[str] = []
    for path in write_compose(spec, output, force=force, notes=notes):
        out.print(shown_path(path), markup=False)
    for note in notes:
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"note: {note}", markup=False)
    return 0


def up_command(
    spec_path: str | Path,
    output: str | Path | None = None,
    *,
    force: bool = False,
    validate: bool = True,
    timeout: float = 10.0,
) -> int:
    """`repo-builder up SPEC`: write the deployment, `docker compose up --wait --build`, then validate.

    Without a Docker engine (or without Compose v2) raises DeploymentError saying so and pointing to
    `repo-builder serve`, which runs the repository on the embedded CPU server.
    """
    spec = load_spec(spec_path)
    repo = normal_path(spec.repository_path(output))
    status = docker_status()
    if status.compose is None:
        raise DeploymentError(
            f"cannot start the deployment: {status.problem}.\n"
            f"`repo-builder up` needs Docker with Compose v2 and the NVIDIA Container Toolkit. Without them, "
            f"`repo-builder serve {shown_path(repo)}` serves the repository on this machine's CPU."
        )
    env = spec.triton.restricted_api_key_env
    if not os.environ.get(env):
        raise DeploymentError(
            f"{env} is not set: it holds the key of Triton's admin APIs ({', '.join(ADMIN_APIS)}). "
            f"Set it, e.g. `export {env}=$(openssl rand -hex 16)`, and run again."
        )
    if read_manifest(repo) is None:
        raise DeploymentError(
            f"{repo} is not a repository written by repo-builder; run `repo-builder build {spec_path}` first"
        )
    missing = [r.script for r in engine_recipes(spec, repo) if not (repo / r.script).is_file()]
    if missing:
        raise DeploymentError(
            "these TensorRT recipes are missing from the repository: "
            + ", ".join(missing)
            + f"; run `repo-builder build {spec_path}` first"
        )
    written = write_compose(spec, output, force=force)
    compose_file = next(p for p in written if p.name == COMPOSE_FILE)
    result = subprocess.run([*status.compose, "-f", str(compose_file), "up", "--detach", "--wait", "--build"])
    if result.returncode != 0:
        raise DeploymentError(
            f"`docker compose up --wait` failed (exit {result.returncode}); see "
            f"`docker compose -f {shown_path(compose_file)} logs triton`"
        )
    if not validate:
        return 0
    from repo_builder.cli.validate import run_validation

    host = connect_host(spec.triton.bind_address)
    return run_validation(
        repo,
        [("http", f"{host}:{spec.triton.http_port}"), ("grpc", f"{host}:{spec.triton.grpc_port}")],
        timeout=timeout,
    )
