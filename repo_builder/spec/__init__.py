"""The spec: the YAML file as pydantic models (models.py, the blocks of a model entry in blocks.py), their
rules (rules.py for a model entry, ensemble.py, deployment.py; the warnings in advice.py), and the one loader
that locates every problem (load.py)."""

from repo_builder.spec.load import load_spec
from repo_builder.spec.models import (
    InputSpec,
    ModelSpec,
    OutputSpec,
    Source,
    Spec,
    Tensors,
    spec_tensors,
    tensors_of,
)

__all__ = [
    "InputSpec",
    "ModelSpec",
    "OutputSpec",
    "Source",
    "Spec",
    "Tensors",
    "load_spec",
    "spec_tensors",
    "tensors_of",
]
