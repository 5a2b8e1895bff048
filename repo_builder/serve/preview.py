"""The repository the embedded server serves: a temporary copy of the user's, with a preview.

The user's repository is never modified, nor written into: model folders (all, or those selected and the steps
of the selected ensembles) are rebuilt in a temporary directory from links to the user's files, so that what
the server writes (the python backend's __pycache__) lands there. Hidden entries are left out because Triton
does NOT ignore hidden folders (it tries to load one as a model and, by default, exits), and top-level files
(repo_builder_manifest.json) are not linked. Models whose backend the embedded server lacks (TensorFlow, ONNX
Runtime, TensorRT) are rewritten as python-backend models with the same name, tensors, batching and instance
groups, executed on the same artifact by the preview's model.py (templates/preview_model.py.j2). On a host
without GPUs, GPU instance groups are served on the CPU (triton/preview.py `place`); on a GPU host they stay
there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repo_builder.errors import DeploymentError
from repo_builder.render.config import render_template
from repo_builder.repository.layout import CONFIG_NAME, ONNX_NAME, TFTRT_SOURCE_NAME, config_path, version_dir
from repo_builder.triton.preview import parse_config, place, preview_config

if TYPE_CHECKING:
    from tritonclient.grpc.model_config_pb2 import ModelConfig


#: the model.py of every preview (templates/preview_model.py.j2, with templates/_device.py.j2)
PREVIEW_TEMPLATE = "preview_model.py.j2"
#: platform or backend -> (how the preview runs it, default artifact name in the version folder)
_PREVIEWED: dict[str, tuple[str, str]] = {
    "tensorflow_savedmodel": ("tensorflow", "model.savedmodel"),
    "tensorflow": ("tensorflow", "model.savedmodel"),
    "onnxruntime_onnx": ("onnxruntime", "model.onnx"),
    "onnxruntime": ("onnxruntime", "model.onnx"),
    "tensorrt_plan": ("onnxruntime", "model.plan"),
    "tensorrt": ("onnxruntime", "model.plan"),
}


@dataclass(frozen=True)
class PreviewedModel:
    """A model the embedded server serves through the python backend instead of its own backend."""

    name: str
    original: str  # platform (or backend) in the repository's config.pbtxt
    runtime: str  # "tensorflow" or "onnxruntime"
    artifacts: dict[int, Path]  # version -> the file or folder actually executed
    changes: tuple[str, ...]  # every config change, human readable
    config_text: str  # the config.pbtxt the server loads

    def config(self) -> ModelConfig:
        return parse_config(self.config_text, f"preview of {self.name}")

    def describe(self) -> str:
        arts = ", ".join(f"v{v}: {p}" for v, p in sorted(self.artifacts.items()))
        return f"{self.name}: {self.original} served as a python-backend preview running {self.runtime} on {arts}" + (
            f" ({'; '.join(self.changes)})" if self.changes else ""
        )


@dataclass
class ServedRepository:
    path: Path
    previews: list[PreviewedModel] = field(default_factory=list)
    passed_through: list[str] = field(default_factory=list)
    #: models served with their GPU groups on the CPU (a host without GPUs): name -> the config served
    placed: dict[str, str] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)
    #: served only because a selected ensemble runs them (empty when every model is served)
    ensemble_steps: list[str] = field(default_factory=list)

    def configs(self) -> dict[str, ModelConfig]:
        """Every config the server serves in place of the repository's (previews and placed models)."""
        found = {p.name: p.config() for p in self.previews}
        found.update({name: parse_config(text, f"{name} as served") for name, text in self.placed.items()})
        return found


def _versions(model_dir: Path) -> list[int]:
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def _link_tree(source: Path, dest: Path) -> None:
    """`dest` as a real folder of links to `source`'s entries, its version folders real folders too: what a
    server writes there (a stub's __pycache__) stays out of `source`."""
    dest.mkdir()
    for item in sorted(source.iterdir()):
        if item.is_dir() and item.name.isdigit():
            _link_tree(item, dest / item.name)
        else:
            os.symlink(item.resolve(), dest / item.name, target_is_directory=item.is_dir())


def _serve_as_is(model_dir: Path, config: Any, dest: Path, gpu_host: bool) -> str | None:
    """A model the server runs itself (python backend, ensembles), linked; its config placed on the host.
    The config served when placing changed it, else None."""
    _link_tree(model_dir, dest / model_dir.name)
    if config is None:
        return None
    placed, changes = place(config, gpu_host)
    if not changes:
        return None
    from google.protobuf import text_format

    text = text_format.MessageToString(placed)
    target = config_path(dest, model_dir.name)
    target.unlink()
    target.write_text(text)
    return text


def _rewrite(repo: Path, model_dir: Path, config: Any, dest: Path, gpu_host: bool) -> PreviewedModel:
    from google.protobuf import text_format

    name = model_dir.name
    original = config.platform or config.backend
    runtime, default_file = _PREVIEWED[original]
    is_plan = default_file == "model.plan"
    changes: list[str] = [f"{'platform' if config.platform else 'backend'} {original} -> backend python"]
    artifacts: dict[int, Path] = {}
    problems: list[str] = []
    for version in _versions(model_dir):
        if is_plan:
            artifact = version_dir(repo, name, version) / ONNX_NAME
        else:
            artifact = model_dir / str(version) / (config.default_model_filename or default_file)
            source = model_dir / str(version) / TFTRT_SOURCE_NAME
            if not artifact.exists() and runtime == "tensorflow" and source.is_dir():  # TF-TRT not converted yet
                artifact = source
                changes.append(f"version {version}: the SavedModel TF-TRT converts at deployment")
        if not artifact.exists():
            what = "the ONNX the plan is built from" if is_plan else "the model artifact"
            problems.append(f"{name} version {version}: {what} is missing: {artifact}")
            continue
        artifacts[version] = artifact.resolve()
    if problems:
        raise DeploymentError(
            "cannot preview these models on the embedded server:\n  "
            + "\n  ".join(problems)
            + "\nRebuild the repository (repo-builder build) so every artifact exists."
        )
    if not artifacts:
        raise DeploymentError(f"{name}: no numeric version folder in {model_dir}; nothing to serve")

    config, config_changes = preview_config(config, gpu_host)
    changes += config_changes
    signature = config.parameters["TF_SIGNATURE_DEF"].string_value if "TF_SIGNATURE_DEF" in config.parameters else ""

    model_py = render_template(PREVIEW_TEMPLATE)
    out = dest / name
    out.mkdir()
    for item in model_dir.iterdir():  # label files, warmup/ data and the like, which the config names
        if item.name != CONFIG_NAME and not (item.is_dir() and item.name.isdigit()):
            os.symlink(item.resolve(), out / item.name, target_is_directory=item.is_dir())
    for version, artifact in artifacts.items():
        vdir = out / str(version)
        vdir.mkdir()
        link_name = "model.savedmodel" if runtime == "tensorflow" else "model.onnx"
        os.symlink(artifact, vdir / link_name)
        (vdir / "model.py").write_text(model_py)
        preview = {"runtime": runtime, "artifact": link_name, "source": str(artifact), "signature": signature}
        (vdir / "preview.json").write_text(json.dumps(preview, indent=2) + "\n")
    text = text_format.MessageToString(config)
    config_path(dest, name).write_text(text)
    return PreviewedModel(name, original, runtime, artifacts, tuple(changes), text)


def _select(repo: Path, folders: dict[str, Path], models: Sequence[str], config_of: Any) -> tuple[list[str], list[str]]:
    """(the selected models and the steps their ensembles run, those steps alone); DeploymentError for
    a name that is no model folder of `repo`."""
    unknown = [m for m in dict.fromkeys(models) if m not in folders]
    if unknown:
        raise DeploymentError(
            f"no model named {', '.join(map(repr, unknown))} in {repo}; its models: {', '.join(folders) or '(none)'}"
        )
    selected = list(dict.fromkeys(models))
    steps: list[str] = []
    for name in selected:  # grows while it runs: ensembles of ensembles
        config = config_of(name)
        if config is None or config.platform != "ensemble":
            continue
        for step in config.ensemble_scheduling.step:
            if step.model_name in folders and step.model_name not in selected:
                selected.append(step.model_name)
                steps.append(step.model_name)
    return selected, steps


def prepare_repository(
    repo: Path, dest: Path, preview: bool = True, models: Sequence[str] | None = None, gpu_host: bool = False
) -> ServedRepository:
    """Fill the empty folder `dest` with what the embedded server should serve for `repo`.

    gpu_host: the server sees GPUs (serve/gpus.py); without, GPU instance groups are served on the CPU.

    models: serve only these model folders and the steps of the ensembles among them (None: all);
    a name that is no model folder of `repo` raises DeploymentError naming the folders there are.
    """
    repo = repo.resolve()
    if not repo.is_dir():
        raise DeploymentError(f"model repository {repo} does not exist or is not a folder")
    dest.mkdir(parents=True, exist_ok=True)
    served = ServedRepository(dest)
    folders: dict[str, Path] = {}
    for entry in sorted(repo.iterdir()):
        if entry.name.startswith("."):
            served.left_out.append(entry.name)
        elif entry.is_dir():
            folders[entry.name] = entry
    configs: dict[str, Any] = {}

    def config_of(name: str) -> Any:
        if name not in configs:
            config_file = config_path(repo, name)
            configs[name] = parse_config(config_file.read_text(), str(config_file)) if config_file.exists() else None
        return configs[name]

    selected = list(folders)
    if models is not None:
        selected, served.ensemble_steps = _select(repo, folders, models, config_of)
    problems: list[str] = []
    for name, entry in folders.items():
        if name not in selected:
            continue
        config = config_of(name)
        kind = (config.platform or config.backend) if config is not None else ""
        if preview and kind in _PREVIEWED:
            try:
                served.previews.append(_rewrite(repo, entry, config, dest, gpu_host))
            except DeploymentError as e:
                problems.append(e.message)
            continue
        placed = _serve_as_is(entry, config, dest, gpu_host)
        if placed is not None:
            served.placed[entry.name] = placed
        served.passed_through.append(entry.name)
    if problems:
        raise DeploymentError("\n".join(problems))
    return served
