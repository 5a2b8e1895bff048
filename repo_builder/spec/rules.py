"""The rules of one model entry that involve several fields, one function per concern.

`ModelSpec` runs every rule in `MODEL_RULES`, in order, on itself; each rule adds its problems (located
relative to the model) to a shared `Issues`, so that one load reports all of them. The rules that need the
whole spec are in spec/ensemble.py (the ensemble check) and spec/deployment.py (the `triton:` block). The
models are seen here only for typing: spec/models.py imports this module, not the other way round.

Where a rule is Triton's own (its core refuses the config at load), the message quotes Triton's words and
says what to do instead. Nothing here is stricter than Triton: a setting Triton accepts but ignores, or
advises against, is a warning (spec/advice.py), not an error.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import TYPE_CHECKING

from repo_builder.spec.problems import Issues, Loc
from repo_builder.triton import rules as triton_rules
from repo_builder.triton.platforms import PLATFORMS

if TYPE_CHECKING:
    from repo_builder.spec.models import ModelSpec

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
        triton_words = {
            "instance_groups": f"instance group should not be specified for ensemble '{m.name}'",
            "optimization": f"optimization should not be specified for ensemble '{m.name}'",
            "warmup": f"model_warmup can not be specified for ensemble '{m.name}'",
        }
        for key, words in triton_words.items():
            if getattr(m, key):
                found.add((key,), f"an ensemble has no {key} (Triton: {words}); set it on the step models")
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
    if db.preserve_ordering:
        if db.priority_levels > 1:
            found.add(
                ("dynamic_batching", "priority_levels"),
                "Only one priority level is allowed when 'preserve_ordering' is true (Triton); set "
                "priority_levels to 0 or 1, or preserve_ordering: false",
            )
        policies: list[tuple[Loc, object]] = [(("default_queue_policy",), db.default_queue_policy)]
        policies += [(("priority_queue_policy", level), p) for level, p in db.priority_queue_policy.items()]
        for where, policy in policies:
            if (
                policy is not None
                and getattr(policy, "timeout_action", None) == "DELAY"
                and getattr(policy, "default_timeout_microseconds", 0) != 0
            ):
                found.add(
                    ("dynamic_batching", *where, "timeout_action"),
                    "Queue policy can not have DELAY as timeout action when 'preserve_ordering' is true "
                    "(Triton); use timeout_action REJECT, or preserve_ordering: false",
                )


def instance_groups(m: ModelSpec, found: Issues) -> None:
    """GPU-only targets get no CPU instances; TensorRT profiles are for plans."""
    platform = PLATFORMS[m.target]
    for i, group in enumerate(m.instance_groups or []):
        if group.gpus and group.kind in ("KIND_CPU", "KIND_MODEL"):
            found.add(
                ("instance_groups", i, "gpus"),
                f"instance group has kind {group.kind} but specifies one or more GPUs (Triton); gpus is for kind "
                "KIND_GPU (or KIND_AUTO)",
            )
        for g, gpu in enumerate(group.gpus or []):
            if gpu < 0:
                found.add(
                    ("instance_groups", i, "gpus", g),
                    f"instance group specifies invalid or unsupported gpu id {gpu} (Triton); GPU ids are "
                    "0, 1, ... as nvidia-smi lists them",
                )
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
        declared = {t.name: list(t.dims) for t in m.inputs or []}
        for name, wi in w.inputs.items():
            if wi.dims is None:
                continue
            if -1 in wi.dims:
                found.add(
                    ("warmup", i, "inputs", name, "dims"),
                    f"warmup setting expects all variable-size dimensions are specified for input '{name}' "
                    f"(Triton); replace each -1 in {wi.dims} with a size",
                )
            elif name in declared:
                problem = triton_rules.warmup_shape_problem(m.name, name, declared[name], wi.dims, mbs, w.batch_size)
                if problem is not None:
                    found.add(
                        ("warmup", i, "inputs", name, "dims"),
                        f"{problem} (Triton); warmup dims are the input's dims {declared[name]} with a size for each "
                        "-1",
                    )
            elif any(d < 0 for d in wi.dims):
                found.add(("warmup", i, "inputs", name, "dims"), f"dims {wi.dims} must be sizes >= 1")
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


#: what a non-batching model does instead of a scalar tensor
SCALAR_FIX = (
    "a model that does not batch (max_batch_size 0) cannot take or return a scalar in Triton: give the tensor "
    "dims [1] without reshape and reshape it inside the model (e.g. tf.reshape(x, [])), or let the model batch "
    "(max_batch_size > 0: dims [1] with reshape [] is then one scalar per batch item)"
)


def reshape_message(kind: str, name: str, dims: list[int], reshape: list[int], mbs: int) -> str | None:
    """Triton's words for a reshape it refuses, and what to do instead; None when Triton accepts it."""
    problem = triton_rules.reshape_problem(dims, reshape, mbs)
    if problem is None:
        return None
    words = f"model {kind} '{name}' {problem}"
    if problem.startswith("cannot have empty reshape"):
        return f"{words}; {SCALAR_FIX}"
    if problem.startswith("reshape dimensions"):
        return f"{words}; got {reshape}"
    if "number of variable-size" in problem:
        a, b = dims.count(-1), reshape.count(-1)
        return (
            f"{words}: dims {dims} have {a} variable (-1) dimension(s), reshape {reshape} {b}; expected the same number"
        )
    if -1 in dims:
        return (
            f"{words}: dims {dims}, reshape {reshape}; expected the same element count between each pair of "
            "variable (-1) dimensions, e.g. dims [2, 4, -1, 6] and reshape [8, -1, 1, 6]"
        )
    count = triton_rules.element_count(dims)
    got = triton_rules.element_count(reshape)
    return (
        f"{words}: dims {dims} hold {count} element(s), reshape {reshape} "
        f"{'is a scalar (needs dims [1])' if not reshape else f'holds {got}'}; expected the same element count"
    )


def tensor_reshapes(m: ModelSpec, found: Issues) -> None:
    """Each reshape holds what its dims hold, as Triton's core checks it (ValidateIOShape)."""
    for key, tensors in (("inputs", m.inputs), ("outputs", m.outputs)):
        for i, t in enumerate(tensors or []):
            if t.reshape is None:
                continue
            message = reshape_message(key[:-1], t.name, list(t.dims), list(t.reshape), m.max_batch_size)
            if message is not None:
                found.add((key, i, "reshape"), message)


#: Triton's variable for the model's folder in a config's parameters
MODEL_DIRECTORY = "$$TRITON_MODEL_DIRECTORY"


def written_in_model_folder(m: ModelSpec) -> tuple[set[str], set[str]]:
    """The files and folders repo-builder writes in a model's folder (relative paths)."""
    folders = {str(v) for v in m.versions}
    files = {"config.pbtxt"}
    files |= {posixpath.basename(o.labels) for o in m.outputs or [] if o.labels}
    warmup_files = {posixpath.basename(wi.file) for w in m.warmup for wi in w.inputs.values() if wi.file}
    if warmup_files:
        folders.add("warmup")
    return files, folders


def parameter_files(m: ModelSpec, found: Issues) -> None:
    """A parameter naming a file in the model folder names one that the build writes: Triton loads the
    model from that folder and finds nothing else there."""
    files, folders = written_in_model_folder(m)
    for key, value in m.parameters.items():
        if MODEL_DIRECTORY not in value:
            continue
        rel = posixpath.normpath(value.split(MODEL_DIRECTORY, 1)[1].lstrip("/") or ".")
        if rel == "." or rel in files or rel in folders or rel.split("/", 1)[0] in folders:
            continue
        found.add(
            ("parameters", key),
            f"{value!r} names {rel} in the model folder, which nothing writes: repo-builder writes only "
            f"{', '.join(sorted(files | {f + '/' for f in folders}))} there, so Triton would not find it when "
            f"it loads {m.name}. Remove the parameter, or point it at a path that exists in the Triton "
            "container (e.g. a mounted folder)",
        )


#: every rule of one model entry, in the order its problems are collected
MODEL_RULES: tuple[Rule, ...] = (
    ensemble_or_source,
    distinct_versions,
    distinct_tensor_names,
    tensor_reshapes,
    dynamic_batching,
    instance_groups,
    precision,
    optimization,
    target_settings,
    warmup,
    version_policy,
    tensorrt_shapes,
    parameter_files,
)

#: the fields each rule reads besides name and target: when a field is itself invalid, the rules that
#: read it are skipped and the others still run, so that one `check` reports every problem
RULE_READS: dict[Rule, frozenset[str]] = {
    ensemble_or_source: frozenset(
        {"source", "steps", "inputs", "outputs", "instance_groups", "optimization", "warmup", "dynamic_batching"}
    ),
    distinct_versions: frozenset({"versions"}),
    distinct_tensor_names: frozenset({"inputs", "outputs"}),
    tensor_reshapes: frozenset({"inputs", "outputs", "max_batch_size"}),
    dynamic_batching: frozenset({"dynamic_batching", "max_batch_size"}),
    instance_groups: frozenset({"instance_groups"}),
    precision: frozenset({"precision", "calibration", "optimization"}),
    optimization: frozenset({"optimization", "max_batch_size"}),
    target_settings: frozenset({"cc_model_filenames", "tensorrt", "tftrt", "python_runtime"}),
    warmup: frozenset({"warmup", "max_batch_size", "inputs"}),
    version_policy: frozenset({"version_policy", "versions"}),
    tensorrt_shapes: frozenset({"tensorrt", "inputs"}),
    parameter_files: frozenset({"parameters", "versions", "outputs", "warmup"}),
}


def check_model(m: ModelSpec, skip: frozenset[str] = frozenset()) -> None:
    """Run every rule on one model (but those that read a field in `skip`, which is itself invalid);
    raises Issues listing all the problems found."""
    found = Issues()
    for rule in MODEL_RULES:
        if not RULE_READS[rule] & skip:
            rule(m, found)
    found.raise_if_any()


def check_resolved(m: ModelSpec) -> list[str]:
    """The rules again on a model whose tensors inspection filled in (the spec's own tensors passed them
    at load): each problem as `path: message`, the path relative to the model entry."""
    found = Issues()
    for rule in MODEL_RULES:
        rule(m, found)
    lines = []
    for p in found.problems:
        loc = p.loc
        if len(loc) >= 2 and loc[0] in ("inputs", "outputs") and isinstance(loc[1], int):
            tensors = (m.inputs if loc[0] == "inputs" else m.outputs) or []
            name = f" ({tensors[loc[1]].name})" if loc[1] < len(tensors) else ""
            where = triton_rules.where_text(loc[:2]) + name + "".join(f" -> {x}" for x in loc[2:])
        else:
            where = triton_rules.where_text(loc)
        lines.append(f"{where}: {p.message}")
    return lines
