"""What a model's conversion depends on, hashed without importing TensorFlow: equal hashes let a build
carry the previous result over."""

from __future__ import annotations

import hashlib
import json
from importlib import metadata

from repo_builder import __version__
from repo_builder.repository.manifest import settings_of
from repo_builder.repository.write import sha256_tree
from repo_builder.spec.models import ModelSpec, Spec
from repo_builder.triton.platforms import PLATFORMS

#: libraries whose version changes what a conversion produces (read from metadata, never imported)
LIBRARIES = ("tensorflow", "keras", "tf-keras", "tf2onnx", "onnx", "onnxruntime", "tensorrt", "numpy")


def library_versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def source_sha256(spec: Spec, model: ModelSpec) -> str | None:
    from repo_builder.inspect.sources import source_path

    if model.source is None:
        return None
    path = source_path(model.source, spec.base_dir)
    return sha256_tree(path) if path is not None and path.exists() else None


def inputs_hash(spec: Spec, model: ModelSpec, libraries: dict[str, str]) -> str:
    """Everything a model's conversion depends on; equal hashes mean the previous result is still valid."""
    from repo_builder.render.config import templates_dir

    files: dict[str, str | None] = {"source": source_sha256(spec, model)}
    for out in model.outputs or []:
        if out.labels:
            files[f"labels:{out.labels}"] = sha256_tree(spec.resolve(out.labels))
    for w in model.warmup:
        for wi in w.inputs.values():
            if wi.file:
                files[f"warmup:{wi.file}"] = sha256_tree(spec.resolve(wi.file))
    if model.calibration is not None:
        files["calibration"] = sha256_tree(spec.resolve(model.calibration.data))
    if model.verify.inputs_file is not None:
        files["verify.inputs"] = sha256_tree(spec.resolve(model.verify.inputs_file))
    templates = templates_dir()
    template_files = [PLATFORMS[model.target].template, "_macros.pbtxt.j2"]
    if model.target == "python":
        template_files += ["python_model.py.j2", "_device.py.j2"]
    if model.target == "tftrt":
        template_files.append("build_tftrt.py.j2")
    for name in template_files:
        files[f"template:{name}"] = sha256_tree(templates / name)
    payload = {
        "repo_builder": __version__,
        "settings": settings_of(model),
        "files": files,
        "libraries": libraries if model.target != "ensemble" else {},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
