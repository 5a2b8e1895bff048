"""One tf2onnx conversion per source and build: the models of a build whose chains go through ONNX (targets
onnx, tensorrt, python with onnxruntime) and convert the same source the same way share one conversion.

The first model to need an ONNX runs its chain up to savedmodel2onnx and stores the result in the build's
scratch folder (`<stage>/.work/.onnx/<key>/`), under a key of everything that part of the chain depends on
(`onnx_key`): the source, the signature, opset and max_batch_size, the tensors as resolved, and for a Python
factory the values of the variables it built (a factory that is not seeded builds other weights each time:
its models then convert alone). The others take it from there, in whichever worker they run: a file lock per
key (fcntl.flock) makes a model wait while another converts its ONNX, instead of converting it again.

tf2onnx writes the model's name into the graph (`doc_string`: "converted from <name>"), so every model, the
one that converted included, takes its model.onnx from the stored one with its own name written in: a
model's ONNX is the same bytes whether it converted it or another model of the build did. The store goes
with the scratch folder when the build ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repo_builder import __version__
from repo_builder.repository.layout import ONNX_NAME, work_dir
from repo_builder.spec.models import ModelSpec

if TYPE_CHECKING:
    from repo_builder.converters.base import Converted, Converter
    from repo_builder.inspect.tensors import Loaded

#: the converter whose result is shared, and the folder of the store in the scratch folder (hidden: never
#: a model's name, so never a model's own scratch folder)
SHARED_CONVERTER = "savedmodel2onnx"
STORE_DIR = ".onnx"
#: what the store holds beside the ONNX: which model converted it, the notes and manifest fields of the
#: converters that made it
META_NAME = "meta.json"


def shared_prefix(chain: list[Converter]) -> int:
    """How many converters of `chain` make the ONNX that can be shared (0: none)."""
    names = [c.name for c in chain]
    return names.index(SHARED_CONVERTER) + 1 if SHARED_CONVERTER in names else 0


def weights_digest(trackable: Any) -> str | None:
    """sha256 of the values of the variables a model holds, in their order; None when it holds none that
    can be read."""
    import numpy as np

    variables = getattr(trackable, "variables", None)
    if variables is None:
        return None
    h = hashlib.sha256()
    try:
        for v in variables:
            value = np.asarray(v.numpy() if hasattr(v, "numpy") else v)
            h.update(f"{getattr(v, 'name', '')}|{value.dtype.str}|{value.shape}|".encode())
            h.update(np.ascontiguousarray(value).tobytes())
    except Exception:  # a variable that cannot be read here: no sharing, never a failure
        return None
    return h.hexdigest()


def onnx_key(resolved: ModelSpec, loaded: Loaded, prefix: list[Converter]) -> str | None:
    """Everything the chain `prefix` (up to savedmodel2onnx) reads of a model: equal keys in one build give
    the same ONNX, but for the name written into it. None when it cannot be shared (a factory whose
    variables cannot be read)."""
    source = resolved.source
    if source is None:
        return None

    def tensors(given: list[Any] | None) -> list[list[Any]]:
        return [[t.name, t.dtype, list(t.dims), t.reshape] for t in given or []]

    def found(given: list[Any]) -> list[list[Any]]:
        return [[t.name, t.dtype, None if t.shape is None else list(t.shape)] for t in given]

    payload: dict[str, Any] = {
        "repo_builder": __version__,
        "converters": [c.name for c in prefix],
        "source": source.model_dump(mode="json"),
        "loaded": [loaded.kind, found(loaded.inputs), found(loaded.outputs)],
        "signature": resolved.signature,
        "opset": resolved.opset,
        "max_batch_size": resolved.max_batch_size,
        "inputs": tensors(resolved.inputs),
        "outputs": tensors(resolved.outputs),
    }
    if source.kind == "python":  # a file source is the same bytes for the whole build; a factory may not be
        digest = weights_digest(loaded.trackable)
        if digest is None:
            return None
        payload["weights"] = digest
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass
class Slot:
    """The store of one key, held under its lock."""

    folder: Path
    log: logging.Logger

    @property
    def stored(self) -> bool:
        return (self.folder / META_NAME).is_file()

    def producer(self) -> str:
        return str(json.loads((self.folder / META_NAME).read_text(encoding="utf-8"))["producer"])

    def store(self, made: list[Converted], model: str) -> None:
        """Keep what the chain up to the ONNX made (its last result's model.onnx, every result's notes and
        manifest fields); the meta file, written last, marks the store complete."""
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(made[-1].path, self.folder / ONNX_NAME)
        manifest: dict[str, Any] = {}
        for r in made:
            manifest.update(r.manifest)
        meta = {"producer": model, "notes": [n for r in made for n in r.notes], "manifest": manifest}
        tmp = self.folder / f"{META_NAME}.tmp"
        tmp.write_text(json.dumps(meta), encoding="utf-8")
        os.replace(tmp, self.folder / META_NAME)

    def take(self, model: ModelSpec, out: Path) -> Converted:
        """The stored ONNX as `model`'s, with its name written in, in `out`."""
        import onnx

        from repo_builder.converters.base import Converted

        meta = json.loads((self.folder / META_NAME).read_text(encoding="utf-8"))
        proto = onnx.load(str(self.folder / ONNX_NAME))
        proto.graph.doc_string = f"converted from {model.name}"  # what tf2onnx writes
        out.mkdir(parents=True, exist_ok=True)
        target = out / ONNX_NAME
        onnx.save(proto, str(target))
        return Converted(
            target, "onnx", notes=list(meta["notes"]), manifest=dict(meta["manifest"]), files={ONNX_NAME: target}
        )


@contextlib.contextmanager
def shared_onnx(stage: Path, key: str, log: logging.Logger) -> Iterator[Slot]:
    """The store of `key` in the build's scratch folder, held under its lock (waiting while another model
    of the build holds it: it is converting this ONNX)."""
    root = work_dir(stage) / STORE_DIR
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another model of this build converting the same source to ONNX")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield Slot(root / key, log)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
