"""String tensors as onnxruntime takes and gives them: str elements, where Triton and TensorFlow use bytes.

The build's check runs ONNX models with these functions (verify/runners.py), and generated model.py files
include them as the template `_strings.py.j2` (render/config.py serves this file's text from the marker line
on): those files run in Triton's python-backend stub, where repo_builder cannot be imported. So what follows
the marker needs nothing but numpy as `np`, which every such model.py imports.
"""

from __future__ import annotations

import numpy as np


# _strings.py.j2 is this file below this line
def to_onnxruntime(value: np.ndarray) -> np.ndarray:
    """onnxruntime takes a string tensor's elements as str; Triton and TensorFlow hand them over as bytes,
    which onnxruntime would read as their repr ("b'...'"), so they are decoded (UTF-8)."""
    if value.dtype != object:
        return value
    items = [x.decode() if isinstance(x, bytes) else x for x in value.reshape(-1)]
    return np.array(items, dtype=object).reshape(value.shape)


def from_onnxruntime(value: np.ndarray) -> np.ndarray:
    """onnxruntime's string outputs (str elements) as bytes, as TensorFlow and Triton's clients give them."""
    if value.dtype != object:
        return value
    items = [x.encode() if isinstance(x, str) else x for x in value.reshape(-1)]
    return np.array(items, dtype=object).reshape(value.shape)
