"""One model's pipeline, as named steps, run in a worker process (build/pool.py hands these functions to it).

`convert_model`, for every model that is not an ensemble:

    check -> load -> inspect (rename, resolve) -> convert (the converter chain) -> write (config, layout,
    artifacts) -> verify -> reference -> entry (hash the artifacts, the manifest entry)

`ensemble_reference`, for an ensemble whose steps are built: run them in order on their artifacts and
store what comes out as the ensemble's reference.

Each step takes what the ones before it produced; `step(name)` reports progress (to the model's log and
the parent's display). Both functions return the model's manifest entry and raise on failure (the pool
turns a failure into a FAILED result). Heavy libraries are imported inside the steps, never here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repo_builder.build.pool import Step
from repo_builder.errors import SpecError
from repo_builder.repository.manifest import ManifestEntry, ModelStatus, model_entry
from repo_builder.repository.staging import final_repo
from repo_builder.spec.models import ModelSpec, Spec

if TYPE_CHECKING:
    from repo_builder.converters.base import Converted, Converter
    from repo_builder.inspect.sources import Loaded
    from repo_builder.inspect.tensors import Tensor
    from repo_builder.verify.compare import Feed, Verification


def convert_model(spec: Spec, model: ModelSpec, stage: Path, log: logging.Logger, step: Step) -> ManifestEntry:
    """Build `model` into the staging repository `stage`; its manifest entry."""
    log.info("model %s, target %s, source %s", model.name, model.target, model.source.ref if model.source else None)
    _log_reproduce(spec, model, stage, log)
    chain = check(model)
    step("load")
    loaded = load(spec, model, log)
    step("inspect")
    resolved, loaded, renamed = inspect(model, loaded, log)
    results = convert(spec, resolved, chain, loaded, stage, log, step)
    step("write")
    write(spec, resolved, stage, results[-1])
    verification = None
    if resolved.verify.enabled:
        step("verify")
        verification = verify(resolved, loaded, spec.base_dir, stage, results[-1], log)
        write_reference(resolved, verification, stage)
    return entry(resolved, stage, chain, results, verification, renamed)


def _log_reproduce(spec: Spec, model: ModelSpec, stage: Path, log: logging.Logger) -> None:
    spec_path = spec.path if spec.path is not None else ""
    log.info("reproduce with: repo-builder build %s -o %s --only %s", spec_path, final_repo(stage), model.name)


def check(model: ModelSpec) -> list[Converter]:
    """The converters that make the model's artifact, each usable here: checked before the source is
    loaded, so a missing library fails the model with its install hint."""
    from repo_builder.converters import plan
    from repo_builder.errors import MissingDependencyError

    chain = plan(model)
    for c in chain:
        problem = c.available()
        if problem and not c.deferrable:  # a deferrable one (onnx2plan) leaves its work to the deployment
            raise MissingDependencyError(f"model {model.name}: {c.name}: {problem}")
    return chain


def load(spec: Spec, model: ModelSpec, log: logging.Logger) -> Loaded:
    from repo_builder.inspect.sources import load_source

    assert model.source is not None
    loaded = load_source(model.source, spec.base_dir, model.signature)
    log.info("source inputs %s", loaded.inputs)
    log.info("source outputs %s", loaded.outputs)
    return loaded


def inspect(model: ModelSpec, loaded: Loaded, log: logging.Logger) -> tuple[ModelSpec, Loaded, dict[str, str]]:
    """The spec's names served for the model's made-up ones, and the model resolved against its source."""
    from repo_builder.inspect.resolve import apply_spec_names, resolve
    from repo_builder.inspect.sources import give_unknown_ranks
    from repo_builder.spec.rules import check_resolved

    loaded, renamed = apply_spec_names(model, loaded)
    loaded = give_unknown_ranks(model, loaded)  # the spec's dims where the model leaves the rank open
    if renamed:
        log.info("serving the spec's names for the model's made-up ones: %s", renamed)
    resolved = resolve(model, loaded.inputs, loaded.outputs)
    log.info(
        "resolved max_batch_size %d, inputs %s, outputs %s",
        resolved.max_batch_size,
        resolved.inputs,
        resolved.outputs,
    )
    problems = check_resolved(resolved)  # the spec's rules again, now on the tensors the model has
    if problems:
        raise SpecError(
            f"model {model.name}: with the tensors of its source "
            f"({model.source.ref if model.source else ''}) Triton would refuse its config:\n  - "
            + "\n  - ".join(problems)
        )
    return resolved, loaded, renamed


def convert(
    spec: Spec,
    resolved: ModelSpec,
    chain: list[Converter],
    loaded: Loaded,
    stage: Path,
    log: logging.Logger,
    step: Step,
) -> list[Converted]:
    """Run the converter chain in the model's scratch folder; what each converter produced. The part of the
    chain that makes an ONNX runs once per source and build: a model whose ONNX another model of the build
    converted takes it (build/shared.py), as one result holding the notes of the converters it stands for."""
    from repo_builder.build.shared import onnx_key, shared_onnx, shared_prefix
    from repo_builder.converters.base import Context
    from repo_builder.repository.layout import work_dir

    work = work_dir(stage) / resolved.name
    work.mkdir(parents=True, exist_ok=True)
    ctx = Context(spec_dir=spec.base_dir, work=work, log=log, loaded=loaded)

    def run(converters: list[Converter], src: Path) -> list[Converted]:
        made = []
        for c in converters:
            step(c.name)
            out = work / c.name
            out.mkdir(parents=True, exist_ok=True)
            log.info("converter %s: %s -> %s", c.name, src, out)
            converted = c.convert(resolved, src, out, ctx)
            made.append(converted)
            src = converted.path
        return made

    n = shared_prefix(chain)
    key = onnx_key(resolved, loaded, chain[:n]) if n else None
    if key is None:
        return run(chain, spec.base_dir)
    with shared_onnx(stage, key, log) as slot:  # one tf2onnx conversion per source and build (build/shared.py)
        if slot.stored:
            step(f"{chain[n - 1].name} (shared)")
            log.info("ONNX of this source converted by model %s in this build: taken from it", slot.producer())
        else:
            slot.store(run(chain[:n], spec.base_dir), resolved.name)
        onnx = slot.take(resolved, work / f"{chain[n - 1].name}.shared")
    return [onnx, *run(chain[n:], onnx.path)]


def write(spec: Spec, resolved: ModelSpec, stage: Path, final: Converted) -> None:
    """The model folder: config, version folders, labels and warmup data, then the artifacts (before
    verification, so the python runner loads model.py from its version folder)."""
    from repo_builder.render.config import render_config
    from repo_builder.repository.write import place_artifacts, write_model_layout
    from repo_builder.spec.models import tensors_of

    write_model_layout(stage, spec, resolved, render_config(resolved, tensors_of(resolved)))
    place_artifacts(stage, resolved, final.files, final.version_files)


def verify(
    resolved: ModelSpec, loaded: Loaded, spec_dir: Path, stage: Path, final: Converted, log: logging.Logger
) -> Verification:
    """Run the source and the built artifact on the same inputs and compare them within the tolerance."""
    from repo_builder.repository.layout import version_dir
    from repo_builder.verify.compare import tolerance
    from repo_builder.verify.compare import verify as compare_runs
    from repo_builder.verify.ensemble import input_tensors
    from repo_builder.verify.runners import artifact_runner, source_runner

    runner, what = artifact_runner(resolved, version_dir(stage, resolved.name, resolved.versions[0]))
    if resolved.target == "tensorrt":  # running a plan needs a CUDA runtime binding
        final.notes.append(
            "verified the ONNX the plan is built from; check the plan itself through Triton with "
            "`repo-builder validate`"
        )
    # inputs of the shapes the config promises (a dim the spec fixes is that size, not a made-up one)
    inputs = input_tensors(resolved)
    samples, ranges = check_inputs(resolved, loaded, spec_dir, inputs, log)
    verification = compare_runs(
        resolved, inputs, source_runner(loaded.call), runner, tolerance(resolved), what, samples, ranges
    )
    for note in verification.notes:
        log.warning("%s", note)
    for e in verification.errors.values():
        log.info(
            "verified %s: max abs %.3g max rel %.3g over batch sizes %s",
            e.name,
            e.max_abs,
            e.max_rel,
            verification.batch_sizes,
        )
    return verification


def check_inputs(
    resolved: ModelSpec, loaded: Loaded, spec_dir: Path, inputs: list[Tensor], log: logging.Logger
) -> tuple[Feed | None, dict[str, tuple[float, float]]]:
    """What the check feeds the model: the spec's sample data, or the value ranges for generated inputs (the
    model's own, an Embedding's vocabulary, then the spec's, which win)."""
    from repo_builder.errors import SpecError
    from repo_builder.verify.samples import load_samples, model_ranges

    if resolved.verify.inputs is not None:
        log.info("checking with the sample data %s", resolved.verify.inputs)
        return load_samples(resolved, spec_dir, inputs), {}
    unknown = sorted(set(resolved.verify.ranges) - {t.name for t in inputs})
    if unknown:
        raise SpecError(
            f"model {resolved.name}: verify.ranges names {', '.join(map(repr, unknown))}, which the model does not "
            f"take; its inputs are {', '.join(repr(t.name) for t in inputs)}"
        )
    ranges = {**model_ranges(loaded.trackable, inputs), **resolved.verify.ranges}
    if ranges:
        log.info("generated inputs within %s", ranges)
    return None, ranges


def write_reference(resolved: ModelSpec, verification: Verification, stage: Path) -> None:
    """The verification's inputs and outputs as the model's reference, stored with the config's dims (as a
    client sends them)."""
    from repo_builder.repository.layout import references_path

    ref = references_path(stage, resolved.name)
    ref.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {}
    tensors: list[tuple[str, Any, dict[str, Any]]] = [
        *(("input", t, verification.reference_inputs) for t in resolved.inputs or []),
        *(("output", t, verification.reference_outputs) for t in resolved.outputs or []),
    ]
    for kind, t, values in tensors:
        value = values[t.name]
        lead = [value.shape[0]] if resolved.max_batch_size > 0 else []
        if t.reshape is not None:
            value = value.reshape([*lead, *t.dims])
        arrays[f"{kind}/{t.name}"] = value
    save_reference(ref, arrays)


def save_reference(path: Path, arrays: dict[str, Any]) -> None:
    """Write a reference.npz that loads without pickle (`validate` reads it with allow_pickle=False, as a
    repository may come from someone else): STRING tensors, object arrays of bytes here, are stored as
    fixed-width bytes (numpy's `S` dtype, which drops trailing NUL bytes of an element)."""
    import numpy as np

    stored = {}
    for name, value in arrays.items():
        value = np.asarray(value)
        if value.dtype == object:
            items = [x if isinstance(x, bytes) else str(x).encode() for x in value.reshape(-1)]
            value = np.asarray(items, dtype=np.bytes_).reshape(value.shape)
        stored[name] = value
    np.savez(path, **stored)


def entry(
    resolved: ModelSpec,
    stage: Path,
    chain: list[Converter],
    results: list[Converted],
    verification: Verification | None,
    renamed: dict[str, str],
) -> ManifestEntry:
    """The model's manifest entry: what was built (hashed), verified and recorded by the converters."""
    from repo_builder.repository.layout import references_path, version_dir
    from repo_builder.repository.write import sha256_tree
    from repo_builder.verify.compare import tolerance

    artifacts = {}
    for v in resolved.versions:
        for item in sorted(version_dir(stage, resolved.name, v).iterdir()):
            artifacts[f"{v}/{item.name}"] = sha256_tree(item)
    fields: dict[str, Any] = {
        "artifacts": artifacts,
        "reference": references_path(Path(), resolved.name).as_posix() if verification else None,
        "tolerance": tolerance(resolved),
        "max_error": verification.max_error if verification else None,
        "errors": {k: {"max_abs": e.max_abs, "max_rel": e.max_rel} for k, e in verification.errors.items()}
        if verification
        else {},
        "notes": [n for r in results for n in r.notes] + (verification.notes if verification else []),
        "converters": [c.name for c in chain],
    }
    if renamed:
        fields["renamed"] = renamed
    if resolved.target == "python":
        fields["python_runtime"] = resolved.python_runtime or "onnxruntime"
    for r in results:
        fields.update(r.manifest)
    return model_entry(resolved, results[-1].status, tensors=True, **fields)


def ensemble_reference(spec: Spec, model: ModelSpec, stage: Path, log: logging.Logger, step: Step) -> ManifestEntry:
    """Run the ensemble's steps on their built artifacts and store the result as the ensemble's reference,
    so that `validate` checks what the served ensemble computes, wiring included. The entry carries the
    reference and its tolerance (the steps' own bound the difference), or a note why there is none."""
    from repo_builder.repository.layout import references_path
    from repo_builder.verify.compare import tolerance
    from repo_builder.verify.ensemble import NoReference, ensemble_inputs, ensemble_runner

    steps = [s.model for s in model.steps or []]
    log.info("ensemble %s: steps %s", model.name, " -> ".join(steps))
    _log_reproduce(spec, model, stage, log)
    step("reference")
    try:
        runner = ensemble_runner(spec, model, stage)
    except NoReference as e:
        log.warning("no reference for this ensemble: %s", e)
        return model_entry(model, ModelStatus.BUILT, notes=[f"no reference: {e}"])
    feed = ensemble_inputs(model, spec.base_dir)
    outputs = runner(feed)
    for k, v in outputs.items():
        log.info("output %s: shape %s dtype %s", k, list(v.shape), v.dtype)
    arrays = {**{f"input/{k}": v for k, v in feed.items()}, **{f"output/{k}": v for k, v in outputs.items()}}
    save_reference(references_path(stage, model.name), arrays)
    tols = [tolerance(spec.model(s)) for s in steps if spec.model(s).target != "ensemble"] or [tolerance(model)]
    tol = {k: max(t[k] for t in tols) for k in ("atol", "rtol")}
    tol.update({k: v for k, v in (("atol", model.verify.atol), ("rtol", model.verify.rtol)) if v is not None})
    return model_entry(
        model, ModelStatus.BUILT, reference=references_path(Path(), model.name).as_posix(), tolerance=tol
    )
