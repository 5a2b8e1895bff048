"""The warnings of a valid spec: settings that Triton accepts and ignores, or advises against.

Each function of `MODEL_WARNINGS` looks at one model entry and returns its advice, located relative to the
model; `spec_warnings` runs them all on every model, and the loader (spec/load.py) reports them after a load
that found no error. None of them is an error: nothing in the spec is stricter than Triton. The models are
seen here only for typing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from repo_builder.spec.problems import Loc, Problem

if TYPE_CHECKING:
    from repo_builder.spec.models import ModelSpec, Spec

Advice = Callable[["ModelSpec"], list[tuple[Loc, str]]]


def gpu_settings_on_cpu(m: ModelSpec) -> list[tuple[Loc, str]]:
    """GPU accelerators on a model whose instances all run on the CPU: Triton loads it and ignores them."""
    groups = m.instance_groups or []
    opt = m.optimization
    if not groups or opt is None or any(g.kind != "KIND_CPU" for g in groups):
        return []
    settings: list[tuple[Loc, str]] = []
    if opt.tensorrt is not None and opt.tensorrt.enabled:
        settings.append((("optimization", "tensorrt"), "the TensorRT accelerator"))
    if opt.auto_mixed_precision:
        settings.append((("optimization", "auto_mixed_precision"), "auto_mixed_precision"))
    if opt.cuda_graphs or opt.graph_specs:
        settings.append((("optimization", "cuda_graphs" if opt.cuda_graphs else "graph_specs"), "CUDA graphs"))
    return [
        (
            loc,
            f"{what} runs only on a GPU, and every instance group of {m.name} is KIND_CPU: Triton ignores it. "
            "Add a KIND_GPU instance group, or remove the setting",
        )
        for loc, what in settings
    ]


def gpus_of_an_auto_group(m: ModelSpec) -> list[tuple[Loc, str]]:
    """KIND_AUTO with gpus: Triton runs the group on those GPUs where they exist, and refuses the model on
    a host without them (the group becomes KIND_CPU, which takes no gpus)."""
    return [
        (
            ("instance_groups", i, "kind"),
            f"KIND_AUTO with gpus {g.gpus}: on a host without these GPUs Triton makes this group KIND_CPU and then "
            'refuses the model ("has kind KIND_CPU but specifies one or more GPUs"); say KIND_GPU if it needs them',
        )
        for i, g in enumerate(m.instance_groups or [])
        if g.kind == "KIND_AUTO" and g.gpus
    ]


def preferred_batch_sizes(m: ModelSpec) -> list[tuple[Loc, str]]:
    """Triton's batcher documentation advises against preferred sizes but for TensorRT plans with several
    optimization profiles (repo-builder's plans have one)."""
    db = m.dynamic_batching
    if db is None or not db.enabled or not db.preferred_batch_size or not m.dynamic_batching_on:
        return []
    profiles = {name for g in m.instance_groups or [] for name in g.profile or []}
    if m.target == "tensorrt" and len(profiles) > 1:  # the instance groups use several profiles of the plan
        return []
    what = "a TensorRT plan with one optimization profile" if m.target == "tensorrt" else f"a {m.target} model"
    return [
        (
            ("dynamic_batching", "preferred_batch_size"),
            "Triton's batcher documentation: for most models, preferred_batch_size should not be specified; "
            "an exception is TensorRT models that specify multiple optimization profiles for different batch "
            f"sizes. {m.name} is {what}: without preferred sizes the batcher forms batches as large as "
            f"possible up to max_batch_size ({m.max_batch_size}). Remove it unless measurements show it helps",
        )
    ]


def empty_warmup_data(m: ModelSpec) -> list[tuple[Loc, str]]:
    """A 0 in warmup dims (where the input's dim is -1, else it is an error): Triton runs a request with
    no data, which warms nothing."""
    return [
        (
            ("warmup", i, "inputs", name, "dims"),
            f"dims {wi.dims} give input '{name}' no data: Triton accepts it, and the warmup warms nothing for "
            "it; give each dim a size >= 1",
        )
        for i, w in enumerate(m.warmup)
        for name, wi in w.inputs.items()
        if wi.dims and 0 in wi.dims
    ]


MODEL_WARNINGS: tuple[Advice, ...] = (
    gpu_settings_on_cpu,
    gpus_of_an_auto_group,
    preferred_batch_sizes,
    empty_warmup_data,
)


def spec_warnings(spec: Spec) -> list[Problem]:
    """Settings of a valid spec that Triton accepts and ignores, or advises against, located."""
    return [
        Problem(("models", i, *loc), message)
        for i, m in enumerate(spec.models)
        for warn in MODEL_WARNINGS
        for loc, message in warn(m)
    ]
