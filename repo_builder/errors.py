"""Every exception a user can see. Each message says what went wrong, where, and what to do next."""

from __future__ import annotations


class RepoBuilderError(Exception):
    """Base of all user-facing errors; the CLI prints `message` and exits 1."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class SpecError(RepoBuilderError):
    """The spec file is missing, unreadable or invalid; the message lists every problem, located."""


class MissingDependencyError(RepoBuilderError):
    """An optional heavy dependency (TensorFlow, tf2onnx, TensorRT, ...) is not installed or not usable."""


class ConversionError(RepoBuilderError):
    """A model could not be loaded, converted or verified."""


class OutputError(RepoBuilderError):
    """The repository or the deployment files cannot be written: a full or read-only disk, no permission,
    another repo-builder writing the same repository. The message names the path."""


class DeploymentError(RepoBuilderError):
    """A server could not be started, reached or validated."""


class GeneratorBug(RepoBuilderError):
    """The generator produced something Triton would reject; this is a bug in repo-builder."""

    def __init__(self, message: str) -> None:
        super().__init__(f"{message}\nThis is a bug in repo-builder: please report it with the spec that caused it.")
