"""Compare a generated config.pbtxt with the config a server loaded, field by field.

Started with --disable-auto-complete-config, Triton still fills in a few fields the generator may
leave empty. Only these are accepted, each only when the generated value is empty and the served
value is exactly what Triton fills in:
  * version_policy: latest { num_versions: 1 } (Triton's documented default)
  * instance_group: one group when none is written; per group the name (<model>_<i>),
    count 1 when 0, the kind when KIND_AUTO (Triton resolves it to CPU or GPU), and the gpus of a GPU
    group that names none (Triton places it on every GPU it sees: `gpus: [0]` on a one-GPU host)
  * optimization.input_pinned_memory / output_pinned_memory { enable: true } (defaults)
  * backend from platform (onnxruntime_onnx -> onnxruntime, ...), platform from backend
  * default_model_filename: the backend's default file name
  * runtime: the backend library Triton picked
  * dynamic_batching.preferred_batch_size: [max_batch_size] when none is written (Triton's model
    config normalization; measured on the 2.51 server even with --disable-auto-complete-config)
Everything else must be equal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google.protobuf.message import Message
    from tritonclient.grpc.model_config_pb2 import ModelConfig

PLATFORM_BACKEND: dict[str, str] = {
    "tensorflow_savedmodel": "tensorflow",
    "tensorflow_graphdef": "tensorflow",
    "onnxruntime_onnx": "onnxruntime",
    "tensorrt_plan": "tensorrt",
    "pytorch_libtorch": "pytorch",
}
DEFAULT_FILENAMES = {"model.py", "model.onnx", "model.savedmodel", "model.plan", "model.graphdef", "model.pt"}


def with_server_defaults(expected: ModelConfig, served: ModelConfig) -> tuple[ModelConfig, list[str]]:
    """A copy of `expected` with the fields Triton fills in taken from `served`; and what was filled."""
    from tritonclient.grpc.model_config_pb2 import ModelConfig, ModelInstanceGroup

    filled: list[str] = []
    exp = ModelConfig()
    exp.CopyFrom(expected)
    if not exp.HasField("version_policy") and served.version_policy.latest.num_versions == 1:
        exp.version_policy.latest.num_versions = 1
        filled.append("version_policy")
    if not exp.instance_group and len(served.instance_group) == 1 and exp.platform != "ensemble":
        exp.instance_group.add().CopyFrom(served.instance_group[0])
        filled.append("instance_group")
    for i, (group, got) in enumerate(zip(exp.instance_group, served.instance_group, strict=False)):
        if not group.name and got.name:
            group.name = got.name
            filled.append(f"instance_group[{i}].name")
        if group.count == 0 and got.count == 1:
            group.count = 1
            filled.append(f"instance_group[{i}].count")
        if group.kind == ModelInstanceGroup.KIND_AUTO and got.kind in (
            ModelInstanceGroup.KIND_CPU,
            ModelInstanceGroup.KIND_GPU,
        ):
            group.kind = got.kind
            filled.append(f"instance_group[{i}].kind")
        kind = group.kind if group.kind != ModelInstanceGroup.KIND_AUTO else got.kind
        if kind == ModelInstanceGroup.KIND_GPU and not group.gpus and got.gpus:
            group.gpus.extend(got.gpus)  # a GPU group that names no GPUs runs on every GPU of the server
            filled.append(f"instance_group[{i}].gpus")
    if served.HasField("optimization"):
        for pinned in ("input_pinned_memory", "output_pinned_memory"):
            if not exp.optimization.HasField(pinned) and getattr(served.optimization, pinned).enable:
                getattr(exp.optimization, pinned).enable = True
                filled.append(f"optimization.{pinned}")
    if not exp.backend and served.backend and PLATFORM_BACKEND.get(exp.platform) == served.backend:
        exp.backend = served.backend
        filled.append("backend")
    if not exp.platform and served.platform and PLATFORM_BACKEND.get(served.platform) == exp.backend:
        exp.platform = served.platform
        filled.append("platform")
    if not exp.default_model_filename and served.default_model_filename in DEFAULT_FILENAMES:
        exp.default_model_filename = served.default_model_filename
        filled.append("default_model_filename")
    if (
        exp.HasField("dynamic_batching")
        and not exp.dynamic_batching.preferred_batch_size
        and list(served.dynamic_batching.preferred_batch_size) == [exp.max_batch_size]
    ):
        exp.dynamic_batching.preferred_batch_size.append(exp.max_batch_size)
        filled.append("dynamic_batching.preferred_batch_size")
    if not exp.runtime and served.runtime:
        exp.runtime = served.runtime
        filled.append("runtime")
    return exp, filled


def _is_repeated(field: Any) -> bool:
    flag = getattr(field, "is_repeated", None)
    return bool(flag) if flag is not None else field.label == field.LABEL_REPEATED


def _scalar(field: Any, value: Any) -> str:
    if field.enum_type is not None:
        number = value
        entry = field.enum_type.values_by_number.get(number)
        return entry.name if entry is not None else str(number)
    return repr(value)


def _short(message: Message) -> str:
    from google.protobuf import text_format

    return "{ " + text_format.MessageToString(message, as_one_line=True) + " }"


def diff(expected: Message, served: Message, path: str = "") -> list[str]:
    """Every difference as `path: generated X, served Y`."""
    out: list[str] = []
    for field in expected.DESCRIPTOR.fields:
        name = field.name
        where = f"{path}.{name}" if path else name
        a, b = getattr(expected, name), getattr(served, name)
        is_message = field.message_type is not None
        if is_message and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            for key in sorted(set(a) | set(b), key=str):
                at = f"{where}[{key!r}]"
                if key not in b:
                    out.append(f"{at}: generated {_describe(value_field, a[key])}, not served")
                elif key not in a:
                    out.append(f"{at}: not generated, served {_describe(value_field, b[key])}")
                elif value_field.message_type is not None:
                    out.extend(diff(a[key], b[key], at))
                elif a[key] != b[key]:
                    out.append(f"{at}: generated {_scalar(value_field, a[key])}, served {_scalar(value_field, b[key])}")
        elif _is_repeated(field):
            if is_message:
                for i in range(max(len(a), len(b))):
                    at = f"{where}[{i}]"
                    if i >= len(b):
                        out.append(f"{at}: generated {_short(a[i])}, not served")
                    elif i >= len(a):
                        out.append(f"{at}: not generated, served {_short(b[i])}")
                    else:
                        out.extend(diff(a[i], b[i], at))
            elif list(a) != list(b):
                out.append(
                    f"{where}: generated [{', '.join(_scalar(field, v) for v in a)}], "
                    f"served [{', '.join(_scalar(field, v) for v in b)}]"
                )
        elif is_message:
            has_a, has_b = expected.HasField(name), served.HasField(name)
            if has_a and not has_b and field.containing_oneof is not None:
                out.append(f"{where}: generated {_short(a)}, not served")
            elif has_b and not has_a and field.containing_oneof is not None:
                out.append(f"{where}: not generated, served {_short(b)}")
            elif has_a or has_b:
                out.extend(diff(a, b, where))
        elif a != b:
            out.append(f"{where}: generated {_scalar(field, a)}, served {_scalar(field, b)}")
    return out


def _describe(field: Any, value: Any) -> str:
    return _short(value) if field.message_type is not None else _scalar(field, value)


def compare(expected: ModelConfig, served: ModelConfig) -> tuple[list[str], list[str]]:
    """(differences, fields accepted as filled in by the server)."""
    normalized, filled = with_server_defaults(expected, served)
    return diff(normalized, served), filled
