"""The YAML spec as pydantic models. `repo_builder.spec.load_spec()` (spec/load.py) is the one way in.

Every model is frozen and forbids unknown keys. Rules that involve several fields live in model
validators (a model entry's in spec/rules.py), which raise `Issues` (spec/problems.py) carrying the exact
sub-path of each problem, so that `load_spec` can point at the line and column of the offending value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from repo_builder.spec.problems import Issues
from repo_builder.spec.rules import DEPLOYMENT_RULES, check_ensemble, check_model
from repo_builder.triton import dtypes
from repo_builder.triton.platforms import TARGETS

#: the name TritonSettings' and Spec's validators collect their problems with


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _enabled_shorthand(value: Any) -> Any:
    """`key: true|false` is short for `key: {enabled: true|false}`."""
    if isinstance(value, bool):
        return {"enabled": value}
    return value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _kind(value: Any) -> Any:
    if isinstance(value, str):
        value = value.upper()
        if not value.startswith("KIND_"):
            value = "KIND_" + value
    return value


DataType = Annotated[str, BeforeValidator(dtypes.normalize)]
Target = Literal[TARGETS]  # type: ignore[valid-type]
Precision = Literal["fp32", "fp16", "int8"]

#: characters a POSIX shell gives a meaning to (instance group names, see InstanceGroup._group_name)
SHELL_SPECIAL = frozenset("\"'\\`$;&|()<>*?[]{}~#!")
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")

#: the longest folder name of a model or repository: file systems allow 255 bytes, and the build's staging
#: folder beside the repository adds a prefix and a suffix to its name
MAX_FOLDER_NAME = 200

# The widths of ModelConfig's integer fields: a larger number does not fit in Triton's config.
INT32_MAX = 2**31 - 1
UINT32_MAX = 2**32 - 1
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1
PositiveInt32 = Annotated[int, Field(gt=0, le=INT32_MAX)]
NonNegativeInt32 = Annotated[int, Field(ge=0, le=INT32_MAX)]
PositiveUInt32 = Annotated[int, Field(gt=0, le=UINT32_MAX)]
NonNegativeUInt32 = Annotated[int, Field(ge=0, le=UINT32_MAX)]
NonNegativeUInt64 = Annotated[int, Field(ge=0, le=UINT64_MAX)]
PositiveInt64 = Annotated[int, Field(gt=0, le=INT64_MAX)]
Int64 = Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]


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


# --------------------------------------------------------------------------------------------- source


class Source(_Base):
    """Where the TensorFlow model comes from: exactly one of the three."""

    python: str | None = Field(
        default=None, description="`file.py:function` or `module:function` returning a Keras model or tf.Module."
    )
    saved_model: str | None = Field(default=None, description="Folder of a TensorFlow SavedModel.")
    keras_file: str | None = Field(default=None, description="A Keras `.keras` or `.h5` file.")
    safe_mode: bool = Field(
        default=True,
        description="keras_file only. false lets Keras 3 load a `.keras` file with Lambda layers, which EXECUTES "
        "the Python code stored in the file: only for files you trust.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        given = [k for k in ("python", "saved_model", "keras_file") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"source has {len(given)} of python, saved_model, keras_file"
                + (f" ({', '.join(given)})" if given else "")
                + "; expected exactly one"
            )
        if self.python is not None and not re.fullmatch(r"[^:]+:[A-Za-z_][A-Za-z0-9_]*", self.python):
            raise Issues.one(("python",), f"{self.python!r} is not `file.py:function` or `module:function`")
        if self.keras_file is not None and not self.keras_file.endswith((".keras", ".h5")):
            raise Issues.one(("keras_file",), f"{self.keras_file!r} must end in .keras or .h5")
        if not self.safe_mode and self.keras_file is None:
            raise Issues.one(("safe_mode",), "safe_mode applies to a keras_file source only")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("python", "saved_model", "keras_file") if getattr(self, k) is not None)

    @property
    def ref(self) -> str:
        return str(getattr(self, self.kind))

    @classmethod
    def from_arg(cls, arg: str, safe_mode: bool = True) -> Source:
        """A command-line argument -> Source: a SavedModel folder, a .keras/.h5 file (loaded with `safe_mode`),
        or file.py:function / module:function."""
        if arg.endswith((".keras", ".h5")):
            return cls(keras_file=arg, safe_mode=safe_mode)
        if ":" in arg and not Path(arg).exists():
            return cls(python=arg)
        return cls(saved_model=arg)


# --------------------------------------------------------------------------------------------- batching


class QueuePolicy(_Base):
    timeout_action: Annotated[Literal["REJECT", "DELAY"], BeforeValidator(_upper, json_schema_input_type=str)] = Field(
        default="REJECT", description="What happens to a request that times out in the queue: REJECT or DELAY."
    )
    default_timeout_microseconds: NonNegativeUInt64 = Field(
        default=0, description="Queue timeout of a request that sets none; 0 = no timeout."
    )
    allow_timeout_override: bool = Field(default=False, description="Requests may set their own, shorter timeout.")
    max_queue_size: NonNegativeUInt32 = Field(
        default=0, description="Most requests waiting in the queue; 0 = unlimited."
    )


class DynamicBatching(_Base):
    """Triton's dynamic batcher. `dynamic_batching: false` turns it off; absent = on when the model batches."""

    enabled: bool = Field(default=True, description="Turn dynamic batching on or off.")
    preferred_batch_size: list[PositiveInt32] = Field(
        default_factory=list, description="Batch sizes the batcher aims for, each in 1..max_batch_size."
    )
    max_queue_delay_microseconds: NonNegativeUInt64 = Field(
        default=0, description="How long a request may wait for others to form a batch."
    )
    preserve_ordering: bool = Field(default=False, description="Return responses in the order the requests came in.")
    priority_levels: NonNegativeUInt64 = Field(
        default=0, description="Number of request priority levels; 0 = no priorities."
    )
    default_priority_level: NonNegativeUInt64 = Field(
        default=0, description="Priority of a request that sets none, in 1..priority_levels."
    )
    default_queue_policy: QueuePolicy | None = Field(
        default=None, description="Queue policy of every priority level not in priority_queue_policy."
    )
    priority_queue_policy: dict[int, QueuePolicy] = Field(
        default_factory=dict, description="Priority level -> its queue policy."
    )

    @model_validator(mode="after")
    def _priorities(self) -> DynamicBatching:
        found = Issues()
        if self.priority_levels:
            if not 1 <= self.default_priority_level <= self.priority_levels:
                found.add(
                    ("default_priority_level",),
                    f"{self.default_priority_level} is outside 1..{self.priority_levels}; with priority_levels "
                    f"{self.priority_levels} the default level must be in 1..{self.priority_levels}",
                )
        elif self.default_priority_level:
            found.add(("default_priority_level",), "is set but priority_levels is 0; set priority_levels first")
        for level in self.priority_queue_policy:
            if not 1 <= level <= max(self.priority_levels, 0):
                found.add(
                    ("priority_queue_policy", level),
                    f"priority level {level} is outside 1..{self.priority_levels} (priority_levels)",
                )
        found.raise_if_any()
        return self


class InstanceGroup(_Base):
    kind: Annotated[
        Literal["KIND_AUTO", "KIND_CPU", "KIND_GPU", "KIND_MODEL"],
        BeforeValidator(_kind, json_schema_input_type=str),
    ] = Field(
        default="KIND_AUTO",
        description="Where the instances run: KIND_AUTO, KIND_CPU, KIND_GPU or KIND_MODEL (or auto, cpu, gpu, model).",
    )
    count: PositiveInt32 = Field(default=1, description="Instances per device (per GPU with KIND_GPU).")
    gpus: list[Annotated[int, Field(le=INT32_MAX)]] | None = Field(
        default=None, description="GPU indices to place instances on (kind KIND_GPU, or KIND_AUTO); default: every GPU."
    )
    profile: list[str] | None = Field(default=None, description="TensorRT optimization profiles (plans only).")
    name: str | None = Field(default=None, description="Name of the instance group; default: Triton's.")

    @field_validator("name")
    @classmethod
    def _group_name(cls, value: str | None) -> str | None:
        # Triton names each instance after its group, and the python backend of 2.51 (which serves python
        # targets, and every preview) starts an instance's stub through a shell command line holding that
        # name: a space splits it (the stub fails), a quote or ; & | ( ` leave the load unanswered, > writes a
        # file, $ * ? { expand (measured through the core oracle, docs/TRITON_FACTS.md)
        bad = sorted({c for c in value or "" if c == " " or ord(c) < 0x20 or ord(c) == 0x7F or c in SHELL_SPECIAL})
        if bad:
            shown = ", ".join(repr(c) for c in bad)
            raise ValueError(
                f"{value!r} holds {shown}: Triton 2.51's python backend starts each instance through a shell command "
                "line that holds this name, so the instance fails or never finishes loading; use letters, digits, "
                "'_', '-' or '.'"
            )
        return value


class VersionPolicy(_Base):
    latest: PositiveUInt32 | None = Field(default=None, description="Serve the newest N versions.")
    all: bool | None = Field(default=None, description="Serve every version.")
    specific: list[PositiveInt64] | None = Field(default=None, description="Serve these versions (each in versions).")

    @model_validator(mode="after")
    def _one(self) -> VersionPolicy:
        given = [k for k in ("latest", "all", "specific") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"version_policy needs exactly one of latest, all, specific; got {given or 'none'}")
        return self


class WarmupInput(_Base):
    data: Literal["zero", "random"] = Field(
        default="random", description="Warmup data when no file is given: zero or random."
    )
    dims: list[Int64] | None = Field(default=None, description="Concrete dims; default: the input's, -1 -> 1.")
    file: str | None = Field(default=None, description="Raw little-endian data file (Triton input_data_file).")


class Warmup(_Base):
    name: str = Field(min_length=1, description="Name of this warmup sample.")
    batch_size: PositiveUInt32 = Field(default=1, description="Batch size of the warmup request (1..max_batch_size).")
    count: PositiveUInt32 = Field(default=1, description="How many times the warmup request is run.")
    inputs: dict[str, WarmupInput] = Field(
        default_factory=dict, description="Per input; inputs not named get random data of their dtype and dims."
    )


# --------------------------------------------------------------------------------------------- optimization


class TensorRTAccelerator(_Base):
    """Online TensorRT inside Triton's ONNX Runtime or TensorFlow backend (gpu_execution_accelerator)."""

    enabled: bool = Field(default=True, description="Turn the accelerator on or off.")
    max_workspace_size_bytes: PositiveInt | None = Field(
        default=None, description="TensorRT workspace size in bytes; default: the backend's."
    )
    max_cached_engines: PositiveInt | None = Field(default=None, description="TensorFlow backend only.")
    minimum_segment_size: PositiveInt | None = Field(default=None, description="TensorFlow backend only.")


class GraphSpec(_Base):
    batch_size: NonNegativeInt32 = Field(
        default=0, description="Batch size the CUDA graph is captured for (0 when max_batch_size is 0)."
    )
    inputs: dict[str, list[Int64]] = Field(
        default_factory=dict,
        description="Input name -> concrete dims (without the batch dimension) the graph is captured for.",
    )


class Optimization(_Base):
    tensorrt: Annotated[
        TensorRTAccelerator | None,
        BeforeValidator(_enabled_shorthand, json_schema_input_type=TensorRTAccelerator | bool | None),
    ] = Field(
        default=None,
        description="TensorRT inside the ONNX Runtime or TensorFlow backend; `true` is short for {enabled: true}.",
    )
    auto_mixed_precision: bool = Field(default=False, description="TensorFlow backend only; not with tensorrt.")
    cuda_graphs: bool = Field(default=False, description="TensorRT plans only.")
    graph_specs: list[GraphSpec] = Field(default_factory=list, description="TensorRT plans only.")
    input_pinned_memory: bool | None = Field(
        default=None, description="Use pinned memory for inputs; default: Triton's."
    )
    output_pinned_memory: bool | None = Field(
        default=None, description="Use pinned memory for outputs; default: Triton's."
    )


class TensorRTBuild(_Base):
    """How a TensorRT plan is built (target tensorrt)."""

    workspace_mib: PositiveInt = Field(default=1024, description="TensorRT builder workspace in MiB.")
    opt_batch_size: PositiveInt | None = Field(default=None, description="Default: half of max_batch_size.")
    shapes: dict[str, dict[Literal["min", "opt", "max"], list[PositiveInt]]] = Field(
        default_factory=dict,
        description="Per input with variable dims: min/opt/max shapes without the batch dimension.",
    )
    timing_cache: bool = Field(default=True, description="Keep a timing cache next to the plan so rebuilds are faster.")


class TFTRTBuild(_Base):
    """TF-TRT conversion settings (target tftrt)."""

    minimum_segment_size: PositiveInt = Field(
        default=3, description="Smallest subgraph (in ops) TF-TRT replaces with a TensorRT engine."
    )
    max_workspace_size_bytes: PositiveInt = Field(default=1 << 30, description="TensorRT workspace size in bytes.")
    maximum_cached_engines: PositiveInt = Field(default=1, description="Most engines cached per TensorRT subgraph.")
    profile_strategy: Literal["Range", "Optimal", "Range+Optimal", "ImplicitBatchModeCompatible"] = Field(
        default="Range", description="TF-TRT optimization profile strategy for dynamic shapes."
    )
    allow_build_at_runtime: bool = Field(default=False, description="Let TF-TRT build missing engines while serving.")


class Calibration(_Base):
    data: str = Field(description=".npz file with one array per input name (batch on axis 0).")
    batch_size: PositiveInt = Field(default=8, description="Rows of the calibration data per calibration batch.")
    max_batches: PositiveInt = Field(default=16, description="Most calibration batches used.")


class Verify(_Base):
    enabled: bool = Field(
        default=True, description="Compare the converted model's outputs with the source model's after the build."
    )
    atol: PositiveFloat | None = Field(default=None, description="Default by precision: 1e-4 fp32, 1e-2 fp16.")
    rtol: PositiveFloat | None = Field(default=None, description="Default by precision: 1e-3 fp32, 5e-2 fp16.")
    batch_sizes: list[PositiveInt] | None = Field(default=None, description="Default: 1, a middle one, max.")
    inputs: str | None = Field(
        default=None,
        description="Sample inputs instead of generated ones: an .npz file with one array per input name (batch "
        "on axis 0 when the model batches), or `file.py:function` returning such a dict. Used for the build's "
        "check, the stored reference and `repo-builder validate`.",
    )
    ranges: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="Input name -> [low, high]: generated values are drawn from this range (integers: low to "
        "high, both included), e.g. token ids below a vocabulary size.",
    )

    @property
    def inputs_file(self) -> str | None:
        """The file `inputs` names: the .npz, or the .py of `file.py:function` (None for an installed module)."""
        if self.inputs is None:
            return None
        file = self.inputs if self.inputs.endswith(".npz") else self.inputs.rsplit(":", 1)[0]
        return file if file.endswith((".npz", ".py")) else None

    @field_validator("ranges")
    @classmethod
    def _ranges(cls, value: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for name, (low, high) in value.items():
            if low > high:
                raise Issues.one((name,), f"range [{low:g}, {high:g}] has low > high; expected [low, high]")
        return value


class Thresholds(_Base):
    """Performance thresholds that make `repo-builder validate` fail."""

    p99_latency_ms: PositiveFloat | None = Field(
        default=None, description="99th-percentile latency in milliseconds that `repo-builder validate` may not exceed."
    )
    min_throughput: PositiveFloat | None = Field(default=None, description="Inferences per second.")


class EnsembleStep(_Base):
    model: str = Field(min_length=1, description="Name of the step's model (another model in this spec).")
    version: Int64 = Field(default=-1, description="Version of the step's model; -1 = the latest.")
    input_map: dict[str, str] = Field(description="Step model's input name -> ensemble tensor name.")
    output_map: dict[str, str] = Field(description="Step model's output name -> ensemble tensor name.")


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
    #: located warnings found by the loader (spec/rules.py MODEL_WARNINGS): settings Triton ignores
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
