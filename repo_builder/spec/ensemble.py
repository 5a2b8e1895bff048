"""The ensemble check: an ensemble's steps against the spec's other models, and Triton's ensemble rules.

`check_ensemble` needs the whole spec (the step models) and is run by `Spec`; `ensemble_problems` is run
again by the build (build/ensembles.py) once inspection has found the tensors the spec left out. Triton's
rules themselves (data flow, mapping, cycles) are pure functions in triton/rules.py; here they get the
spec's tensors and locations. The models are seen here only for typing: spec/models.py imports this module,
not the other way round.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from repo_builder.spec.problems import Issues, Loc
from repo_builder.triton import rules as triton_rules

if TYPE_CHECKING:
    from repo_builder.spec.models import InputSpec, ModelSpec, OutputSpec


def model_io(m: ModelSpec, own: bool = False) -> triton_rules.ModelIO | None:
    """A model's tensors as an ensemble sees them, or None when the spec leaves them to inspection.
    `own`: the ensemble's own tensors, which count with their reshape, as Triton takes them."""
    if m.inputs is None or m.outputs is None:
        return None

    def info(t: InputSpec | OutputSpec, optional: bool) -> triton_rules.TensorInfo:
        dims = t.reshape if own and t.reshape is not None else t.dims
        return triton_rules.TensorInfo(t.dtype, tuple(dims), optional)

    return triton_rules.ModelIO(
        m.max_batch_size,
        {t.name: info(t, t.optional) for t in m.inputs},
        {t.name: info(t, False) for t in m.outputs},
    )


def step_maps(m: ModelSpec) -> list[triton_rules.StepMap]:
    return [triton_rules.StepMap(s.model, dict(s.input_map), dict(s.output_map)) for s in m.steps or []]


def ensemble_problems(
    m: ModelSpec, models: dict[str, triton_rules.ModelIO | None]
) -> list[tuple[triton_rules.Where, str]]:
    """Triton's ensemble rules on `m`, with `models` the tensors of its step models (None: not known
    yet). Used by the spec (tensors the spec lists) and by the build (tensors inspection found)."""
    inputs = [t.name for t in m.inputs or []]
    outputs = [t.name for t in m.outputs or []]
    steps = step_maps(m)
    found = triton_rules.ensemble_flow(m.name, inputs, outputs, steps)
    own = model_io(m, own=True)
    if own is not None:
        found += triton_rules.ensemble_mapping(m.name, own, steps, models)
    return found


def check_ensemble(m: ModelSpec, i: int, by_name: dict[str, ModelSpec], found: Issues) -> None:
    """Steps name existing models; no cycle through ensembles; Triton's ensemble rules (data flow, and
    against the step models whose tensors the spec lists).

    `m` is models[i] of the spec; `by_name` holds every model of the spec. Locations are relative to the spec.
    """
    models: dict[str, triton_rules.ModelIO | None] = {}
    steps_of = {n: [s.model for s in e.steps or []] for n, e in by_name.items() if e.target == "ensemble"}
    cycle = triton_rules.ensemble_cycle(m.name, steps_of)
    for s, step in enumerate(m.steps or []):
        loc: Loc = ("models", i, "steps", s)
        target = by_name.get(step.model)
        if step.model == m.name:
            found.add(
                (*loc, "model"),
                f"an ensemble cannot be its own step (Triton: {triton_rules.cycle_text([m.name, m.name])})",
            )
            continue
        if target is None:
            known = ", ".join(sorted(n for n in by_name if n != m.name))
            found.add((*loc, "model"), f"{step.model!r} is not a model in this spec; models: {known}")
            continue
        if step.version != -1 and step.version not in target.versions:
            found.add(
                (*loc, "version"),
                f"version {step.version} of {step.model} is not built; its versions: "
                f"{', '.join(map(str, target.versions))} (or -1 for the latest)",
            )
        if cycle is not None and len(cycle) > 2 and step.model == cycle[1]:
            found.add(
                (*loc, "model"),
                f"{triton_rules.cycle_text(cycle)}; an ensemble cannot contain itself through other "
                f"ensembles ({' -> '.join(cycle)})",
            )
            continue
        models[step.model] = io = model_io(target)
        explicit = "max_batch_size" in target.model_fields_set  # inspection keeps it (else it may become 0)
        if io is None and explicit and 0 < target.max_batch_size < m.max_batch_size:
            found.add(
                (*loc, "model"),
                f"ensemble {m.name} allows maximum batch size {m.max_batch_size}, but it contains model "
                f"{step.model} which only allows maximum batch size to be {target.max_batch_size}; expected the "
                f"ensemble's max_batch_size <= {target.max_batch_size}",
            )
    for where, message in ensemble_problems(m, models):
        found.add(("models", i, *where), message)
