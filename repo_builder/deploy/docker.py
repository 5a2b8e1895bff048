"""Is a Docker engine with compose reachable here."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class DockerStatus:
    """Whether `docker compose` can run here, and why not."""

    compose: list[str] | None
    problem: str | None


def docker_status() -> DockerStatus:
    """`docker compose` (v2) with a reachable engine; `--wait` needs compose v2."""
    docker = shutil.which("docker")
    if docker is None:
        return DockerStatus(None, "the docker command is not installed")
    try:
        v2 = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=30)
        if v2.returncode != 0:
            return DockerStatus(None, "`docker compose` (Compose v2, which has `up --wait`) is not installed")
        info = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return DockerStatus(None, f"docker does not answer: {e}")
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["no Docker engine"])[-1]
        return DockerStatus(None, f"no Docker engine is reachable ({reason})")
    return DockerStatus([docker, "compose"], None)
