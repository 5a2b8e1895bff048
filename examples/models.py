"""Example model factories: tiny, seeded, built in code (no downloads).

Each function returns a Keras model (or a tf.Module with a serving signature); `models.yaml` names them as
`models.py:function`. Weights are random but deterministic (seeded), which is all a conversion needs.
"""

from __future__ import annotations

from typing import Any


def _seed(value: int) -> None:
    import keras

    keras.utils.set_random_seed(value)


def build_mlp() -> Any:
    """Tabular MLP: 16 float features -> 4 class probabilities."""
    import keras

    _seed(1)
    features = keras.Input(shape=(16,), name="features")
    x = keras.layers.Dense(32, activation="relu")(features)
    x = keras.layers.Dense(16, activation="relu")(x)
    probs = keras.layers.Dense(4, activation="softmax", name="probs")(x)
    return keras.Model(features, probs, name="tabular_mlp")


def build_cnn() -> Any:
    """Small image CNN: 32x32 RGB -> 10 class probabilities."""
    import keras

    _seed(2)
    image = keras.Input(shape=(32, 32, 3), name="image")
    x = keras.layers.Conv2D(8, 3, activation="relu", padding="same")(image)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(16, 3, activation="relu", padding="same")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    probs = keras.layers.Dense(10, activation="softmax", name="class_probs")(x)
    return keras.Model(image, probs, name="image_cnn")


def build_text() -> Any:
    """Text classifier: int32 token ids of any length -> 2 sentiment probabilities."""
    import keras

    _seed(3)
    ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(1000, 16)(ids)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    sentiment = keras.layers.Dense(2, activation="softmax", name="sentiment")(x)
    return keras.Model(ids, sentiment, name="text_classifier")


def build_two_tower() -> Any:
    """Two inputs, two outputs: user and item features -> a match score and a joint embedding."""
    import keras

    _seed(4)
    user = keras.Input(shape=(8,), name="user_features")
    item = keras.Input(shape=(12,), name="item_features")
    u = keras.layers.Dense(16, activation="relu")(user)
    i = keras.layers.Dense(16, activation="relu")(item)
    joint = keras.layers.Concatenate()([u, i])
    embedding = keras.layers.Dense(6, name="embedding")(joint)
    score = keras.layers.Dense(1, activation="sigmoid", name="score")(joint)
    return keras.Model(
        {"user_features": user, "item_features": item},
        {"score": score, "embedding": embedding},
        name="two_tower",
    )


def build_normalizer() -> Any:
    """A tf.Module (not Keras) with a serving signature: standardizes 16 raw features."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(5)

    class Normalizer(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mean = tf.Variable(rng.standard_normal(16).astype("float32"), trainable=False)
            self.std = tf.Variable((rng.random(16) + 0.5).astype("float32"), trainable=False)

        @tf.function(input_signature=[tf.TensorSpec([None, 16], tf.float32, name="raw_features")])
        def serve(self, raw_features: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"normalized": (raw_features - self.mean) / self.std}

    return Normalizer()
