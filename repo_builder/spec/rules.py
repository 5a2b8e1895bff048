"""The rules of one model entry that involve several fields, one function per concern, and the ensemble check.

`ModelSpec` runs every rule in `MODEL_RULES`, in order, on itself; each rule adds its problems (located
relative to the model) to a shared `Issues`, so that one load reports all of them. `check_ensemble` needs
the whole spec (the step models) and is run by `Spec`. The models are seen here only for typing:
spec/models.py imports this module, not the other way round.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING

from repo_builder.spec.problems import Issues, Loc
from repo_builder.triton import releases
from repo_builder.triton.platforms import PLATFORMS

if TYPE_CHECKING:
    from repo_builder.spec.models import ModelSpec, Spec

Rule = Callable[["ModelSpec", Issues], None]


def ensemble_or_source(m: ModelSpec, found: Issues) -> None:
    """An ensemble chains steps and lists its tensors; every other target has a source and no steps."""
    if m.target == "ensemble":
        if m.source is not None:
            found.add(("source",), "an ensemble has no source; it chains other models with steps")
        if not m.steps:
            found.add(("steps",), "an ensemble needs steps: [{model: NAME, input_map: {...}, output_map: {...}}]")
        for key in ("inputs", "outputs"):
            if not getattr(m, key):
                found.add((key,), f"an ensemble needs its {key} listed (name, dtype, dims)")
        for key in ("instance_groups", "optimization", "warmup"):
            if getattr(m, key):
                found.add((key,), f"an ensemble has no {key}; set it on the step models")
        if m.dynamic_batching is not None and m.dynamic_batching.enabled:
            found.add(("dynamic_batching",), "an ensemble has no dynamic batching; set it on the step models")
    else:
        if m.source is None:
            found.add(("source",), "source is missing; expected one of python, saved_model or keras_file")
        if m.steps is not None:
            found.add(("steps",), f"steps are only for target ensemble, not {m.target}")


def distinct_versions(m: ModelSpec, found: Issues) -> None:
    if len(set(m.versions)) != len(m.versions):
        found.add(("versions",), f"versions {m.versions} repeat a version")


def distinct_tensor_names(m: ModelSpec, found: Issues) -> None:
    for key, tensors in (("inputs", m.inputs), ("outputs", m.outputs)):
        seen: set[str] = set()
        for i, t in enumerate(tensors or []):
            if t.name in seen:
                found.add((key, i, "name"), f"{key[:-1]} name {t.name!r} is used twice")
            seen.add(t.name)


def dynamic_batching(m: ModelSpec, found: Issues) -> None:
    """Dynamic batching needs a batching model, and its preferred sizes fit max_batch_size."""
    db, mbs = m.dynamic_batching, m.max_batch_size
    if db is None or not db.enabled:
        return
    if mbs == 0:
        found.add(
            ("dynamic_batching",),
            "dynamic batching needs max_batch_size > 0; set max_batch_size or dynamic_batching: false",
        )
        return
    for i, size in enumerate(db.preferred_batch_size):
        if size > mbs:
            found.add(
                ("dynamic_batching", "preferred_batch_size", i),
                f"{size} is larger than max_batch_size ({mbs}); each preferred size must be in 1..{mbs}",
            )


def instance_groups(m: ModelSpec, found: Issues) -> None:
    """GPU-only targets get no CPU instances; TensorRT profiles are for plans."""
    platform = PLATFORMS[m.target]
    for i, group in enumerate(m.instance_groups or []):
        if platform.gpu_only and group.kind == "KIND_CPU":
            found.add(
                ("instance_groups", i, "kind"),
                f"target {m.target} runs only on a GPU; use KIND_GPU, or a CPU target (onnx, python"
                f"{', savedmodel' if m.target == 'tftrt' else ''})",
            )
        if group.profile is not None and m.target != "tensorrt":
            found.add(("instance_groups", i, "profile"), "profile is only for target tensorrt (plans)")


def precision(m: ModelSpec, found: Issues) -> None:
    """int8 is for TensorRT targets and needs calibration; fp16 elsewhere needs the TensorRT accelerator."""
    if m.precision == "int8":
        if m.target not in ("tftrt", "tensorrt"):
            found.add(("precision",), f"int8 is only for targets tftrt and tensorrt, not {m.target}")
        elif m.calibration is None:
            found.add(
                ("precision",),
                "int8 needs calibration data: add calibration: {data: calib.npz} (one array per input)",
            )
    elif m.precision == "fp16" and m.target not in ("tftrt", "tensorrt"):
        trt = m.optimization.tensorrt if m.optimization else None
        if trt is None or not trt.enabled:
            found.add(
                ("precision",),
                f"fp16 on target {m.target} needs the TensorRT accelerator "
                "(optimization: {tensorrt: true}), or target tftrt/tensorrt",
            )
    if m.calibration is not None and m.precision != "int8":
        found.add(("calibration",), "calibration is only used with precision int8")


def optimization(m: ModelSpec, found: Issues) -> None:
    """Each optimization setting belongs to the backends that have it; CUDA graphs fit max_batch_size."""
    opt, mbs = m.optimization, m.max_batch_size
    if opt is None:
        return
    if opt.tensorrt is not None and m.target not in ("onnx", "savedmodel"):
        found.add(
            ("optimization", "tensorrt"),
            f"the TensorRT accelerator is for targets onnx and savedmodel, not {m.target}",
        )
    if opt.auto_mixed_precision:
        if m.target != "savedmodel":
            found.add(("optimization", "auto_mixed_precision"), "is for target savedmodel only")
        elif opt.tensorrt is not None and opt.tensorrt.enabled:
            found.add(("optimization", "auto_mixed_precision"), "cannot be combined with tensorrt")
    if opt.tensorrt is not None and m.target == "onnx":
        for key in ("max_cached_engines", "minimum_segment_size"):
            if getattr(opt.tensorrt, key) is not None:
                found.add(("optimization", "tensorrt", key), "is for the TensorFlow backend only")
    if (opt.cuda_graphs or opt.graph_specs) and m.target != "tensorrt":
        key = "cuda_graphs" if opt.cuda_graphs else "graph_specs"
        found.add(("optimization", key), f"CUDA graphs are for target tensorrt, not {m.target}")
    for i, gs in enumerate(opt.graph_specs):
        if mbs == 0 and gs.batch_size != 0:
            found.add(("optimization", "graph_specs", i, "batch_size"), "must be 0 when max_batch_size is 0")
        elif gs.batch_size > mbs:
            found.add(
                ("optimization", "graph_specs", i, "batch_size"),
                f"{gs.batch_size} is larger than max_batch_size ({mbs})",
            )


def target_settings(m: ModelSpec, found: Issues) -> None:
    """Settings that only one target reads are not given for another."""
    for key, target in (("cc_model_filenames", "tensorrt"), ("tensorrt", "tensorrt"), ("tftrt", "tftrt")):
        if getattr(m, key) and m.target != target:
            found.add((key,), f"{key} is only for target {target}, not {m.target}")
    if m.python_runtime is not None and m.target != "python":
        found.add(("python_runtime",), f"python_runtime is only for target python, not {m.target}")


def warmup(m: ModelSpec, found: Issues) -> None:
    """Warmup batches fit the model, and name only its inputs."""
    mbs = m.max_batch_size
    input_names = {t.name for t in m.inputs or []}
    for i, w in enumerate(m.warmup):
        limit = max(mbs, 1)
        if w.batch_size > limit:
            found.add(
                ("warmup", i, "batch_size"),
                f"{w.batch_size} is larger than {'max_batch_size' if mbs else 'the non-batching size'} "
                f"({limit}); warmup batch_size must be in 1..{limit}",
            )
        if m.inputs is not None:
            for name in w.inputs:
                if name not in input_names:
                    found.add(
                        ("warmup", i, "inputs", name),
                        f"{name!r} is not an input of this model; inputs: {', '.join(sorted(input_names))}",
                    )


def version_policy(m: ModelSpec, found: Issues) -> None:
    """A specific version policy names versions that are built."""
    if m.version_policy is not None and m.version_policy.specific is not None:
        for i, v in enumerate(m.version_policy.specific):
            if v not in m.versions:
                found.add(("version_policy", "specific", i), f"version {v} is not in versions {m.versions}")


def tensorrt_shapes(m: ModelSpec, found: Issues) -> None:
    """TensorRT build shapes name only the model's inputs."""
    if m.tensorrt is not None and m.inputs is not None:
        input_names = {t.name for t in m.inputs}
        for name in m.tensorrt.shapes:
            if name not in input_names:
                found.add(("tensorrt", "shapes", name), f"{name!r} is not an input of this model")


#: every rule of one model entry, in the order its problems are collected
MODEL_RULES: tuple[Rule, ...] = (
    ensemble_or_source,
    distinct_versions,
    distinct_tensor_names,
    dynamic_batching,
    instance_groups,
    precision,
    optimization,
    target_settings,
    warmup,
    version_policy,
    tensorrt_shapes,
)


def check_model(m: ModelSpec) -> None:
    """Run every rule on one model; raises Issues listing all the problems found."""
    found = Issues()
    for rule in MODEL_RULES:
        rule(m, found)
    found.raise_if_any()


def check_ensemble(m: ModelSpec, i: int, by_name: dict[str, ModelSpec], found: Issues) -> None:
    """Steps name existing models and tensors; data flows from ensemble inputs to ensemble outputs.

    `m` is models[i] of the spec; `by_name` holds every model of the spec. Locations are relative to the spec.
    """
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


# --------------------------------------------------------------------------------------------- deployment


def release_serves_every_model(spec: Spec) -> tuple[Loc, str] | None:
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


def bind_address_is_an_ip(spec: Spec) -> tuple[Loc, str] | None:
    bind = spec.triton.bind_address
    try:
        ipaddress.ip_address(bind)
    except ValueError:
        return ("triton", "bind_address"), (
            f"{bind!r} is not an IP address; use 127.0.0.1 (this host only, the default), "
            "0.0.0.0 (every interface) or one of this host's addresses"
        )
    return None


def key_env_is_a_variable_name(spec: Spec) -> tuple[Loc, str] | None:
    """`triton.restricted_api_key_env` is a shell variable name (compose reads the key from it)."""
    name = spec.triton.restricted_api_key_env
    if name and (name[0].isalpha() or name[0] == "_") and all(c.isalnum() or c == "_" for c in name):
        return None
    return ("triton", "restricted_api_key_env"), (
        f"{name!r} is not an environment variable name; use letters, digits and _, e.g. TRITON_ADMIN_KEY"
    )


DEPLOYMENT_RULES = (release_serves_every_model, bind_address_is_an_ip, key_env_is_a_variable_name)
