"""Triton's own rules for a model configuration, checked on the parsed ModelConfig protobuf.

Sources: Triton server docs/user_guide/model_configuration.md, common/protobuf/model_config.proto and
core src/model_config_utils.cc (summarized in docs/TRITON_FACTS.md, "Triton's rules for a model configuration").
The rules the spec mirrors with located messages (reshape, ensembles) are pure functions here, shared by
spec/rules.py, spec/ensemble.py, the build's ensemble re-check and `check()`; their sentences quote Triton's
core.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repo_builder.errors import GeneratorBug

KNOWN_PLATFORMS = {
    "tensorflow_savedmodel",
    "tensorflow_graphdef",
    "onnxruntime_onnx",
    "tensorrt_plan",
    "ensemble",
    "pytorch_libtorch",
}
#: platform -> the backend Triton's core pairs it with (GetBackendTypeFromPlatform)
PLATFORM_BACKENDS = {
    "tensorflow_savedmodel": "tensorflow",
    "tensorflow_graphdef": "tensorflow",
    "onnxruntime_onnx": "onnxruntime",
    "tensorrt_plan": "tensorrt",
    "pytorch_libtorch": "pytorch",
}
TF_ACCELERATOR_KEYS = {
    "precision_mode",
    "max_cached_engines",
    "minimum_segment_size",
    "max_workspace_size_bytes",
    "trt_engine_cache_enable",
    "trt_engine_cache_path",
}
ORT_ACCELERATOR_KEYS = {
    "precision_mode",
    "max_workspace_size_bytes",
    "trt_max_partition_iterations",
    "trt_min_subgraph_size",
    "trt_engine_cache_enable",
    "trt_engine_cache_path",
}


def model_config_module() -> Any:
    """Triton's model_config_pb2 from tritonclient, without importing tritonclient.grpc's __init__
    (grpc, numpy and the client: ~0.2 s of start-up that `check` and `render` do not need)."""
    import importlib.util
    import sys

    name = "tritonclient.grpc.model_config_pb2"
    if name in sys.modules:
        return sys.modules[name]
    root = importlib.util.find_spec("tritonclient")
    locations = list(root.submodule_search_locations or []) if root is not None else []
    for folder in locations:
        path = Path(folder) / "grpc" / "model_config_pb2.py"
        if path.is_file():
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is not None and spec.loader is not None:
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                spec.loader.exec_module(module)
                return module
    from tritonclient.grpc import model_config_pb2  # the ordinary way, if the layout ever changes

    return model_config_pb2


def model_config_class() -> Any:
    return model_config_module().ModelConfig


def parse(text: str, origin: str = "config.pbtxt") -> Any:
    """Parse config.pbtxt text with Triton's ModelConfig; a failure is the generator's bug."""
    from google.protobuf import text_format

    try:
        return text_format.Parse(text, model_config_class()())
    except text_format.ParseError as e:
        raise GeneratorBug(f"{origin} does not parse as Triton's ModelConfig: {e}\n{text}") from e


def check(config: Any) -> list[str]:
    """Every rule the config breaks, as readable sentences; empty when Triton would accept it."""
    pb = model_config_module()
    problems: list[str] = []
    add = problems.append
    mbs = config.max_batch_size
    is_ensemble = config.platform == "ensemble"

    if not config.name:
        add("name is empty")
    if not config.platform and not config.backend:
        add("must specify 'platform' or 'backend'")
    elif (
        # Triton takes a known backend only with its own platform (an unknown one, e.g. python, with any)
        config.platform not in ("", "ensemble")
        and config.backend in PLATFORM_BACKENDS.values()
        and PLATFORM_BACKENDS.get(config.platform) != config.backend
    ):
        add(f"unexpected 'platform' and 'backend' pair, got:{config.platform}, {config.backend}")
    if config.platform and config.platform not in KNOWN_PLATFORMS:
        add(f"unknown platform {config.platform!r}")
    if mbs < 0:
        add("max_batch_size must be >= 0")

    for kind, tensors in (("input", config.input), ("output", config.output)):
        if not tensors and not is_ensemble and config.backend != "python":
            add(f"no {kind} tensors")
        names: set[str] = set()
        for t in tensors:
            if t.name in names:
                add(f"{kind} {t.name!r} is declared twice")
            names.add(t.name)
            if len(t.dims) == 0:
                add(f"{kind} {t.name!r}: dims must have rank >= 1 (use dims [1] with reshape [] for a scalar)")
            for d in t.dims:
                if d == 0 or d < -1:
                    add(f"{kind} {t.name!r}: dim {d} must be positive or -1")
            if t.data_type == pb.TYPE_INVALID:
                add(f"{kind} {t.name!r}: data_type is not set")
            if t.HasField("reshape"):
                problem = reshape_problem(list(t.dims), list(t.reshape.shape), mbs)
                if problem is not None:
                    add(f"model {kind} '{t.name}' " + problem)

    if config.HasField("dynamic_batching"):
        db = config.dynamic_batching
        if mbs == 0:
            add("dynamic_batching needs max_batch_size > 0")
        for size in db.preferred_batch_size:
            if not 0 < size <= mbs:
                add(f"preferred_batch_size {size} is outside 1..{mbs}")
        if db.priority_levels:
            if not 1 <= db.default_priority_level <= db.priority_levels:
                add(f"default_priority_level {db.default_priority_level} is outside 1..{db.priority_levels}")
            for level in db.priority_queue_policy:
                if not 1 <= level <= db.priority_levels:
                    add(f"priority_queue_policy level {level} is outside 1..{db.priority_levels}")
        if db.preserve_ordering:
            if db.priority_levels > 1:
                add("Only one priority level is allowed when 'preserve_ordering' is true")
            policies = [db.default_queue_policy, *db.priority_queue_policy.values()]
            if any(
                p.default_timeout_microseconds != 0 and p.timeout_action == pb.ModelQueuePolicy.DELAY for p in policies
            ):
                add("Queue policy can not have DELAY as timeout action when 'preserve_ordering' is true")

    if is_ensemble:
        if config.backend:
            add(f"Ensemble model '{config.name}' must have platform type 'ensemble' and empty backend type")
        if config.instance_group:
            add("an ensemble has no instance_group")
        if config.HasField("optimization"):
            add(f"optimization should not be specified for ensemble '{config.name}'")
        if config.model_warmup:
            add(f"model_warmup can not be specified for ensemble '{config.name}'")
        if not config.HasField("ensemble_scheduling") or not config.ensemble_scheduling.step:
            add("an ensemble needs ensemble_scheduling steps")
        else:
            flow = ensemble_flow(
                config.name, [t.name for t in config.input], [t.name for t in config.output], step_maps(config)
            )
            problems.extend(f"{where_text(w)}: {message}" for w, message in flow)
    for group in config.instance_group:
        if group.gpus and group.kind in (pb.ModelInstanceGroup.KIND_CPU, pb.ModelInstanceGroup.KIND_MODEL):
            kind = pb.ModelInstanceGroup.Kind.Name(group.kind)
            add(f"instance group {group.name} has kind {kind} but specifies one or more GPUs")
        if group.profile and config.platform != "tensorrt_plan":
            add("instance_group profile is only for tensorrt_plan")
        if group.count < 0:  # 0 (unset) means Triton's default of 1
            add("instance_group count must be >= 0 (0 or unset means 1)")
        for gpu in group.gpus:
            if gpu < 0:
                add(f"instance group {group.name} specifies invalid or unsupported gpu id {gpu}")

    opt = config.optimization
    accelerators = list(opt.execution_accelerators.gpu_execution_accelerator)
    accelerator_names = [a.name for a in accelerators]
    for a in accelerators:
        if a.name == "tensorrt":
            allowed = TF_ACCELERATOR_KEYS if config.platform.startswith("tensorflow") else ORT_ACCELERATOR_KEYS
            if config.platform not in ("onnxruntime_onnx", "tensorflow_savedmodel", "tensorflow_graphdef"):
                add(f"the tensorrt accelerator is not supported by {config.platform or config.backend}")
            for key in a.parameters:
                if key not in allowed:
                    add(f"tensorrt accelerator parameter {key!r} is not one of {sorted(allowed)}")
            mode = a.parameters.get("precision_mode")
            if mode is not None and mode not in ("FP32", "FP16", "INT8"):
                add(f"precision_mode {mode!r} is not FP32, FP16 or INT8")
        elif a.name == "auto_mixed_precision" and not config.platform.startswith("tensorflow"):
            add("auto_mixed_precision is for the TensorFlow backend only")
    if "tensorrt" in accelerator_names and "auto_mixed_precision" in accelerator_names:
        add("auto_mixed_precision cannot be combined with tensorrt")
    if opt.HasField("cuda"):
        if config.platform != "tensorrt_plan" and (opt.cuda.graphs or opt.cuda.graph_spec):
            add("CUDA graphs are for tensorrt_plan only")
        for spec in opt.cuda.graph_spec:
            if mbs == 0 and spec.batch_size != 0:
                add("a graph_spec batch_size must be 0 when max_batch_size is 0")
            elif spec.batch_size > mbs:
                add(f"graph_spec batch_size {spec.batch_size} is larger than max_batch_size {mbs}")

    input_names = {t.name for t in config.input}
    required = {t.name for t in config.input if not t.optional}
    for w in config.model_warmup:
        if w.batch_size < 1:
            add(f"model_warmup {w.name!r}: batch_size must be >= 1")
        if mbs == 0 and w.batch_size != 1:
            add(f"model_warmup {w.name!r}: batch_size must be 1 when max_batch_size is 0")
        elif mbs and w.batch_size > mbs:
            add(f"model_warmup {w.name!r}: batch_size {w.batch_size} is larger than max_batch_size {mbs}")
        missing = required - set(w.inputs)
        if missing:
            add(f"model_warmup {w.name!r}: no data for inputs {sorted(missing)}")
        for key in w.inputs:
            if key not in input_names:
                add(f"model_warmup {w.name!r}: {key!r} is not an input")
        declared = {t.name: list(t.dims) for t in config.input}
        for key, value in w.inputs.items():
            if key in declared:
                problem = warmup_shape_problem(
                    config.name, key, declared[key], list(value.dims), mbs, max(w.batch_size, 1)
                )
                if problem is not None:
                    add(problem)

    if config.cc_model_filenames and config.platform != "tensorrt_plan":
        add("cc_model_filenames is for tensorrt_plan only")
    vp = config.version_policy
    if vp.HasField("specific") and not vp.specific.versions:
        add("version_policy specific needs at least one version")
    if vp.HasField("latest") and vp.latest.num_versions < 1:
        add("version_policy latest needs num_versions >= 1")
    return problems


# --------------------------------------------------------------------------------------------- shapes

#: Triton's variable-size dimension
WILDCARD = -1


def element_count(dims: Iterable[int]) -> int:
    """Triton's GetElementCount: -1 when any dim is variable, 0 for no dims, else the product."""
    count, first = 0, True
    for d in dims:
        if d == WILDCARD:
            return WILDCARD
        count, first = (d, False) if first else (count * d, False)
    return count


def _segments(dims: Iterable[int]) -> list[int]:
    """Element counts of the runs between variable (-1) dims: [2, 4, -1, 6] -> [8, 6]."""
    found, current = [], 1
    for d in dims:
        if d == WILDCARD:
            found.append(current)
            current = 1
        else:
            current *= d
    return [*found, current]


def reshape_problem(dims: Sequence[int], reshape: Sequence[int], max_batch_size: int) -> str | None:
    """What Triton's core (ValidateIOShape) says of a tensor's `reshape`, without its "model input 'x' "
    prefix; None when it is accepted."""
    if not reshape and max_batch_size == 0:
        return "cannot have empty reshape for non-batching model as scalar tensors are not supported"
    if any(d < 1 and d != WILDCARD for d in reshape):
        return "reshape dimensions must be integer >= 1, or -1 to indicate a variable-size dimension"
    dims_size, reshape_size = element_count(dims), element_count(reshape)
    # an empty reshape (a scalar per batch item) needs dims holding exactly one element
    if dims_size != reshape_size and (reshape_size != 0 or dims_size != 1):
        return "has different size for dims and reshape"
    if dims_size == WILDCARD:
        a, b = _segments(dims), _segments(reshape)
        if len(a) != len(b):
            return "has different number of variable-size dimensions for dims and reshape"
        if a != b:
            return "has different size for dims and reshape"
    return None


def warmup_shape_problem(
    model: str, name: str, dims: Sequence[int], warmup_dims: Sequence[int], max_batch_size: int, batch_size: int
) -> str | None:
    """What Triton says of a warmup input's dims (measured with tritonserver 2.51: the warmup request's
    shape is checked like any request's, so each dim matches the input's unless that one is -1; a 0
    there passes), or None."""
    if WILDCARD in warmup_dims:
        return f"warmup setting expects all variable-size dimensions are specified for input '{name}'"
    if len(warmup_dims) != len(dims) or any(d != WILDCARD and d != w for d, w in zip(dims, warmup_dims, strict=False)):
        lead_expected, lead_got = ([WILDCARD], [batch_size]) if max_batch_size > 0 else ([], [])
        return (
            f"unexpected shape for input '{name}' for model '{model}'. Expected "
            f"{dims_text([*lead_expected, *dims])}, got {dims_text([*lead_got, *warmup_dims])}"
        )
    if any(w < 0 for w in warmup_dims):
        return f"warmup input '{name}' dims {list(warmup_dims)} must be sizes >= 0"
    return None


def dims_text(dims: Iterable[int]) -> str:
    """Triton's DimsListToString: [-1,3,224]."""
    return "[" + ",".join(str(d) for d in dims) + "]"


# --------------------------------------------------------------------------------------------- ensembles

#: where in an ensemble a problem is: ("steps", 0, "input_map", "x"), ("outputs", 1, "name") ...
Where = tuple[str | int, ...]


@dataclass(frozen=True)
class TensorInfo:
    """A tensor as an ensemble sees it: Triton's short dtype (FP32), dims (an ensemble's own tensors: the
    reshape when given, as Triton's ValidateEnsembleConfig takes them)."""

    dtype: str
    dims: tuple[int, ...]
    optional: bool = False


@dataclass(frozen=True)
class ModelIO:
    """The inputs and outputs of a model and whether it batches."""

    max_batch_size: int
    inputs: dict[str, TensorInfo] = field(default_factory=dict)
    outputs: dict[str, TensorInfo] = field(default_factory=dict)


@dataclass(frozen=True)
class StepMap:
    model: str
    input_map: dict[str, str]
    output_map: dict[str, str]


@dataclass
class _Node:
    written: tuple[int, str] | None = None  # (step, output_map key) that writes it
    readers: list[tuple[int, str]] = field(default_factory=list)  # (step, input_map key) that read it
    prev: list[str] = field(default_factory=list)
    next: list[str] = field(default_factory=list)
    ready: bool = False


def _compare_dims(a: Sequence[int], b: Sequence[int]) -> bool:
    """Triton's CompareDimsWithWildcard: the same rank, each pair equal or one of them -1."""
    return len(a) == len(b) and all(x == y or WILDCARD in (x, y) for x, y in zip(a, b, strict=True))


def ensemble_flow(
    name: str, inputs: Sequence[str], outputs: Sequence[str], steps: Sequence[StepMap]
) -> list[tuple[Where, str]]:
    """The ensemble's data flow, as Triton's core checks it without the step models (BuildEnsembleGraph,
    ValidateEnsembleSchedulingConfig): each step maps inputs and outputs, each tensor is written once,
    every output is reachable from the inputs, and every tensor but the outputs is read."""
    found: list[tuple[Where, str]] = []
    graph: dict[str, _Node] = {}
    for s, step in enumerate(steps):
        if not step.input_map:
            found.append(
                (
                    ("steps", s, "input_map"),
                    f"must specify 'input_map' in step {s} of ensemble '{name}'; map each input of "
                    f"{step.model} to an ensemble tensor",
                )
            )
        if not step.output_map:
            found.append(
                (
                    ("steps", s, "output_map"),
                    f"must specify 'output_map' in step {s} of ensemble '{name}'; map the outputs of "
                    f"{step.model} that later steps or the ensemble's outputs use",
                )
            )
        written = []
        for key, tensor in step.output_map.items():
            node = graph.setdefault(tensor, _Node())
            if node.written is not None:
                first = node.written[0]
                found.append(
                    (
                        ("steps", s, "output_map", key),
                        f"ensemble tensor '{tensor}' can appear in an output map only once for ensemble "
                        f"'{name}' step {s}; step {first} ({steps[first].model}) already writes it: give this "
                        "output its own tensor name",
                    )
                )
            else:
                node.written = (s, key)
            written.append(tensor)
        for key, tensor in step.input_map.items():
            node = graph.setdefault(tensor, _Node())
            node.readers.append((s, key))
            for out in written:
                graph[out].prev.append(tensor)
                node.next.append(out)
    queue = []
    for i, tensor in enumerate(inputs):
        if tensor not in graph:
            found.append(
                (
                    ("inputs", i, "name"),
                    f"ensemble input '{tensor}' for ensemble '{name}' is not used; map it in a step's "
                    "input_map, or remove it from the inputs",
                )
            )
            continue
        graph[tensor].ready = True
        queue.append(tensor)
    while queue:
        current = queue.pop(0)
        for nxt in graph[current].next:
            node = graph[nxt]
            if not node.ready and all(graph[p].ready for p in node.prev):
                node.ready = True
                queue.append(nxt)
    known = ", ".join(sorted({*inputs, *(t for t, n in graph.items() if n.written is not None)}))
    unconnected = [t for t, n in graph.items() if not n.ready and n.written is None and t not in inputs]
    for tensor in unconnected:
        for s, key in graph[tensor].readers:
            found.append(
                (
                    ("steps", s, "input_map", key),
                    f"tensor '{tensor}' is neither an ensemble input nor produced by any step (Triton: ensemble "
                    f"tensor '{tensor}' is unused in ensemble '{name}'); available: {known}",
                )
            )
    for o, tensor in enumerate(outputs):
        sink = graph.get(tensor)
        if sink is None or sink.written is None:
            if tensor not in inputs:
                found.append(
                    (
                        ("outputs", o, "name"),
                        f"ensemble output '{tensor}' is not produced by any step (Triton: ensemble output "
                        f"'{tensor}' for ensemble '{name}' is not used); map a step's output to it in an "
                        "output_map",
                    )
                )
        elif not sink.ready and not unconnected:
            found.append(
                (
                    ("outputs", o, "name"),
                    f"output '{tensor}' for ensemble '{name}' is not written: it depends on itself through "
                    "the steps (a cycle), so no step can ever run",
                )
            )
    for tensor, node in graph.items():
        if tensor in outputs or node.written is None:
            continue
        s, key = node.written
        if not node.ready:
            if not unconnected:
                found.append(
                    (
                        ("steps", s, "output_map", key),
                        f"ensemble tensor '{tensor}' is unused in ensemble '{name}': it depends on itself "
                        "through the steps (a cycle), so it is never ready",
                    )
                )
        elif not node.next:
            found.append(
                (
                    ("steps", s, "output_map", key),
                    f"ensemble tensor '{tensor}' is unused in ensemble '{name}': no step reads it and it is "
                    f"not an ensemble output; remove it from this output_map, or add it to the outputs",
                )
            )
    return found


def ensemble_mapping(
    name: str, ensemble: ModelIO, steps: Sequence[StepMap], models: Mapping[str, ModelIO | None]
) -> list[tuple[Where, str]]:
    """The ensemble against its step models, as Triton's core checks it when it loads the ensemble
    (ValidateEnsembleConfig, ValidateTensorMapping, ValidateTensorConsistency): batch sizes, every
    mapped name exists, every required input is mapped, and each ensemble tensor has one dtype and a
    compatible shape wherever it is used. A step whose model is None (tensors unknown yet) is skipped."""
    found: list[tuple[Where, str]] = []
    batching = ensemble.max_batch_size > 0
    # ensemble tensor -> (model it is inferred from, dtype, dims, full dims)
    seen: dict[str, tuple[str, str, tuple[int, ...], tuple[int, ...]]] = {}

    def full(dims: tuple[int, ...], batches: bool) -> tuple[int, ...]:
        return (WILDCARD, *dims) if batches else dims

    for t, info in (*ensemble.inputs.items(), *ensemble.outputs.items()):
        seen.setdefault(t, (name, info.dtype, info.dims, full(info.dims, batching)))

    def consistent(where: Where, tensor: str, model: str, info: TensorInfo, batches: bool) -> None:
        mine = (model, info.dtype, info.dims, full(info.dims, batches))
        other = seen.setdefault(tensor, mine)
        if other is mine:
            return
        prefix = f"in ensemble {name}, ensemble tensor {tensor}: "
        if other[1] != info.dtype:
            found.append(
                (
                    where,
                    f"{prefix}inconsistent data type: TYPE_{other[1]} is inferred from model {other[0]} while "
                    f"TYPE_{info.dtype} is inferred from model {model}; a tensor joined across steps has one dtype",
                )
            )
        elif not _compare_dims(other[2], info.dims) and not _compare_dims(other[3], mine[3]):
            found.append(
                (
                    where,
                    f"{prefix}inconsistent shape: {dims_text(other[3])} is inferred from model {other[0]} "
                    f"while {dims_text(mine[3])} is inferred from model {model}; a tensor joined across steps "
                    "has one shape (-1 matches any size)",
                )
            )

    for s, step in enumerate(steps):
        io = models.get(step.model)
        if io is None:
            continue
        if io.max_batch_size != 0 and io.max_batch_size < ensemble.max_batch_size:
            found.append(
                (
                    ("steps", s, "model"),
                    f"ensemble {name} allows maximum batch size {ensemble.max_batch_size}, but it contains model "
                    f"{step.model} which only allows maximum batch size to be {io.max_batch_size}; expected the "
                    f"ensemble's max_batch_size <= {io.max_batch_size}",
                )
            )
        step_batches = io.max_batch_size > 0
        for key, tensor in step.input_map.items():
            if key not in io.inputs:
                found.append(
                    (
                        ("steps", s, "input_map", key),
                        f"in ensemble {name}, ensemble tensor {tensor} is mapping to non-existing input {key} in "
                        f"model {step.model}; its inputs: {', '.join(io.inputs)}",
                    )
                )
        for key, info in io.inputs.items():
            if key in step.input_map:
                consistent(("steps", s, "input_map", key), step.input_map[key], step.model, info, step_batches)
            elif not info.optional:
                found.append(
                    (
                        ("steps", s, "input_map"),
                        f"in ensemble {name}, input {key} in model {step.model} is not mapped to any ensemble "
                        f"tensors; add `{key}: <tensor>` to this step's input_map",
                    )
                )
        for key, tensor in step.output_map.items():
            if key not in io.outputs:
                found.append(
                    (
                        ("steps", s, "output_map", key),
                        f"in ensemble {name}, ensemble tensor {tensor} is mapped from non-existing output {key} "
                        f"in model {step.model}; its outputs: {', '.join(io.outputs)}",
                    )
                )
            else:
                consistent(("steps", s, "output_map", key), tensor, step.model, io.outputs[key], step_batches)
    return found


def ensemble_cycle(start: str, steps_of: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A path start -> ... -> start through ensembles' steps (`steps_of`: ensemble -> its step models), or
    None. Triton refuses it: "circular dependency between ensembles"."""
    path: list[str] = [start]
    done: set[str] = set()

    def visit(name: str) -> bool:
        for step in steps_of.get(name, ()):
            if step == start:
                path.append(step)
                return True
            if step in done or step in path or step not in steps_of:
                continue
            path.append(step)
            if visit(step):
                return True
            path.pop()
            done.add(step)
        return False

    return path if visit(start) else None


def cycle_text(path: Sequence[str]) -> str:
    """Triton's words for a cycle: circular dependency between ensembles: a -> ... -> b -> a."""
    return f"circular dependency between ensembles: {path[0]} -> ... -> {path[-2]} -> {path[0]}"


def model_io(config: Any, own: bool = False) -> ModelIO:
    """The inputs and outputs of a parsed ModelConfig as an ensemble sees them: dims as declared, or
    with `own` (the ensemble's own tensors) the reshape when given."""
    pb = model_config_module()

    def info(t: Any, optional: bool) -> TensorInfo:
        dims = tuple(t.reshape.shape) if own and t.HasField("reshape") else tuple(t.dims)
        return TensorInfo(pb.DataType.Name(t.data_type).removeprefix("TYPE_"), dims, optional)

    return ModelIO(
        config.max_batch_size,
        {t.name: info(t, t.optional) for t in config.input},
        {t.name: info(t, False) for t in config.output},
    )


def step_maps(config: Any) -> list[StepMap]:
    return [
        # sorted: a protobuf map has no order of its own
        StepMap(s.model_name, dict(sorted(s.input_map.items())), dict(sorted(s.output_map.items())))
        for s in config.ensemble_scheduling.step
    ]


def where_text(where: Where) -> str:
    """("steps", 0, "input_map", "x") -> steps[0] -> input_map -> x"""
    parts: list[str] = []
    for item in where:
        if isinstance(item, int) and parts:
            parts[-1] += f"[{item}]"
        else:
            parts.append(str(item))
    return " -> ".join(parts)


def check_ensemble(config: Any, steps: Mapping[str, Any]) -> list[str]:
    """An ensemble config against the configs of its step models (`steps`: model name -> parsed
    ModelConfig; a step not in it is skipped), as Triton checks it at load."""
    models = {k: model_io(v) for k, v in steps.items()}
    found = ensemble_mapping(config.name, model_io(config, own=True), step_maps(config), models)
    return [f"{where_text(w)}: {message}" for w, message in found]
