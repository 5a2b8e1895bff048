"""The blocks a model entry of the spec is made of, besides its tensors: where the model comes from
(`Source`), Triton's config settings (dynamic batching, instance groups, version policy, warmup,
optimization), the build's options (tensorrt, tftrt, calibration, verify, validation) and an ensemble's
steps. `ModelSpec` (spec/models.py) holds them; every public name here is importable from models.py too.

Also here, shared by every spec model: `_Base` (frozen, unknown keys forbidden), the `key: true|false`
shorthand and the widths of Triton's integer config fields.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from repo_builder.spec.problems import Issues


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


#: characters a POSIX shell gives a meaning to (instance group names, see InstanceGroup._group_name)
SHELL_SPECIAL = frozenset("\"'\\`$;&|()<>*?[]{}~#!")

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
