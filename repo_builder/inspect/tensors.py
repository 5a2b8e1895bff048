"""A model's tensors as it declares them, and a loaded source model (no TensorFlow here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Tensor:
    """One input or output as the model declares it: full shape, None for an unknown dim; a shape of None is a
    tensor of unknown rank (the spec's dims give it)."""

    name: str
    dtype: str  # Triton short name, FP32
    shape: tuple[int | None, ...] | None


@dataclass
class Loaded:
    """A source model loaded with TensorFlow: its tensors and a way to run it (dict in, dict out)."""

    kind: str  # keras, module, saved_model
    inputs: list[Tensor]
    outputs: list[Tensor]
    call: Callable[[dict[str, Any]], dict[str, Any]]
    #: the object that holds the model's variables (Keras model, tf.Module, loaded SavedModel): the exported
    #: SavedModel tracks it, so the variables are saved with the serving function
    trackable: Any = None
    notes: list[str] = field(default_factory=list)
    #: a TF1 SavedModel (kind saved_model_v1, trackable its v1 Session): the signature's output tensors
    fetches: list[str] = field(default_factory=list)
