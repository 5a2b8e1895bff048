"""The Jinja environment, and config.pbtxt rendering.

Python computes every value (dims, datatypes, instance groups, accelerator parameters); the templates
in `templates/` only lay them out. Every rendered config is parsed back into Triton's own ModelConfig
protobuf and checked against Triton's rules before anyone writes it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from repo_builder.errors import GeneratorBug
from repo_builder.repository.layout import data_file_names
from repo_builder.spec.models import InputSpec, ModelSpec, OutputSpec, QueuePolicy, Tensors
from repo_builder.triton.platforms import PLATFORMS


def templates_dir() -> Path:
    """`repo_builder/templates` inside a wheel; the top-level `templates/` in a source checkout."""
    package = Path(__file__).resolve().parents[1]
    candidates = (package / "templates", package.parent / "templates")
    for candidate in candidates:
        if (candidate / "_macros.pbtxt.j2").is_file():
            return candidate
    raise GeneratorBug(f"the templates folder is missing (looked in {' and '.join(map(str, candidates))})")


#: templates whose text is a module of repo_builder's, which imports and runs it as it is: one source for both
#: (generated model.py files include it, and they run where repo_builder cannot be imported)
MODULE_TEMPLATES = {"_strings.py.j2": Path(__file__).resolve().parents[1] / "verify" / "strings.py"}
#: the line of such a module after which its text is the template's
MODULE_TEMPLATE_MARKER = "# {name} is this file below this line\n"


def template_path(name: str) -> Path:
    """The file a template's text comes from (what a build hashes): templates/ or a module of MODULE_TEMPLATES."""
    return MODULE_TEMPLATES.get(name) or templates_dir() / name


def module_template(name: str) -> str | None:
    """The text of a template of MODULE_TEMPLATES (None for any other): its module's text after the marker
    line, taken literally (a raw block: braces in Python are no Jinja syntax)."""
    path = MODULE_TEMPLATES.get(name)
    if path is None:
        return None
    marker = MODULE_TEMPLATE_MARKER.format(name=name)
    text = path.read_text(encoding="utf-8")
    if marker not in text:
        raise GeneratorBug(f"{path} lacks the line {marker.strip()!r} after which its text is the template {name}")
    return "{% raw %}" + text.split(marker, 1)[1] + "{% endraw %}"


def model_code(*names: str) -> dict[str, Any]:
    """The Python templates `names` that the generated model.py files include (e.g. "_device.py.j2"), run into one
    namespace with numpy and Any as those files import them: their functions, for the tests and the GPU
    benchmark to call."""
    import numpy as np

    namespace: dict[str, Any] = {"np": np, "Any": Any}
    for name in names:
        exec(compile(template_path(name).read_text(encoding="utf-8"), name, "exec"), namespace)
    return namespace


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.FunctionLoader(module_template), jinja2.FileSystemLoader(str(templates_dir()))]
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["q"] = quote
    return env


def quote(value: object) -> str:
    """A protobuf text-format string literal: quotes, backslashes and control characters escaped."""
    from google.protobuf import text_encoding

    return '"' + text_encoding.CEscape(str(value), as_utf8=True) + '"'


def render_template(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)


# --------------------------------------------------------------------------------------------- values


def _list(values: list[int] | list[str]) -> str:
    """Triton's text format for a repeated scalar field: [ 1, 2 ] or [ ]."""
    if not values:
        return "[ ]"
    return "[ " + ", ".join(quote(v) if isinstance(v, str) else str(v) for v in values) + " ]"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _tensor(t: InputSpec | OutputSpec, label_filename: str | None = None) -> dict[str, Any]:
    return {
        "name": t.name,
        "data_type": f"TYPE_{t.dtype}",
        "dims": _list(t.dims),
        "reshape": _list(t.reshape) if t.reshape is not None else None,
        "optional": isinstance(t, InputSpec) and t.optional,
        "label_filename": label_filename,
    }


def _queue_policy(p: QueuePolicy) -> dict[str, Any]:
    return {
        "timeout_action": p.timeout_action,
        "default_timeout_microseconds": p.default_timeout_microseconds,
        "allow_timeout_override": _bool(p.allow_timeout_override),
        "max_queue_size": p.max_queue_size,
    }


def default_instance_groups(model: ModelSpec) -> list[dict[str, Any]]:
    """One instance; on the GPU for GPU-only targets, else wherever Triton finds one (KIND_AUTO)."""
    kind = "KIND_GPU" if PLATFORMS[model.target].gpu_only else "KIND_AUTO"
    return [{"name": None, "kind": kind, "count": 1, "gpus": None, "profile": None}]


def _instance_groups(model: ModelSpec) -> list[dict[str, Any]]:
    if model.target == "ensemble":
        return []
    if model.instance_groups is None:
        return default_instance_groups(model)
    return [
        {
            "name": g.name,
            "kind": g.kind,
            "count": g.count,
            "gpus": _list(g.gpus) if g.gpus is not None else None,
            "profile": _list(g.profile) if g.profile is not None else None,
        }
        for g in model.instance_groups
    ]


def _accelerators(model: ModelSpec) -> list[dict[str, Any]]:
    opt = model.optimization
    if opt is None:
        return []
    found: list[dict[str, Any]] = []
    trt = opt.tensorrt
    if trt is not None and trt.enabled:
        params: list[tuple[str, str]] = [("precision_mode", model.precision.upper())]
        if trt.max_workspace_size_bytes is not None:
            params.append(("max_workspace_size_bytes", str(trt.max_workspace_size_bytes)))
        if trt.max_cached_engines is not None:
            params.append(("max_cached_engines", str(trt.max_cached_engines)))
        if trt.minimum_segment_size is not None:
            params.append(("minimum_segment_size", str(trt.minimum_segment_size)))
        found.append({"name": "tensorrt", "parameters": params})
    if opt.auto_mixed_precision:
        found.append({"name": "auto_mixed_precision", "parameters": []})
    return found


def _optimization(model: ModelSpec) -> dict[str, Any] | None:
    opt = model.optimization
    if opt is None:
        return None
    cuda = None
    if opt.cuda_graphs or opt.graph_specs:
        cuda = {
            "graphs": _bool(opt.cuda_graphs or bool(opt.graph_specs)),
            "graph_specs": [
                {"batch_size": gs.batch_size, "inputs": [(k, _list(v)) for k, v in sorted(gs.inputs.items())]}
                for gs in opt.graph_specs
            ],
        }
    result = {
        "accelerators": _accelerators(model),
        "cuda": cuda,
        "input_pinned_memory": None if opt.input_pinned_memory is None else _bool(opt.input_pinned_memory),
        "output_pinned_memory": None if opt.output_pinned_memory is None else _bool(opt.output_pinned_memory),
    }
    if (
        not result["accelerators"]
        and cuda is None
        and opt.input_pinned_memory is None
        and (opt.output_pinned_memory is None)
    ):
        return None
    return result


def _warmup(model: ModelSpec, inputs: list[InputSpec]) -> list[dict[str, Any]]:
    files = data_file_names([wi.file for w in model.warmup for wi in w.inputs.values() if wi.file])
    found = []
    for w in model.warmup:
        items = []
        for t in inputs:
            if t.optional and t.name not in w.inputs:
                continue
            chosen = w.inputs.get(t.name)
            dims = chosen.dims if chosen and chosen.dims else [d if d > 0 else 1 for d in t.dims]
            items.append(
                {
                    "name": t.name,
                    "data_type": f"TYPE_{t.dtype}",
                    "dims": _list(dims),
                    "mode": f"{chosen.data if chosen else 'random'}_data",
                    "file": files[chosen.file] if chosen and chosen.file else None,
                }
            )
        found.append({"name": w.name, "batch_size": w.batch_size, "count": w.count, "inputs": items})
    return found


def _version_policy(model: ModelSpec) -> str | None:
    vp = model.version_policy
    if vp is None:
        return None
    if vp.latest is not None:
        return f"latest: {{ num_versions: {vp.latest} }}"
    if vp.all:
        return "all: { }"
    if vp.specific is not None:
        return f"specific: {{ versions: {_list(vp.specific)} }}"
    return None


def _dynamic_batching(model: ModelSpec) -> dict[str, Any] | None:
    if not model.dynamic_batching_on:
        return None
    db = model.dynamic_batching
    if db is None:
        return {
            "preferred_batch_size": None,
            "max_queue_delay_microseconds": 0,
            "preserve_ordering": False,
            "priority_levels": 0,
            "default_priority_level": 0,
            "default_queue_policy": None,
            "priority_queue_policy": [],
        }
    return {
        "preferred_batch_size": _list(db.preferred_batch_size) if db.preferred_batch_size else None,
        "max_queue_delay_microseconds": db.max_queue_delay_microseconds,
        "preserve_ordering": db.preserve_ordering,
        "priority_levels": db.priority_levels,
        "default_priority_level": db.default_priority_level,
        "default_queue_policy": _queue_policy(db.default_queue_policy) if db.default_queue_policy else None,
        "priority_queue_policy": [(k, _queue_policy(v)) for k, v in sorted(db.priority_queue_policy.items())],
    }


@dataclass(frozen=True)
class RenderExtras:
    """What the build adds to the spec: parameters it needs, plan file names it produced."""

    parameters: dict[str, str] = field(default_factory=dict)


def config_context(model: ModelSpec, tensors: Tensors, extras: RenderExtras | None = None) -> dict[str, Any]:
    platform = PLATFORMS[model.target]
    parameters = dict(model.parameters)
    if platform.tensorflow_backend and model.signature != "serving_default":
        parameters.setdefault("TF_SIGNATURE_DEF", model.signature)
    if extras is not None:
        parameters.update(extras.parameters)
    labels = data_file_names([t.labels for t in tensors.outputs if t.labels], reserved=True)
    return {
        "name": model.name,
        "platform": platform.platform,
        "backend": platform.backend,
        "max_batch_size": model.max_batch_size,
        "version_policy": _version_policy(model),
        "inputs": [_tensor(t) for t in tensors.inputs],
        "outputs": [_tensor(t, labels.get(t.labels) if t.labels else None) for t in tensors.outputs],
        "dynamic_batching": _dynamic_batching(model),
        "instance_groups": _instance_groups(model),
        "optimization": _optimization(model),
        "warmup": _warmup(model, tensors.inputs),
        "response_cache": model.response_cache,
        "parameters": sorted(parameters.items()),
        "cc_model_filenames": sorted(model.cc_model_filenames.items()),
        "steps": [
            {
                "model": s.model,
                "version": s.version,
                "input_map": sorted(s.input_map.items()),
                "output_map": sorted(s.output_map.items()),
            }
            for s in model.steps or []
        ],
    }


def _tidy(text: str) -> str:
    # split on "\n" only: str.splitlines() also splits inside a quoted value holding U+2028, U+0085, ...
    return "\n".join(line.rstrip() for line in text.split("\n") if line.strip()) + "\n"


def render_config(model: ModelSpec, tensors: Tensors, extras: RenderExtras | None = None) -> str:
    """Render, parse with Triton's ModelConfig and check Triton's rules. Raises GeneratorBug otherwise."""
    text = _tidy(render_template(PLATFORMS[model.target].template, m=config_context(model, tensors, extras)))
    try:
        problems = _checked(text, model.name)
    except GeneratorBug:
        # the memoized check parses the config without its name line: report the real text
        from repo_builder.triton import rules as triton_rules

        triton_rules.parse(text, origin=f"the config.pbtxt rendered for {model.name}")
        raise
    if problems:
        raise GeneratorBug(
            f"the config.pbtxt rendered for {model.name} breaks Triton's rules:\n  - "
            + "\n  - ".join(problems)
            + "\n"
            + text
        )
    return text


def _checked(text: str, name: str) -> tuple[str, ...]:
    """Parse with ModelConfig and check Triton's rules. Configs that differ only in their name line
    share one parse (the text-format parser is pure Python: ~1 ms a config)."""
    first, _, rest = text.partition("\n")
    if first != f'name: "{name}"':
        return _check_text(text)
    return _check_text(rest)


@functools.lru_cache(maxsize=4096)
def _check_text(text: str) -> tuple[str, ...]:
    from repo_builder.triton import rules as triton_rules

    if not text.startswith("name:"):
        text = 'name: "model"\n' + text
    return tuple(triton_rules.check(triton_rules.parse(text)))
