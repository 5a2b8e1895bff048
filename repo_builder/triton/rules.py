"""Triton's own rules for a model configuration, checked on the parsed ModelConfig protobuf.

Sources: Triton server docs/user_guide/model_configuration.md, common/protobuf/model_config.proto and
core src/model_config_utils.cc (summarized in docs/TRITON_FACTS.md, "Triton's rules for a model configuration").
"""

from __future__ import annotations

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
    if bool(config.platform) == bool(config.backend) and config.platform != "ensemble":
        add("exactly one of platform and backend must be set")
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

    if is_ensemble:
        if config.instance_group:
            add("an ensemble has no instance_group")
        if not config.HasField("ensemble_scheduling") or not config.ensemble_scheduling.step:
            add("an ensemble needs ensemble_scheduling steps")
    for group in config.instance_group:
        if group.gpus and group.kind != pb.ModelInstanceGroup.KIND_GPU:
            add("instance_group gpus are only allowed with KIND_GPU")
        if group.profile and config.platform != "tensorrt_plan":
            add("instance_group profile is only for tensorrt_plan")
        if group.count < 0:  # 0 (unset) means Triton's default of 1
            add("instance_group count must be >= 0 (0 or unset means 1)")

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

    if config.cc_model_filenames and config.platform != "tensorrt_plan":
        add("cc_model_filenames is for tensorrt_plan only")
    vp = config.version_policy
    if vp.HasField("specific") and not vp.specific.versions:
        add("version_policy specific needs at least one version")
    if vp.HasField("latest") and vp.latest.num_versions < 1:
        add("version_policy latest needs num_versions >= 1")
    return problems
