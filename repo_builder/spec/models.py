"""The YAML spec as pydantic models. `repo_builder.spec.load_spec()` (spec/load.py) is the one way in.

Every model is frozen and forbids unknown keys. Rules that involve several fields live in model
validators, which raise `Issues` carrying the exact sub-path of each problem, so that `load_spec`
can point at the line and column of the offending value.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    field_validator,
    model_validator,
)

from repo_builder.triton import dtypes, releases
from repo_builder.triton.platforms import PLATFORMS, TARGETS

Loc = tuple[str | int, ...]


class Issues(ValueError):
    """One or more problems found by a validator, each with a path relative to the validated object."""

    def __init__(self, issues: list[tuple[Loc, str]]) -> None:
        super().__init__("; ".join(msg for _, msg in issues))
        self.issues = issues


class _Collector:
    def __init__(self) -> None:
        self.items: list[tuple[Loc, str]] = []

    def add(self, loc: Loc, message: str) -> None:
        self.items.append((loc, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise Issues(self.items)


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

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def _check_dims(dims: list[int]) -> list[int]:
    if len(dims) == 0:
        raise ValueError(
            "dims is empty; Triton needs rank >= 1 (a tensor that is only the batch dimension is "
            "dims: [1] with reshape: [])"
        )
    bad = [d for d in dims if d == 0 or d < -1]
    if bad:
        raise ValueError(f"dims {dims} contain {bad[0]}; each dim must be a positive size or -1 (variable)")
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
        if value is not None and any(d == 0 or d < -1 for d in value):
            raise ValueError(f"reshape {value} must hold positive sizes or -1")
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
            raise Issues([(("python",), f"{self.python!r} is not `file.py:function` or `module:function`")])
        if self.keras_file is not None and not self.keras_file.endswith((".keras", ".h5")):
            raise Issues([(("keras_file",), f"{self.keras_file!r} must end in .keras or .h5")])
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("python", "saved_model", "keras_file") if getattr(self, k) is not None)

    @property
    def ref(self) -> str:
        return str(getattr(self, self.kind))

    @classmethod
    def from_arg(cls, arg: str) -> Source:
        """A command-line argument -> Source: a SavedModel folder, a .keras/.h5 file, or file.py:function /
        module:function."""
        if arg.endswith((".keras", ".h5")):
            return cls(keras_file=arg)
        if ":" in arg and not Path(arg).exists():
            return cls(python=arg)
        return cls(saved_model=arg)


# --------------------------------------------------------------------------------------------- batching


class QueuePolicy(_Base):
    timeout_action: Annotated[Literal["REJECT", "DELAY"], BeforeValidator(_upper, json_schema_input_type=str)] = (
        "REJECT"
    )
    default_timeout_microseconds: NonNegativeInt = 0
    allow_timeout_override: bool = False
    max_queue_size: NonNegativeInt = 0


class DynamicBatching(_Base):
    """Triton's dynamic batcher. `dynamic_batching: false` turns it off; absent = on when the model batches."""

    enabled: bool = True
    preferred_batch_size: list[PositiveInt] = Field(default_factory=list)
    max_queue_delay_microseconds: NonNegativeInt = 0
    preserve_ordering: bool = False
    priority_levels: NonNegativeInt = 0
    default_priority_level: NonNegativeInt = 0
    default_queue_policy: QueuePolicy | None = None
    priority_queue_policy: dict[int, QueuePolicy] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _priorities(self) -> DynamicBatching:
        found = _Collector()
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
    ] = "KIND_AUTO"
    count: PositiveInt = 1
    gpus: list[NonNegativeInt] | None = None
    profile: list[str] | None = Field(default=None, description="TensorRT optimization profiles (plans only).")
    name: str | None = None

    @model_validator(mode="after")
    def _gpus_need_gpu(self) -> InstanceGroup:
        if self.gpus is not None and self.kind != "KIND_GPU":
            raise Issues([(("gpus",), f"gpus is only allowed with kind KIND_GPU, not {self.kind}")])
        return self


class VersionPolicy(_Base):
    latest: PositiveInt | None = None
    all: bool | None = None
    specific: list[PositiveInt] | None = None

    @model_validator(mode="after")
    def _one(self) -> VersionPolicy:
        given = [k for k in ("latest", "all", "specific") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"version_policy needs exactly one of latest, all, specific; got {given or 'none'}")
        return self


class WarmupInput(_Base):
    data: Literal["zero", "random"] = "random"
    dims: list[int] | None = Field(default=None, description="Concrete dims; default: the input's, -1 -> 1.")
    file: str | None = Field(default=None, description="Raw little-endian data file (Triton input_data_file).")


class Warmup(_Base):
    name: str = Field(min_length=1)
    batch_size: PositiveInt = 1
    count: PositiveInt = 1
    inputs: dict[str, WarmupInput] = Field(
        default_factory=dict, description="Per input; inputs not named get random data of their dtype and dims."
    )


# --------------------------------------------------------------------------------------------- optimization


class TensorRTAccelerator(_Base):
    """Online TensorRT inside Triton's ONNX Runtime or TensorFlow backend (gpu_execution_accelerator)."""

    enabled: bool = True
    max_workspace_size_bytes: PositiveInt | None = None
    max_cached_engines: PositiveInt | None = Field(default=None, description="TensorFlow backend only.")
    minimum_segment_size: PositiveInt | None = Field(default=None, description="TensorFlow backend only.")


class GraphSpec(_Base):
    batch_size: NonNegativeInt = 0
    inputs: dict[str, list[int]] = Field(default_factory=dict)


class Optimization(_Base):
    tensorrt: Annotated[
        TensorRTAccelerator | None,
        BeforeValidator(_enabled_shorthand, json_schema_input_type=TensorRTAccelerator | bool | None),
    ] = None
    auto_mixed_precision: bool = Field(default=False, description="TensorFlow backend only; not with tensorrt.")
    cuda_graphs: bool = Field(default=False, description="TensorRT plans only.")
    graph_specs: list[GraphSpec] = Field(default_factory=list, description="TensorRT plans only.")
    input_pinned_memory: bool | None = None
    output_pinned_memory: bool | None = None


class TensorRTBuild(_Base):
    """How a TensorRT plan is built (target tensorrt)."""

    workspace_mib: PositiveInt = 1024
    opt_batch_size: PositiveInt | None = Field(default=None, description="Default: half of max_batch_size.")
    shapes: dict[str, dict[Literal["min", "opt", "max"], list[PositiveInt]]] = Field(
        default_factory=dict,
        description="Per input with variable dims: min/opt/max shapes without the batch dimension.",
    )
    timing_cache: bool = True


class TFTRTBuild(_Base):
    """TF-TRT conversion settings (target tftrt)."""

    minimum_segment_size: PositiveInt = 3
    max_workspace_size_bytes: PositiveInt = 1 << 30
    maximum_cached_engines: PositiveInt = 1
    profile_strategy: Literal["Range", "Optimal", "Range+Optimal", "ImplicitBatchModeCompatible"] = "Range"
    allow_build_at_runtime: bool = False


class Calibration(_Base):
    data: str = Field(description=".npz file with one array per input name (batch on axis 0).")
    batch_size: PositiveInt = 8
    max_batches: PositiveInt = 16


class Verify(_Base):
    enabled: bool = True
    atol: PositiveFloat | None = Field(default=None, description="Default by precision: 1e-4 fp32, 1e-2 fp16.")
    rtol: PositiveFloat | None = Field(default=None, description="Default by precision: 1e-3 fp32, 5e-2 fp16.")
    batch_sizes: list[PositiveInt] | None = Field(default=None, description="Default: 1, a middle one, max.")


class Thresholds(_Base):
    """Performance thresholds that make `repo-builder validate` fail."""

    p99_latency_ms: PositiveFloat | None = None
    min_throughput: PositiveFloat | None = Field(default=None, description="Inferences per second.")


class EnsembleStep(_Base):
    model: str = Field(min_length=1)
    version: int = -1
    input_map: dict[str, str] = Field(description="Step model's input name -> ensemble tensor name.")
    output_map: dict[str, str] = Field(description="Step model's output name -> ensemble tensor name.")


# --------------------------------------------------------------------------------------------- model


class ModelSpec(_Base):
    name: str = Field(description="Model name; also its folder in the repository.")
    source: Source | None = None
    target: Target = Field(description="Conversion target: " + ", ".join(TARGETS) + ".")
    versions: list[PositiveInt] = Field(default_factory=lambda: [1], min_length=1)
    max_batch_size: NonNegativeInt = Field(
        default=8, description="0 = the model does not batch and dims are the full shape."
    )
    signature: str = Field(default="serving_default", description="SavedModel signature to serve.")
    inputs: list[InputSpec] | None = Field(default=None, description="Optional when the signature gives them.")
    outputs: list[OutputSpec] | None = None
    precision: Precision = "fp32"
    opset: int = Field(default=17, ge=13, le=18, description="ONNX opset for tf2onnx (13..18).")
    python_runtime: Literal["onnxruntime", "tensorflow"] | None = Field(
        default=None, description="What the generated model.py runs (target python). Default onnxruntime."
    )
    dynamic_batching: Annotated[
        DynamicBatching | None,
        BeforeValidator(_enabled_shorthand, json_schema_input_type=DynamicBatching | bool | None),
    ] = None
    instance_groups: list[InstanceGroup] | None = None
    version_policy: VersionPolicy | None = None
    warmup: list[Warmup] = Field(default_factory=list)
    response_cache: bool = False
    optimization: Optimization | None = None
    parameters: dict[str, str] = Field(default_factory=dict)
    cc_model_filenames: dict[str, str] = Field(
        default_factory=dict, description="Compute capability (e.g. '8.6') -> plan file name (tensorrt)."
    )
    calibration: Calibration | None = None
    tensorrt: TensorRTBuild | None = None
    tftrt: TFTRTBuild | None = None
    steps: list[EnsembleStep] | None = Field(default=None, description="Ensemble steps (target ensemble).")
    verify: Annotated[Verify, BeforeValidator(_enabled_shorthand, json_schema_input_type=Verify | bool)] = Field(
        default_factory=Verify
    )
    validation: Thresholds = Field(default_factory=Thresholds)

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
    def _rules(self) -> ModelSpec:
        found = _Collector()
        platform = PLATFORMS[self.target]
        mbs = self.max_batch_size

        if self.target == "ensemble":
            if self.source is not None:
                found.add(("source",), "an ensemble has no source; it chains other models with steps")
            if not self.steps:
                found.add(("steps",), "an ensemble needs steps: [{model: NAME, input_map: {...}, output_map: {...}}]")
            for key in ("inputs", "outputs"):
                if not getattr(self, key):
                    found.add((key,), f"an ensemble needs its {key} listed (name, dtype, dims)")
            for key in ("instance_groups", "optimization", "warmup"):
                if getattr(self, key):
                    found.add((key,), f"an ensemble has no {key}; set it on the step models")
            if self.dynamic_batching is not None and self.dynamic_batching.enabled:
                found.add(("dynamic_batching",), "an ensemble has no dynamic batching; set it on the step models")
        else:
            if self.source is None:
                found.add(("source",), "source is missing; expected one of python, saved_model or keras_file")
            if self.steps is not None:
                found.add(("steps",), f"steps are only for target ensemble, not {self.target}")

        if len(set(self.versions)) != len(self.versions):
            found.add(("versions",), f"versions {self.versions} repeat a version")

        for key, tensors in (("inputs", self.inputs), ("outputs", self.outputs)):
            seen: set[str] = set()
            for i, t in enumerate(tensors or []):
                if t.name in seen:
                    found.add((key, i, "name"), f"{key[:-1]} name {t.name!r} is used twice")
                seen.add(t.name)

        db = self.dynamic_batching
        if db is not None and db.enabled:
            if mbs == 0:
                found.add(
                    ("dynamic_batching",),
                    "dynamic batching needs max_batch_size > 0; set max_batch_size or dynamic_batching: false",
                )
            else:
                for i, size in enumerate(db.preferred_batch_size):
                    if size > mbs:
                        found.add(
                            ("dynamic_batching", "preferred_batch_size", i),
                            f"{size} is larger than max_batch_size ({mbs}); each preferred size must be in 1..{mbs}",
                        )

        for i, group in enumerate(self.instance_groups or []):
            if platform.gpu_only and group.kind == "KIND_CPU":
                found.add(
                    ("instance_groups", i, "kind"),
                    f"target {self.target} runs only on a GPU; use KIND_GPU, or a CPU target (onnx, python"
                    f"{', savedmodel' if self.target == 'tftrt' else ''})",
                )
            if group.profile is not None and self.target != "tensorrt":
                found.add(("instance_groups", i, "profile"), "profile is only for target tensorrt (plans)")

        if self.precision == "int8":
            if self.target not in ("tftrt", "tensorrt"):
                found.add(("precision",), f"int8 is only for targets tftrt and tensorrt, not {self.target}")
            elif self.calibration is None:
                found.add(
                    ("precision",),
                    "int8 needs calibration data: add calibration: {data: calib.npz} (one array per input)",
                )
        elif self.precision == "fp16" and self.target not in ("tftrt", "tensorrt"):
            trt = self.optimization.tensorrt if self.optimization else None
            if trt is None or not trt.enabled:
                found.add(
                    ("precision",),
                    f"fp16 on target {self.target} needs the TensorRT accelerator "
                    "(optimization: {tensorrt: true}), or target tftrt/tensorrt",
                )
        if self.calibration is not None and self.precision != "int8":
            found.add(("calibration",), "calibration is only used with precision int8")

        opt = self.optimization
        if opt is not None:
            if opt.tensorrt is not None and self.target not in ("onnx", "savedmodel"):
                found.add(
                    ("optimization", "tensorrt"),
                    f"the TensorRT accelerator is for targets onnx and savedmodel, not {self.target}",
                )
            if opt.auto_mixed_precision:
                if self.target != "savedmodel":
                    found.add(("optimization", "auto_mixed_precision"), "is for target savedmodel only")
                elif opt.tensorrt is not None and opt.tensorrt.enabled:
                    found.add(("optimization", "auto_mixed_precision"), "cannot be combined with tensorrt")
            if opt.tensorrt is not None and self.target == "onnx":
                for key in ("max_cached_engines", "minimum_segment_size"):
                    if getattr(opt.tensorrt, key) is not None:
                        found.add(("optimization", "tensorrt", key), "is for the TensorFlow backend only")
            if (opt.cuda_graphs or opt.graph_specs) and self.target != "tensorrt":
                key = "cuda_graphs" if opt.cuda_graphs else "graph_specs"
                found.add(("optimization", key), f"CUDA graphs are for target tensorrt, not {self.target}")
            for i, gs in enumerate(opt.graph_specs):
                if mbs == 0 and gs.batch_size != 0:
                    found.add(
                        ("optimization", "graph_specs", i, "batch_size"),
                        "must be 0 when max_batch_size is 0",
                    )
                elif gs.batch_size > mbs:
                    found.add(
                        ("optimization", "graph_specs", i, "batch_size"),
                        f"{gs.batch_size} is larger than max_batch_size ({mbs})",
                    )

        for key, target in (("cc_model_filenames", "tensorrt"), ("tensorrt", "tensorrt"), ("tftrt", "tftrt")):
            if getattr(self, key) and self.target != target:
                found.add((key,), f"{key} is only for target {target}, not {self.target}")
        if self.python_runtime is not None and self.target != "python":
            found.add(("python_runtime",), f"python_runtime is only for target python, not {self.target}")

        input_names = {t.name for t in self.inputs or []}
        for i, w in enumerate(self.warmup):
            limit = max(mbs, 1)
            if w.batch_size > limit:
                found.add(
                    ("warmup", i, "batch_size"),
                    f"{w.batch_size} is larger than {'max_batch_size' if mbs else 'the non-batching size'} "
                    f"({limit}); warmup batch_size must be in 1..{limit}",
                )
            if self.inputs is not None:
                for name in w.inputs:
                    if name not in input_names:
                        found.add(
                            ("warmup", i, "inputs", name),
                            f"{name!r} is not an input of this model; inputs: {', '.join(sorted(input_names))}",
                        )

        if self.version_policy is not None and self.version_policy.specific is not None:
            for i, v in enumerate(self.version_policy.specific):
                if v not in self.versions:
                    found.add(("version_policy", "specific", i), f"version {v} is not in versions {self.versions}")

        if self.tensorrt is not None and self.inputs is not None:
            for name in self.tensorrt.shapes:
                if name not in input_names:
                    found.add(("tensorrt", "shapes", name), f"{name!r} is not an input of this model")

        found.raise_if_any()
        return self


# --------------------------------------------------------------------------------------------- triton


class TritonSettings(_Base):
    image_tag: str | None = Field(
        default=None,
        pattern=r"^\d\d\.\d\d$",
        description="NGC release (yy.mm). Default: the newest release that serves every model in the spec.",
    )
    http_port: int = Field(default=8000, ge=1, le=65535)
    grpc_port: int = Field(default=8001, ge=1, le=65535)
    metrics_port: int = Field(default=8002, ge=1, le=65535)
    bind_address: str = Field(default="127.0.0.1", description="Host address the published ports bind to.")
    shm_size: str = Field(default="1g", pattern=r"^\d+[bkmgBKMG]?$")
    model_control_mode: Literal["none", "poll", "explicit"] = "none"
    restricted_api_key_env: str = Field(
        default="TRITON_ADMIN_KEY",
        description="Environment variable holding the key for the model-repository and shared-memory APIs.",
    )
    prometheus: bool = Field(default=False, description="Add a Prometheus service scraping Triton's metrics.")
    cache_size_bytes: PositiveInt = Field(default=268435456, description="Response cache size (--cache-config).")

    @model_validator(mode="after")
    def _distinct_ports(self) -> TritonSettings:
        ports = {"http_port": self.http_port, "grpc_port": self.grpc_port, "metrics_port": self.metrics_port}
        found = _Collector()
        seen: dict[int, str] = {}
        for key, port in ports.items():
            if port in seen:
                found.add((key,), f"port {port} is already used by {seen[port]}; each port must differ")
            seen[port] = key
        found.raise_if_any()
        return self


class Spec(_Base):
    repository: str = Field(default="model_repository", description="Output folder, relative to the spec file.")
    triton: TritonSettings = Field(default_factory=TritonSettings)
    models: list[ModelSpec] = Field(min_length=1)

    _path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _cross_model(self) -> Spec:
        found = _Collector()
        first: dict[str, int] = {}
        for i, m in enumerate(self.models):
            if m.name in first:
                found.add(("models", i, "name"), duplicate_name_message(m.name, first[m.name]))
            else:
                first[m.name] = i
        by_name = {m.name: m for m in self.models}
        for i, m in enumerate(self.models):
            if m.target == "ensemble" and m.steps:
                _check_ensemble(m, i, by_name, found)
        found.raise_if_any()
        return self

    @model_validator(mode="after")
    def _deployable(self) -> Spec:
        """The deployment's rules, reported together: the pinned release serves every model, the
        bind address is an IP address, the admin key's variable is an environment variable name."""
        found = _Collector()
        for rule in (_release_serves_every_model, _bind_address_is_an_ip, _key_env_is_a_variable_name):
            problem = rule(self)
            if problem is not None:
                found.add(*problem)
        found.raise_if_any()
        return self

    @property
    def path(self) -> Path | None:
        return self._path

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


def _release_serves_every_model(spec: Spec) -> tuple[Loc, str] | None:
    """A pinned `triton.image_tag` after the TensorFlow backend's last release serves no savedmodel/tftrt model."""
    pinned = spec.triton.image_tag
    tf_models = [m for m in spec.models if PLATFORMS[m.target].tensorflow_backend]
    if pinned is None or not tf_models or releases.has_tensorflow_backend(pinned):
        return None
    last = releases.LAST_TENSORFLOW_BACKEND_RELEASE
    listed = "\n".join(f"  - {m.name} (target {m.target})" for m in tf_models)
    return ("triton", "image_tag"), (
        f"release {pinned} cannot serve {len(tf_models)} model{'s' if len(tf_models) != 1 else ''} "
        "of this spec: Triton's TensorFlow backend (targets savedmodel, tftrt) ends with release "
        f"{last}.\n"
        f"{listed}\n"
        "  Either change their target to onnx, tensorrt or python (python runs the SavedModel with "
        "TensorFlow in Triton's python backend),\n"
        f"  or set triton.image_tag to {last} or earlier (without image_tag the default is {last} "
        "for this spec)."
    )


def _bind_address_is_an_ip(spec: Spec) -> tuple[Loc, str] | None:
    bind = spec.triton.bind_address
    try:
        ipaddress.ip_address(bind)
    except ValueError:
        return ("triton", "bind_address"), (
            f"{bind!r} is not an IP address; use 127.0.0.1 (this host only, the default), "
            "0.0.0.0 (every interface) or one of this host's addresses"
        )
    return None


def _key_env_is_a_variable_name(spec: Spec) -> tuple[Loc, str] | None:
    """`triton.restricted_api_key_env` is a shell variable name (compose reads the key from it)."""
    name = spec.triton.restricted_api_key_env
    if name and (name[0].isalpha() or name[0] == "_") and all(c.isalnum() or c == "_" for c in name):
        return None
    return ("triton", "restricted_api_key_env"), (
        f"{name!r} is not an environment variable name; use letters, digits and _, e.g. TRITON_ADMIN_KEY"
    )


def duplicate_name_message(name: str, first: int) -> str:
    return f"model name {name!r} is already used by models[{first}]"


def _check_ensemble(m: ModelSpec, i: int, by_name: dict[str, ModelSpec], found: _Collector) -> None:
    """Steps name existing models and tensors; data flows from ensemble inputs to ensemble outputs."""
    available = {t.name for t in m.inputs or []}
    produced: set[str] = set()
    for s, step in enumerate(m.steps or []):
        loc: Loc = ("models", i, "steps", s)
        target = by_name.get(step.model)
        if target is None or step.model == m.name:
            known = ", ".join(sorted(n for n in by_name if n != m.name))
            found.add((*loc, "model"), f"{step.model!r} is not a model in this spec; models: {known}")
            continue
        if step.version != -1 and step.version not in target.versions:
            found.add(
                (*loc, "version"),
                f"version {step.version} of {step.model} is not built; its versions: "
                f"{', '.join(map(str, target.versions))} (or -1 for the latest)",
            )
        if 0 < target.max_batch_size < m.max_batch_size:
            # Triton refuses to load such an ensemble (core ensemble_utils.cc); a step model that does not
            # batch at all (max_batch_size 0) is allowed
            found.add(
                (*loc, "model"),
                f"{step.model} allows batches up to max_batch_size {target.max_batch_size}, less than "
                f"this ensemble's {m.max_batch_size}; expected the ensemble's max_batch_size <= "
                f"{target.max_batch_size}",
            )
        step_inputs = {t.name for t in target.inputs} if target.inputs is not None else None
        step_outputs = {t.name for t in target.outputs} if target.outputs is not None else None
        for model_input, tensor in step.input_map.items():
            if step_inputs is not None and model_input not in step_inputs:
                found.add(
                    (*loc, "input_map", model_input),
                    f"{model_input!r} is not an input of {step.model}; its inputs: {', '.join(sorted(step_inputs))}",
                )
            if tensor not in available:
                found.add(
                    (*loc, "input_map", model_input),
                    f"tensor {tensor!r} is neither an ensemble input nor produced by an earlier step; "
                    f"available: {', '.join(sorted(available))}",
                )
        for model_output, tensor in step.output_map.items():
            if step_outputs is not None and model_output not in step_outputs:
                found.add(
                    (*loc, "output_map", model_output),
                    f"{model_output!r} is not an output of {step.model}; "
                    f"its outputs: {', '.join(sorted(step_outputs))}",
                )
            available.add(tensor)
            produced.add(tensor)
    for o, name in enumerate(t.name for t in m.outputs or []):
        if name not in produced:
            found.add(("models", i, "outputs", o, "name"), f"ensemble output {name!r} is not produced by any step")


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
