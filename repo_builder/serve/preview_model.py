"""Triton python-backend model that previews a TensorFlow, ONNX or TensorRT model on CPU.

repo-builder copies this file as `<model>/<version>/model.py` into the temporary repository the
embedded server serves, next to `preview.json` (which runtime, which artifact) and a link to the
artifact. It is never written into a user's repository. All requests of one execute() call run as
one batch (when the model batches) and the results are split back per request.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils  # the python backend's


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        here = Path(args["model_repository"]) / args["model_version"]
        preview = json.loads((here / "preview.json").read_text())
        self.model_name = config["name"]
        self.batching = int(config.get("max_batch_size", 0)) > 0
        self.input_names = [t["name"] for t in config.get("input", [])]
        self.outputs = [(t["name"], pb_utils.triton_string_to_numpy(t["data_type"])) for t in config["output"]]
        artifact = str(here / preview["artifact"])
        runtime = preview["runtime"]
        self.run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
        if runtime == "onnxruntime":
            import onnxruntime as ort

            self.session = ort.InferenceSession(artifact, providers=["CPUExecutionProvider"])
            self.run = self._run_onnx
        elif runtime == "tensorflow":
            import tensorflow as tf

            self.tf = tf
            self.loaded = tf.saved_model.load(artifact)
            signature = preview.get("signature") or "serving_default"
            if signature not in self.loaded.signatures:
                raise pb_utils.TritonModelException(
                    f"{self.model_name}: SavedModel {artifact} has no signature {signature!r} "
                    f"(it has: {', '.join(self.loaded.signatures) or 'none'})"
                )
            self.function = self.loaded.signatures[signature]
            self.run = self._run_tensorflow
        else:
            raise pb_utils.TritonModelException(f"{self.model_name}: unknown preview runtime {runtime!r}")

    def _run_onnx(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [name for name, _ in self.outputs]
        return dict(zip(names, self.session.run(names, feed), strict=True))

    def _run_tensorflow(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self.function(**{name: self.tf.constant(value) for name, value in feed.items()})
        return {name: tensor.numpy() for name, tensor in result.items()}

    def _responses(self, feed: dict[str, np.ndarray]) -> Any:
        produced = self.run(feed)
        return {name: np.asarray(produced[name]).astype(dtype, copy=False) for name, dtype in self.outputs}

    def execute(self, requests: list[Any]) -> list[Any]:
        feeds: list[dict[str, np.ndarray]] = []
        for request in requests:
            feed = {}
            for name in self.input_names:
                tensor = pb_utils.get_input_tensor_by_name(request, name)
                if tensor is not None:
                    feed[name] = tensor.as_numpy()
            feeds.append(feed)
        try:
            if self.batching and len(feeds) > 1:
                sizes = [next(iter(feed.values())).shape[0] if feed else 0 for feed in feeds]
                merged = {name: np.concatenate([feed[name] for feed in feeds]) for name in feeds[0]}
                produced = self._responses(merged)
                bounds = np.cumsum(sizes)[:-1]
                split = {name: np.split(value, bounds) for name, value in produced.items()}
                results = [{name: parts[i] for name, parts in split.items()} for i in range(len(feeds))]
            else:
                results = [self._responses(feed) for feed in feeds]
        except Exception as e:  # every request of the batch gets the error, the instance stays up
            message = f"{self.model_name} (repo-builder preview): {type(e).__name__}: {e}"
            # one TritonError per response: the python backend frees each response's error, so one object
            # shared by a batch's responses crashed tritonserver (SIGSEGV) as soon as two requests failed
            return [
                pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message)) for _ in requests
            ]
        return [
            pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(name, value) for name, value in result.items()])
            for result in results
        ]

    def finalize(self) -> None:
        self.session = None
        self.loaded = None
