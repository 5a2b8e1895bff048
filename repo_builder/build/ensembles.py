"""The build's ensemble wave, after the conversions: each ensemble's config, and its reference vectors
computed by running its built steps (in the workers), carried over when neither the ensemble nor any
step changed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from repo_builder.build.carry import settle_failure
from repo_builder.build.pipeline import ensemble_reference
from repo_builder.build.pool import Progress, Workers
from repo_builder.build.results import ModelResult
from repo_builder.repository.layout import config_path, logs_path
from repo_builder.repository.manifest import ManifestEntry, ModelStatus, model_entry
from repo_builder.repository.write import link_tree, write_model_layout
from repo_builder.spec.models import ModelSpec, Spec


def ensembles(
    spec: Spec,
    repo: Path,
    stage: Path,
    workers: Workers,
    force: bool,
    results: dict[str, ModelResult],
    hashes: dict[str, str],
    conversions: dict[str, str],
    old_models: dict[str, ManifestEntry],
    notify: Progress,
) -> None:
    """Write every ensemble into `stage` and record its result in `results` and its hash in `hashes` (an
    ensemble's hash covers its steps': of a step that converts, its conversion hash, so a step whose
    config alone changed leaves the ensemble's reference as it was)."""
    memo: dict[str, str] = {}
    visiting: set[str] = set()

    def step_hash(name: str) -> str:
        m = spec.model(name)
        if m.target == "ensemble":
            if name in visiting:  # a cycle through ensembles (the spec refuses it): do not recurse forever
                return hashes[name]
            if name not in memo:
                visiting.add(name)
                steps = {s.model: step_hash(s.model) for s in m.steps or []}
                visiting.discard(name)
                memo[name] = hashlib.sha256(json.dumps([hashes[name], steps], sort_keys=True).encode()).hexdigest()
            return memo[name]
        r = results.get(name)
        return str(r.entry.conversion_hash) if r is not None and r.status == ModelStatus.KEPT else conversions[name]

    pending = []
    for m in ensemble_order(spec):
        r = results[m.name] = ensemble(spec, m, stage)
        hashes[m.name] = step_hash(m.name)
        if r.status != ModelStatus.BUILT or not m.verify.enabled:
            settle_failure(repo, stage, m, r, old_models)
            notify(m.name, r.status)
            continue
        old = old_models.get(m.name) or ManifestEntry()
        ref = old.reference
        if not force and old.inputs_hash == hashes[m.name] and ref and (repo / ref).is_file():
            for path in (Path(ref), logs_path(Path(), m.name)):  # the reference and the log that made it
                link_tree(repo / path, stage / path)
            carried = {"reference": ref, "tolerance": old.tolerance}
            r.entry = r.entry.updated(**carried, **({"notes": old.notes} if old.notes else {}))
            r.status = ModelStatus.CARRIED
            notify(m.name, "unchanged")
        else:
            pending.append(m)
            notify(m.name, "queued")
    if not pending:
        return
    computed: dict[str, ModelResult] = {}
    workers.run(ensemble_reference, pending, computed)
    for m in pending:
        got, r = computed[m.name], results[m.name]
        if got.status == ModelStatus.FAILED:
            r.status, r.error, r.log, r.entry = ModelStatus.FAILED, got.error, got.log, ManifestEntry()
            settle_failure(repo, stage, m, r, old_models)
            continue
        r.seconds = got.seconds
        fields = {"reference": got.entry.reference, "tolerance": got.entry.tolerance}
        r.entry = r.entry.updated(**fields, **({"notes": got.entry.notes} if got.entry.notes else {}))


def ensemble_order(spec: Spec) -> list[ModelSpec]:
    """The spec's ensembles, each after the ensembles it has as steps (whatever the order in the spec)."""
    ordered: list[ModelSpec] = []
    seen: set[str] = set()

    def visit(m: ModelSpec) -> None:
        if m.name in seen:
            return
        seen.add(m.name)
        for step in m.steps or []:
            inner = spec.model(step.model)
            if inner.target == "ensemble":
                visit(inner)
        ordered.append(m)

    for m in spec.models:
        if m.target == "ensemble":
            visit(m)
    return ordered


def ensemble(spec: Spec, m: ModelSpec, stage: Path) -> ModelResult:
    """Ensembles need no conversion: their config and an empty version folder."""
    from repo_builder.render.config import render_config
    from repo_builder.spec.models import spec_tensors

    missing = [s.model for s in m.steps or [] if not config_path(stage, s.model).is_file()]
    if missing:
        error = f"step model(s) {', '.join(missing)} did not build"
        return ModelResult(m.name, m.target, ModelStatus.FAILED, error=error)
    problems = step_problems(m, stage)
    if problems:
        error = "with the tensors its step models were built with, Triton would refuse it:\n  - " + "\n  - ".join(
            problems
        )
        return ModelResult(m.name, m.target, ModelStatus.FAILED, error=error)
    tensors = spec_tensors(m)
    assert tensors is not None
    write_model_layout(stage, spec, m, render_config(m, tensors))
    return ModelResult(m.name, m.target, ModelStatus.BUILT, model_entry(m, ModelStatus.BUILT, tensors=True))


def step_problems(m: ModelSpec, stage: Path) -> list[str]:
    """Triton's ensemble rules again, now with the tensors of the step models as built (inspection fills
    in what the spec left out, which the spec's own check could not see): `path: message` each."""
    from repo_builder.spec.ensemble import ensemble_problems
    from repo_builder.triton import rules as triton_rules

    models: dict[str, triton_rules.ModelIO | None] = {}
    for s in m.steps or []:
        config = triton_rules.parse(config_path(stage, s.model).read_text(encoding="utf-8"), f"{s.model}/config.pbtxt")
        models[s.model] = triton_rules.model_io(config)
    return [f"{triton_rules.where_text(w)}: {message}" for w, message in ensemble_problems(m, models)]
