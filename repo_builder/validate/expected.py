"""What a repository says the server must serve: configs, versions, manifest entries, references."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from repo_builder.errors import DeploymentError
from repo_builder.repository.layout import CONFIG_NAME
from repo_builder.repository.layout import manifest_path as repository_manifest
from repo_builder.repository.manifest import Manifest, ManifestEntry, parse_manifest

if TYPE_CHECKING:
    import numpy as np
    from tritonclient.grpc.model_config_pb2 import ModelConfig

DEFAULT_TOLERANCE = {"atol": 1e-5, "rtol": 1e-4}


@dataclass
class ExpectedModel:
    name: str
    config: ModelConfig | None  # None: named by the manifest but no config.pbtxt in the repository
    config_path: Path | None
    versions: list[int]
    manifest: ManifestEntry = field(default_factory=ManifestEntry)
    config_error: str | None = None

    @property
    def max_batch_size(self) -> int:
        return int(self.config.max_batch_size) if self.config is not None else int(self.manifest.max_batch_size or 0)

    @property
    def is_ensemble(self) -> bool:
        return self.config is not None and self.config.platform == "ensemble"

    @property
    def dynamic_batching(self) -> bool:
        return self.config is not None and self.config.HasField("dynamic_batching") and self.max_batch_size > 1

    @property
    def tolerance(self) -> dict[str, float]:
        tol = dict(DEFAULT_TOLERANCE)
        tol.update({k: float(v) for k, v in (self.manifest.tolerance or {}).items() if v is not None})
        return tol

    @property
    def thresholds(self) -> dict[str, float]:
        validation = self.manifest.validation or {}
        return {k: float(v) for k, v in validation.items() if k in ("p99_latency_ms", "min_throughput") and v}


@dataclass
class ExpectedRepository:
    path: Path
    models: dict[str, ExpectedModel]
    manifest: Manifest | None
    manifest_error: str | None = None

    def reference(self, model: ExpectedModel) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
        """(inputs, outputs) of the model's reference file, None when it has none."""
        import numpy as np

        rel = model.manifest.reference
        if not rel:
            return None
        path = self.path / rel  # manifest paths are relative to the repository root
        if not path.exists():
            raise DeploymentError(f"{model.name}: reference file {path} named by the manifest does not exist")
        try:
            with np.load(path, allow_pickle=False) as data:
                # STRING tensors are stored as fixed-width bytes; a client sends and receives them as objects
                arrays = {k: data[k].astype(object) if data[k].dtype.kind == "S" else data[k] for k in data.files}
        except (OSError, ValueError) as e:  # not an npz, or pickled arrays (written before strings were bytes)
            raise DeploymentError(
                f"{model.name}: cannot read reference file {path} ({e}); "
                "rebuild the model with `build --force` to rewrite it"
            ) from e
        inputs = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("input/")}
        outputs = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("output/")}
        return inputs, outputs


def _served_versions(available: list[int], config: ModelConfig | None) -> list[int]:
    """The versions Triton serves of those available, by the config's version_policy (default: latest 1)."""
    available = sorted(available)
    if config is None or not available:
        return available
    policy = config.version_policy
    which = policy.WhichOneof("policy_choice")
    if which == "all":
        return available
    if which == "specific":
        return sorted(v for v in policy.specific.versions if v in available)
    latest = policy.latest.num_versions if which == "latest" else 1
    return available[-max(1, latest) :]


def read_repository(repo: Path) -> ExpectedRepository:
    """Read configs and the manifest; problems in single files are kept on the model, not raised."""
    from google.protobuf import text_format
    from tritonclient.grpc.model_config_pb2 import ModelConfig

    repo = Path(repo)
    if not repo.is_dir():
        raise DeploymentError(f"model repository {repo} does not exist or is not a folder")
    manifest: Manifest | None = None
    manifest_error = None
    manifest_path = repository_manifest(repo)
    if manifest_path.exists():
        try:
            manifest = parse_manifest(json.loads(manifest_path.read_text()))
        except (OSError, ValueError) as e:  # json.JSONDecodeError is a ValueError
            manifest_error = f"{manifest_path}: unreadable manifest: {e}"
    entries: dict[str, ManifestEntry] = dict((manifest.models if manifest is not None else None) or {})

    models: dict[str, ExpectedModel] = {}
    for model_dir in sorted(p for p in repo.iterdir() if p.is_dir() and not p.name.startswith(".")):
        config_path = model_dir / CONFIG_NAME
        if not config_path.exists():
            continue
        config: ModelConfig | None = None
        error = None
        try:
            config = text_format.Parse(config_path.read_text(), ModelConfig())
        except text_format.ParseError as e:
            error = f"{config_path}: {e}"
        entry = entries.get(model_dir.name) or ManifestEntry()
        built = (
            list(entry.versions)
            if entry.versions
            else [int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()]
        )
        versions = _served_versions(built, config)
        models[model_dir.name] = ExpectedModel(model_dir.name, config, config_path, versions, entry, error)
    for name, entry in entries.items():
        if name not in models:
            versions = list(entry.versions or [])
            models[name] = ExpectedModel(name, None, None, versions, entry)
    return ExpectedRepository(repo, models, manifest, manifest_error)
