"""`repo-builder compose`, `up`, `down` and `logs`: the deployment files, and thin wrappers over `docker compose`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from repo_builder.deploy.compose import (
    ADMIN_APIS,
    COMPOSE_FILE,
    ENV_FILE,
    engine_recipes,
    env_defines,
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
    written = write_compose(spec, output, force=force, notes=notes)
    for path in written:
        out.print(shown_path(path), markup=False)
    for note in notes:
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"note: {note}", markup=False)
    folder = next(p for p in written if p.name == COMPOSE_FILE).parent
    _warn_without_key(spec.triton.restricted_api_key_env, folder / ENV_FILE)
    return 0


def _warn_without_key(env: str, env_file: Path) -> None:
    """A .env that repo-builder did not write (it never replaces one) may lack the key: say so on stderr."""
    import sys

    if not os.environ.get(env) and not env_defines(env_file, env):
        print(
            f"warning: {shown_path(env_file)} does not set {env}, the key of Triton's admin APIs; docker compose "
            f"refuses to start without it. Add a line `{env}=<key>` (e.g. from `openssl rand -hex 16`) to it.",
            file=sys.stderr,
        )


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
    if read_manifest(repo) is None:
        raise DeploymentError(
            f"{repo} is not a repository written by repo-builder; run `repo-builder build {spec_path}` first"
        )
    missing = [r.script for r in engine_recipes(spec, repo) if not (repo / r.script).is_file()]
    if missing:
        raise DeploymentError(
            "these TensorRT / TF-TRT recipes are missing from the repository: "
            + ", ".join(missing)
            + f"; run `repo-builder build {spec_path}` first"
        )
    written = write_compose(spec, output, force=force)
    compose_file = next(p for p in written if p.name == COMPOSE_FILE)
    env = spec.triton.restricted_api_key_env
    env_file = compose_file.parent / ENV_FILE
    if not os.environ.get(env) and not env_defines(env_file, env):
        raise DeploymentError(
            f"{env} is not set, neither in the environment nor in {shown_path(env_file)}: it holds the key of "
            f"Triton's admin APIs ({', '.join(ADMIN_APIS)}). Add a line `{env}=<key>` to {shown_path(env_file)} "
            f"(e.g. from `openssl rand -hex 16`), or export it, and run again."
        )
    result = subprocess.run([*status.compose, "-f", str(compose_file), "up", "--detach", "--wait", "--build"])
    if result.returncode != 0:
        raise DeploymentError(
            f"`docker compose up --wait` failed (exit {result.returncode}); see "
            f"`repo-builder logs {spec_path}` (`docker compose -f {shown_path(compose_file)} logs`)"
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


def _compose_file(spec_path: str | Path, output: str | Path | None) -> tuple[list[str], Path]:
    """`docker compose` and the spec's compose file, for the commands that act on a deployment."""
    spec = load_spec(spec_path)
    repo = normal_path(spec.repository_path(output))
    compose_file = repo.parent / COMPOSE_FILE
    if not compose_file.is_file():
        raise DeploymentError(
            f"{shown_path(compose_file)} does not exist: write it with `repo-builder compose {spec_path}` "
            "(or `repo-builder build`)"
        )
    status = docker_status()
    if status.compose is None:
        raise DeploymentError(
            f"cannot reach the deployment: {status.problem}. Without Docker, run the compose commands where "
            f"the deployment runs: `docker compose -f {shown_path(compose_file)} ...`"
        )
    return status.compose, compose_file


def down_command(spec_path: str | Path, output: str | Path | None = None) -> int:
    """`repo-builder down SPEC`: `docker compose down` (stops and removes the deployment's containers; the
    repository and the .env stay)."""
    compose, compose_file = _compose_file(spec_path, output)
    result = subprocess.run([*compose, "-f", str(compose_file), "down"])
    if result.returncode != 0:
        raise DeploymentError(f"`docker compose down` failed (exit {result.returncode})")
    return 0


def logs_command(
    spec_path: str | Path,
    output: str | Path | None = None,
    *,
    services: list[str] | None = None,
    follow: bool = False,
    tail: str | None = None,
) -> int:
    """`repo-builder logs SPEC [SERVICE...] [--follow] [--tail N]`: `docker compose logs`; its exit status."""
    compose, compose_file = _compose_file(spec_path, output)
    args = [*compose, "-f", str(compose_file), "logs"]
    if follow:
        args.append("--follow")
    if tail is not None:
        args += ["--tail", tail]
    return subprocess.run([*args, *(services or [])]).returncode
