"""The GPU benchmark's model: a realistic conv net, ResNet-50 at 224x224 with random weights (no download)."""

from __future__ import annotations

from typing import Any


def resnet50() -> Any:
    import keras

    keras.utils.set_random_seed(0)
    return keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3), classes=1000)
