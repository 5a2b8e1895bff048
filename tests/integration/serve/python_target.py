"""The python target's generated model.py for a test model: one FP32 input `x`, one FP32 output `y`."""

from __future__ import annotations

from pathlib import Path


def write_model_py(version_dir: Path, name: str, x_dims: list[int], y_dims: list[int]) -> None:
    """model.py as `build` renders it for target python (onnxruntime, model.onnx beside it, max_batch_size 8)."""
    from repo_builder.converters._python import render_model_py
    from repo_builder.spec.models import ModelSpec

    model = ModelSpec.model_validate(
        {
            "name": name,
            "source": {"python": "m.py:f"},
            "target": "python",
            "max_batch_size": 8,
            "inputs": [{"name": "x", "dtype": "FP32", "dims": x_dims}],
            "outputs": [{"name": "y", "dtype": "FP32", "dims": y_dims}],
        }
    )
    (version_dir / "model.py").write_text(render_model_py(model, "onnxruntime", "model.onnx"))
