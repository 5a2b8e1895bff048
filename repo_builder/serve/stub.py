"""The python backend stub's environment: the embedded server runs its stubs with this interpreter's packages
(the first python on PATH; serve/embedded.py puts this environment's bin/ there)."""

from __future__ import annotations

import sys
from importlib import metadata

from repo_builder.errors import DeploymentError


def check_numpy(version: str | None = None) -> None:
    """Refuse numpy >= 2 in the stub's environment: the python backend of tritonserver 2.51 (nvidia-pytriton
    0.7.0) then answers every request with an empty output ("output tensor shape does not match size of
    output"), measured on a CPU host and on an H200 host alike."""
    if version is None:
        try:
            version = metadata.version("numpy")
        except metadata.PackageNotFoundError:
            return  # the stub itself reports a missing numpy when a model imports it
    major = version.split(".", 1)[0]
    if major.isdigit() and int(major) >= 2:
        raise DeploymentError(
            f"numpy {version} is installed in {sys.prefix}, the environment the embedded tritonserver's python "
            "backend runs its models with; that backend (Triton 2.51) answers every request with an empty output "
            "under numpy 2 ('output tensor shape does not match size of output'). Install numpy 1 there: "
            f"{sys.executable} -m pip install 'numpy<2'"
        )
