"""Shared by savedmodel2python and onnx2python: a Triton python-backend model.

A generated model.py next to the artifact it runs.

`savedmodel2python` runs the SavedModel with TensorFlow inside Triton; `onnx2python` runs the ONNX file with
onnxruntime. Both work on any Triton release (the TensorFlow backend ends at 25.02) and on CPU.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import ClassVar

from repo_builder import deps
from repo_builder.converters.base import Context, Converted, Format
from repo_builder.spec.models import ModelSpec
from repo_builder.triton.platforms import artifact_name


def render_model_py(model: ModelSpec, runtime: str, artifact: str, tf1: bool = False) -> str:
    from repo_builder import __version__
    from repo_builder.render.config import render_template
    from repo_builder.triton import dtypes

    def pairs(tensors: list[object]) -> str:
        return repr([(t.name, dtypes.to_numpy(t.dtype)) for t in tensors])  # type: ignore[attr-defined]

    return render_template(
        "python_model.py.j2",
        version=__version__,
        model_name=model.name,
        runtime=runtime,
        artifact=artifact,
        signature=model.signature,
        max_batch_size=model.max_batch_size,
        inputs=pairs(list(model.inputs or [])),
        outputs=pairs(list(model.outputs or [])),
        tf1=tf1,
    )


class ToPython:
    name: ClassVar[str]
    source: ClassVar[Format]
    target: ClassVar[Format] = "python"
    deferrable: ClassVar[bool] = False
    runtime: ClassVar[str]

    @property
    def artifact(self) -> str:
        """The artifact model.py runs: the source's (model.onnx, model.savedmodel)."""
        return artifact_name(self.source)

    def available(self) -> str | None:
        module = "onnxruntime" if self.runtime == "onnxruntime" else "tensorflow"
        return None if deps.is_available(module) else f"{module} is missing: {deps.install_hint(module)}"

    def convert(self, model: ModelSpec, src: Path, out: Path, ctx: Context) -> Converted:
        out.mkdir(parents=True, exist_ok=True)
        target = out / self.artifact
        if src.resolve() != target.resolve():
            if src.is_dir():
                shutil.copytree(src, target)
            else:
                shutil.copy2(src, target)
        code = out / artifact_name(self.target)
        tf1 = False
        if self.runtime == "tensorflow":
            from repo_builder.inspect.tf1 import is_tf1_saved_model

            tf1 = is_tf1_saved_model(target)
        code.write_text(render_model_py(model, self.runtime, self.artifact, tf1))
        ctx.log.info("wrote %s running %s with %s", code.name, self.artifact, self.runtime)
        return Converted(code, "python", files={code.name: code, self.artifact: target})
