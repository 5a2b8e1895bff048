"""The YAML spec as pydantic models. `repo_builder.spec.load_spec()` (spec/load.py) is the one way in.

Every model is frozen and forbids unknown keys. Rules that involve several fields live in model
validators (a model entry's in spec/rules.py), which raise `Issues` (spec/problems.py) carrying the exact
sub-path of each problem, so that `load_spec` can point at the line and column of the offending value.

Here: the tensors, the model entry (`ModelSpec`), the deployment (`TritonSettings`), the whole spec (`Spec`)
and the tensor helpers. The blocks a model entry is made of (`Source`, Triton's config settings, the build's
options, ensemble steps) and the shared base are in spec/blocks.py; the `name as name` imports below keep
every public name of blocks.py importable from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PositiveInt,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from repo_builder.spec.blocks import INT32_MAX as INT32_MAX
from repo_builder.spec.blocks import INT64_MAX as INT64_MAX
from repo_builder.spec.blocks import SHELL_SPECIAL as SHELL_SPECIAL
from repo_builder.spec.blocks import UINT32_MAX as UINT32_MAX
from repo_builder.spec.blocks import UINT64_MAX as UINT64_MAX
from repo_builder.spec.blocks import Calibration as Calibration
from repo_builder.spec.blocks import DynamicBatching as DynamicBatching
from repo_builder.spec.blocks import EnsembleStep as EnsembleStep
from repo_builder.spec.blocks import GraphSpec as GraphSpec
from repo_builder.spec.blocks import InstanceGroup as InstanceGroup
from repo_builder.spec.blocks import Int64 as Int64
from repo_builder.spec.blocks import NonNegativeInt32 as NonNegativeInt32
from repo_builder.spec.blocks import NonNegativeUInt32 as NonNegativeUInt32
from repo_builder.spec.blocks import NonNegativeUInt64 as NonNegativeUInt64
from repo_builder.spec.blocks import Optimization as Optimization
from repo_builder.spec.blocks import PositiveInt32 as PositiveInt32
from repo_builder.spec.blocks import PositiveInt64 as PositiveInt64
from repo_builder.spec.blocks import PositiveUInt32 as PositiveUInt32
from repo_builder.spec.blocks import QueuePolicy as QueuePolicy
from repo_builder.spec.blocks import Source as Source
from repo_builder.spec.blocks import TensorRTAccelerator as TensorRTAccelerator
from repo_builder.spec.blocks import TensorRTBuild as TensorRTBuild
from repo_builder.spec.blocks import TFTRTBuild as TFTRTBuild
from repo_builder.spec.blocks import Thresholds as Thresholds
from repo_builder.spec.blocks import Verify as Verify
from repo_builder.spec.blocks import VersionPolicy as VersionPolicy
from repo_builder.spec.blocks import Warmup as Warmup
from repo_builder.spec.blocks import WarmupInput as WarmupInput
from repo_builder.spec.blocks import _Base, _enabled_shorthand
from repo_builder.spec.deployment import DEPLOYMENT_RULES
from repo_builder.spec.ensemble import check_ensemble
from repo_builder.spec.problems import Issues
from repo_builder.spec.rules import check_model
from repo_builder.triton import dtypes
from repo_builder.triton.platforms import TARGETS

DataType = Annotated[str, BeforeValidator(dtypes.normalize)]
Target = Literal[TARGETS]  # type: ignore[valid-type]
Precision = Literal["fp32", "fp16", "int8"]
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")

#: the longest folder name of a model or repository: file systems allow 255 bytes, and the build's staging
#: folder beside the repository adds a prefix and a suffix to its name
MAX_FOLDER_NAME = 200


def _check_dims(dims: list[int]) -> list[int]:
    if len(dims) == 0:
        raise ValueError(
            "dims is empty; Triton needs rank >= 1 (a tensor that is only the batch dimension is "
            "dims: [1] with reshape: [])"
        )
    bad = [d for d in dims if d == 0 or d < -1]
    if bad:
        raise ValueError(f"dims {dims} contain {bad[0]}; each dim must be a positive size or -1 (variable)")
    big = [d for d in dims if d > INT64_MAX]
    if big:
        raise ValueError(f"dim {big[0]} is larger than {INT64_MAX}, the largest dim Triton's config holds (int64)")
    return dims


# --------------------------------------------------------------------------------------------- tensors


class TensorSpec(_Base):
    name: str = Field(min_length=1, description="Tensor name as served by Triton.")
    dtype: DataType = Field(description="TYPE_FP32, FP32 or float32 (any Triton or numpy name).")
    dims: list[int] = Field(description="Shape without the batch dimension when max_batch_size > 0; -1 = variable.")
    reshape: list[int] | None = Field(
        default=None, description="Shape the model sees (Triton `reshape`); [] for a scalar per batch item."
    )

    @field_validator("dims")
    @classmethod
    def _dims(cls, value: list[int]) -> list[int]:
        return _check_dims(value)

    @field_validator("reshape")
    @classmethod
    def _reshape(cls, value: list[int] | None) -> list[int] | None:
        # the other reshape rules are Triton's, in spec/rules.py (reported with its wording)
        if value is not None and any(d > INT64_MAX for d in value):
            raise ValueError(f"reshape {value} holds a size larger than {INT64_MAX} (int64, as in Triton's config)")
        return value


class InputSpec(TensorSpec):
    optional: bool = Field(default=False, description="The input may be left out of a request.")


class OutputSpec(TensorSpec):
    labels: str | None = Field(
        default=None, description="Text file with one class label per line (Triton `label_filename`)."
    )


# --------------------------------------------------------------------------------------------- model


class ModelSpec(_Base):
    name: str = Field(description="Model name; also its folder in the repository.")
    source: Source | None = Field(
        default=None,
        description="The TensorFlow model to convert: one of python, saved_model, keras_file (none for an ensemble).",
    )
    target: Target = Field(description="Conversion target: " + ", ".join(TARGETS) + ".")
    versions: list[PositiveInt64] = Field(
        default_factory=lambda: [1], min_length=1, description="Version folders to build, each holding the same model."
    )
    max_batch_size: NonNegativeInt32 = Field(
        default=8, description="0 = the model does not batch and dims are the full shape."
    )
    signature: str = Field(default="serving_default", description="SavedModel signature to serve.")
    inputs: list[InputSpec] | None = Field(
        default=None, min_length=1, description="Optional when the signature gives them."
    )
    outputs: list[OutputSpec] | None = Field(
        default=None, min_length=1, description="Optional when the signature gives them."
    )
    precision: Precision = Field(
        default="fp32",
        description="fp32, fp16 or int8. int8: targets tftrt and tensorrt, with calibration; fp16 on other "
        "targets: the TensorRT accelerator (optimization: {tensorrt: true}).",
    )
    opset: int = Field(default=17, ge=13, le=18, description="ONNX opset for tf2onnx (13..18).")
    python_runtime: Literal["onnxruntime", "tensorflow"] | None = Field(
        default=None, description="What the generated model.py runs (target python). Default onnxruntime."
    )
    dynamic_batching: Annotated[
        DynamicBatching | None,
        BeforeValidator(_enabled_shorthand, json_schema_input_type=DynamicBatching | bool | None),
    ] = Field(
        default=None, description="Triton's dynamic batcher; `false` turns it off. Default: on when max_batch_size > 0."
    )
    instance_groups: list[InstanceGroup] | None = Field(
        default=None, description="How many instances run, and where (CPU, GPU). Default: Triton's."
    )
    version_policy: VersionPolicy | None = Field(
        default=None, description="Which versions Triton serves. Default: Triton's (the latest)."
    )
    warmup: list[Warmup] = Field(default_factory=list, description="Requests Triton runs when it loads the model.")
    response_cache: bool = Field(
        default=False, description="Cache responses in Triton's response cache (size: triton.cache_size_bytes)."
    )
    optimization: Optimization | None = Field(
        default=None, description="Triton's optimization settings for the model's backend."
    )
    parameters: dict[str, str] = Field(
        default_factory=dict, description="Extra config.pbtxt parameters: key -> string value."
    )
    cc_model_filenames: dict[str, str] = Field(
        default_factory=dict, description="Compute capability (e.g. '8.6') -> plan file name (tensorrt)."
    )
    calibration: Calibration | None = Field(default=None, description="INT8 calibration data (precision int8).")
    tensorrt: TensorRTBuild | None = Field(
        default=None, description="How the TensorRT plan is built (target tensorrt)."
    )
    tftrt: TFTRTBuild | None = Field(default=None, description="TF-TRT conversion settings (target tftrt).")
    steps: list[EnsembleStep] | None = Field(default=None, description="Ensemble steps (target ensemble).")
    verify: Annotated[Verify, BeforeValidator(_enabled_shorthand, json_schema_input_type=Verify | bool)] = Field(
        default_factory=Verify, description="Check the converted model against the source model; `false` skips it."
    )
    validation: Thresholds = Field(
        default_factory=Thresholds, description="Performance thresholds `repo-builder validate` checks."
    )

    @field_validator("name")
    @classmethod
    def _dir_name(cls, value: str) -> str:
        if not value:
            raise ValueError("name is empty; expected a folder name such as resnet50")
        if "/" in value or "\\" in value:
            raise ValueError(f"{value!r} contains a path separator; a model name is a single folder name")
        if value in (".", ".."):
            raise ValueError(f"{value!r} is not a usable folder name")
        if value.startswith("."):
            raise ValueError(f"{value!r} starts with '.'; hidden folders are not models")
        if not _NAME_RE.match(value):
            raise ValueError(f"{value!r} has characters other than letters, digits, '_', '-' and '.'")
        if len(value) > MAX_FOLDER_NAME:
            raise ValueError(
                f"{value[:40]!r}... is {len(value)} characters long; a model name is a folder name of at most "
                f"{MAX_FOLDER_NAME}"
            )
        return value

    @property
    def batching(self) -> bool:
        return self.max_batch_size > 0

    @property
    def dynamic_batching_on(self) -> bool:
        """Explicit setting, else on for every batching model that is not an ensemble."""
        if self.dynamic_batching is not None:
            return self.dynamic_batching.enabled
        return self.batching and self.target != "ensemble"

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> ModelSpec:
        """The rules that involve several fields (spec/rules.py), all of them reported together. The
        loader passes context {"skip": fields} to run the rules that do not read invalid fields."""
        skip = (info.context or {}).get("skip", frozenset()) if isinstance(info.context, dict) else frozenset()
        check_model(self, frozenset(skip))
        return self


# --------------------------------------------------------------------------------------------- triton


class TritonSettings(_Base):
    image_tag: str | None = Field(
        default=None,
        pattern=r"^\d\d\.\d\d$",
        description="NGC release (yy.mm). Default: the newest release that serves every model in the spec.",
    )
    http_port: int = Field(default=8000, ge=1, le=65535, description="Host port published for Triton's HTTP endpoint.")
    grpc_port: int = Field(default=8001, ge=1, le=65535, description="Host port published for Triton's gRPC endpoint.")
    metrics_port: int = Field(
        default=8002, ge=1, le=65535, description="Host port published for Triton's Prometheus metrics."
    )
    bind_address: str = Field(default="127.0.0.1", description="Host address the published ports bind to.")
    shm_size: str = Field(
        default="1g",
        pattern=r"^\d+[bkmgBKMG]?$",
        description="Shared memory of the Triton container (docker shm_size), e.g. 1g.",
    )
    model_control_mode: Literal["none", "poll", "explicit"] = Field(
        default="none", description="tritonserver --model-control-mode: none, poll or explicit."
    )
    restricted_api_key_env: str = Field(
        default="TRITON_ADMIN_KEY",
        description="Environment variable holding the key for the model-repository and shared-memory APIs.",
    )
    prometheus: bool = Field(default=False, description="Add a Prometheus service scraping Triton's metrics.")
    cache_size_bytes: PositiveInt = Field(default=268435456, description="Response cache size (--cache-config).")

    @model_validator(mode="after")
    def _distinct_ports(self) -> TritonSettings:
        ports = {"http_port": self.http_port, "grpc_port": self.grpc_port, "metrics_port": self.metrics_port}
        found = Issues()
        seen: dict[int, str] = {}
        for key, port in ports.items():
            if port in seen:
                found.add((key,), f"port {port} is already used by {seen[port]}; each port must differ")
            seen[port] = key
        found.raise_if_any()
        return self


class Spec(_Base):
    repository: str = Field(default="model_repository", description="Output folder, relative to the spec file.")
    triton: TritonSettings = Field(
        default_factory=TritonSettings, description="How the Triton server is deployed (docker-compose.yml)."
    )
    models: list[ModelSpec] = Field(min_length=1, description="The models to build, at least one.")
    allow_outside_files: bool = Field(
        default=False,
        description="Let label and warmup files come from outside the spec's folder (../, absolute paths, "
        "symlinks out of it). They are copied into the repository and its image: allow it only for specs you trust.",
    )

    _path: Path | None = PrivateAttr(default=None)
    #: located warnings found by the loader (spec/advice.py MODEL_WARNINGS): settings Triton ignores
    _warnings: list[str] = PrivateAttr(default_factory=list)

    @field_validator("repository")
    @classmethod
    def _repository_path(cls, value: str) -> str:
        if "\0" in value:
            raise ValueError(f"{value!r} contains a NUL character; expected a folder path")
        if len(value.encode()) > 2000:  # PATH_MAX is 4096, and the spec's folder comes before it
            raise ValueError(f"{value[:40]!r}... is {len(value.encode())} bytes long; expected a folder path")
        longest = max(value.split("/"), key=lambda part: len(part.encode()))
        if len(longest.encode()) > MAX_FOLDER_NAME:
            raise ValueError(
                f"the folder name {longest[:40]!r}... is {len(longest.encode())} bytes long; a repository's folder "
                f"names may be at most {MAX_FOLDER_NAME} bytes"
            )
        return value

    @model_validator(mode="after")
    def _cross_model(self) -> Spec:
        found = Issues()
        first: dict[str, int] = {}
        for i, m in enumerate(self.models):
            if m.name in first:
                found.add(("models", i, "name"), duplicate_name_message(m.name, first[m.name]))
            else:
                first[m.name] = i
        by_name = {m.name: m for m in self.models}
        for i, m in enumerate(self.models):
            if m.target == "ensemble" and m.steps:
                check_ensemble(m, i, by_name, found)
        found.raise_if_any()
        return self

    @model_validator(mode="after")
    def _deployable(self) -> Spec:
        """The deployment's rules, reported together: the pinned release serves every model, the
        bind address is an IP address, the admin key's variable is an environment variable name."""
        found = Issues()
        for rule in DEPLOYMENT_RULES:
            problem = rule(self)
            if problem is not None:
                found.add(*problem)
        found.raise_if_any()
        return self

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def warnings(self) -> list[str]:
        return list(self._warnings)

    @property
    def base_dir(self) -> Path:
        return self._path.parent if self._path is not None else Path.cwd()

    def repository_path(self, override: str | Path | None = None) -> Path:
        if override is not None:
            return Path(override)
        return self.base_dir / self.repository

    def resolve(self, relative: str) -> Path:
        """A path from the spec, relative to the spec file."""
        return self.base_dir / relative

    def model(self, name: str) -> ModelSpec:
        return next(m for m in self.models if m.name == name)


def duplicate_name_message(name: str, first: int) -> str:
    return f"model name {name!r} is already used by models[{first}]"


@dataclass(frozen=True)
class Tensors:
    """The complete inputs and outputs of a model (from the spec, or completed by inspection)."""

    inputs: list[InputSpec]
    outputs: list[OutputSpec]


def spec_tensors(model: ModelSpec) -> Tensors | None:
    """The tensors the spec gives, or None when inspection must fill them in."""
    if model.inputs is None or model.outputs is None:
        return None
    return Tensors(list(model.inputs), list(model.outputs))


def tensors_of(model: ModelSpec) -> Tensors:
    """Tensors of a resolved model (inspection filled in what the spec left out)."""
    tensors = spec_tensors(model)
    assert tensors is not None, f"{model.name} is not resolved"
    return tensors
