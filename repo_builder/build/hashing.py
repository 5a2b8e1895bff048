"""What a model's build depends on, hashed without importing TensorFlow: equal hashes let a build carry the
previous result over.

Two hashes per model. The conversion hash covers what the converted artifact and its reference vectors
depend on (source, target, conversion and verification settings, the tensors the spec gives, the templates
the converters render, library versions). The inputs hash covers that and what only config.pbtxt and the
files beside it depend on (CONFIG_FIELDS, the tensors' labels and `optional`, label and warmup files, the
config templates). Equal inputs hashes: the model is carried over unchanged; equal conversion hashes only:
its artifact is carried over and its config rendered again (build/carry.py `rerender`).
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from typing import Any

from repo_builder import __version__
from repo_builder.repository.manifest import settings_of
from repo_builder.repository.write import sha256_tree
from repo_builder.spec.models import ModelSpec, Spec
from repo_builder.triton.platforms import PLATFORMS

#: libraries whose version changes what a conversion produces (read from metadata, never imported)
LIBRARIES = ("tensorflow", "keras", "tf-keras", "tf2onnx", "onnx", "onnxruntime", "tensorrt", "numpy")

#: a model's settings that change only config.pbtxt (and the label and warmup files beside it), never the
#: artifact, its reference vectors or whether verification passes. Everything else is a conversion setting:
#: max_batch_size (the batch dim of the exported SavedModel, the python model.py, the reference's shape),
#: versions (the version folders), tensor names, dtypes, dims and reshape (the exported signature, the
#: reference), precision (the tolerance), verify (the reference), opset, python_runtime, tensorrt, tftrt...
CONFIG_FIELDS = (
    "dynamic_batching",
    "instance_groups",
    "version_policy",
    "warmup",
    "response_cache",
    "optimization",
    "parameters",
    "validation",
)
#: a tensor's settings of the same kind: a label file (copied beside config.pbtxt), an optional input
CONFIG_TENSOR_FIELDS = ("labels", "optional")


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


def split_settings(model: ModelSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model's settings (as the manifest records them) split into (conversion, config)."""
    conversion = settings_of(model)
    config: dict[str, Any] = {k: conversion.pop(k) for k in CONFIG_FIELDS if k in conversion}
    for kind in ("inputs", "outputs"):
        tensors = conversion.get(kind)
        if tensors is not None:
            config[kind] = [{f: t.pop(f) for f in CONFIG_TENSOR_FIELDS if f in t} for t in tensors]
    # resolve() keeps a max_batch_size the spec sets, and detects it when the spec leaves it out
    conversion["max_batch_size_given"] = "max_batch_size" in model.model_fields_set
    return conversion, config


def _digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def model_hashes(spec: Spec, model: ModelSpec, libraries: dict[str, str]) -> tuple[str, str | None]:
    """(inputs hash, conversion hash) of a model; an ensemble has no conversion hash (None)."""
    from repo_builder.render.config import template_path

    conversion_settings, config_settings = split_settings(model)
    config_files: dict[str, str | None] = {}
    for out in model.outputs or []:
        if out.labels:
            config_files[f"labels:{out.labels}"] = sha256_tree(spec.resolve(out.labels))
    for w in model.warmup:
        for wi in w.inputs.values():
            if wi.file:
                config_files[f"warmup:{wi.file}"] = sha256_tree(spec.resolve(wi.file))
    for name in (PLATFORMS[model.target].template, "_macros.pbtxt.j2"):
        config_files[f"template:{name}"] = sha256_tree(template_path(name))
    config = {"settings": config_settings, "files": config_files}
    if model.target == "ensemble":
        return _digest({"repo_builder": __version__, "settings": settings_of(model), "config": config}), None
    files: dict[str, str | None] = {"source": source_sha256(spec, model)}
    if model.calibration is not None:
        files["calibration"] = sha256_tree(spec.resolve(model.calibration.data))
    if model.verify.inputs_file is not None:
        files["verify.inputs"] = sha256_tree(spec.resolve(model.verify.inputs_file))
    template_files = []
    if model.target == "python":
        template_files += ["python_model.py.j2", "_device.py.j2", "_strings.py.j2", "_pipeline.py.j2"]
    if model.target == "tftrt":
        template_files.append("build_tftrt.py.j2")
    for name in template_files:
        files[f"template:{name}"] = sha256_tree(template_path(name))
    conversion = _digest(
        {"repo_builder": __version__, "settings": conversion_settings, "files": files, "libraries": libraries}
    )
    return _digest({"conversion": conversion, "config": config}), conversion


def inputs_hash(spec: Spec, model: ModelSpec, libraries: dict[str, str]) -> str:
    """Everything a model's build depends on; equal hashes mean the previous result is still valid."""
    return model_hashes(spec, model, libraries)[0]


def conversion_hash(spec: Spec, model: ModelSpec, libraries: dict[str, str]) -> str | None:
    """What a model's artifact and reference vectors depend on; None for an ensemble."""
    return model_hashes(spec, model, libraries)[1]
