"""Ensembles' reference vectors: their built steps run in order, tensors routed by the input and output maps."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from repo_builder.spec.models import ModelSpec, Spec

if TYPE_CHECKING:
    from repo_builder.inspect.tensors import Tensor


from repo_builder.verify.compare import Feed, Runner, generate, numpy_of
from repo_builder.verify.runners import artifact_runner


class NoReference(Exception):
    """An ensemble step cannot run here (e.g. TF-TRT without TensorRT): the ensemble gets no reference."""


def with_reshapes(runner: Runner, config: Any) -> Runner:
    """Run a step in the config's shapes: inputs go to the model as `reshape` says, outputs come back
    in the config's dims (what Triton passes between ensemble steps)."""
    batching = config.max_batch_size > 0
    to_model = {t.name: list(t.reshape.shape) for t in config.input if t.HasField("reshape")}
    to_config = {t.name: list(t.dims) for t in config.output if t.HasField("reshape")}
    if not to_model and not to_config:
        return runner

    def lead(value: Any) -> list[int]:
        return [value.shape[0]] if batching else []

    def run(feed: Feed) -> Feed:
        feed = {k: v.reshape(lead(v) + to_model[k]) if k in to_model else v for k, v in feed.items()}
        out = runner(feed)
        return {k: v.reshape(lead(v) + to_config[k]) if k in to_config else v for k, v in out.items()}

    return run


def step_runner(spec: Spec, model: ModelSpec, version: int, repo: Path) -> Runner:
    """Run a built model of the repository from its artifact in `repo` (a plan: the ONNX it is built from)."""
    from repo_builder.repository.layout import CONFIG_NAME, ONNX_NAME, config_path, version_dir
    from repo_builder.triton import rules as triton_rules

    if model.target == "ensemble":
        return ensemble_runner(spec, model, repo)
    if model.target == "tftrt":
        raise NoReference(f"step {model.name} is a TF-TRT SavedModel, which runs only where TensorRT is")
    folder = version_dir(repo, model.name, version)
    if model.target in ("onnx", "tensorrt") and not (folder / ONNX_NAME).is_file():
        raise NoReference(f"step {model.name} has no {ONNX_NAME} in version {version} to run here")
    runner, _ = artifact_runner(model, folder)
    config = triton_rules.parse(config_path(repo, model.name).read_text(), f"{model.name}/{CONFIG_NAME}")
    return with_reshapes(runner, config)


def ensemble_runner(spec: Spec, model: ModelSpec, repo: Path) -> Runner:
    """The ensemble's steps run one after the other on their built artifacts, tensors routed by the maps."""
    steps = []
    for s in model.steps or []:
        target = spec.model(s.model)
        version = s.version if s.version != -1 else max(target.versions)
        steps.append((s, step_runner(spec, target, version, repo)))
    outputs = [t.name for t in model.outputs or []]

    def run(feed: Feed) -> Feed:
        tensors = dict(feed)
        for s, runner in steps:
            produced = runner({model_input: tensors[tensor] for model_input, tensor in s.input_map.items()})
            for model_output, tensor in s.output_map.items():
                tensors[tensor] = numpy_of(produced[model_output])
        return {name: tensors[name] for name in outputs}

    return run


def input_tensors(model: ModelSpec, as_the_model_sees: bool = True) -> list[Tensor]:
    """A resolved model's inputs as full shapes, None where variable (the batch dim when it batches): the
    shapes the model itself takes (`reshape` applied), or the config's dims, which clients send."""
    from repo_builder.inspect.tensors import Tensor

    lead: tuple[int | None, ...] = (None,) if model.max_batch_size > 0 else ()
    found = []
    for t in model.inputs or []:
        dims = t.reshape if as_the_model_sees and t.reshape is not None else t.dims
        found.append(Tensor(t.name, t.dtype, lead + tuple(None if d < 0 else d for d in dims)))
    return found


def ensemble_inputs(model: ModelSpec, spec_dir: Path, seed: int = 0) -> Feed:
    """The ensemble's sample data (`verify.inputs`), else generated inputs in its config shapes within its
    `verify.ranges`; batch max(1, max_batch_size) when it batches."""
    from repo_builder.verify.samples import batches_of, load_samples

    batch = max(1, model.max_batch_size) if model.max_batch_size > 0 else 0
    tensors = input_tensors(model, as_the_model_sees=False)
    if model.verify.inputs is not None:
        return batches_of(load_samples(model, spec_dir, tensors), [batch])[-1][1]
    return generate(tensors, batch, seed=seed, ranges=dict(model.verify.ranges))
