"""Plain ONNX Runtime CUDA when the batch size changes from one run to the next (on a GPU host, by hand).

    python -m benchmarks.gpu_batch_sizes MODEL.onnx [ALGO ...]     e.g. OUT/repo/resnet50/1/model.onnx
                                                                    from `benchmarks.gpu_serving build OUT`

For each `cudnn_conv_algo_search` setting (HEURISTIC, DEFAULT, HEURISTIC with cudnn_conv_use_max_workspace
0, EXHAUSTIVE; or those named): every batch size 1..8 runs twice, then up to 40 runs at batch sizes in random
order (at most 8 s), then 50 runs each at a fixed batch of 1 and of 8. Prints ms per run for each. This is
what made GPU instances run ONNX Runtime at max_batch_size (templates/_pipeline.py.j2; benchmarks/README.md,
section 6). The input is the model's first, float32, with its non-batch dims taken from the model.
"""

from __future__ import annotations

import sys
import time

import numpy as np

CONFIGS = {
    "HEURISTIC": {"cudnn_conv_algo_search": "HEURISTIC"},
    "DEFAULT": {"cudnn_conv_algo_search": "DEFAULT"},
    "HEURISTIC+ws0": {"cudnn_conv_algo_search": "HEURISTIC", "cudnn_conv_use_max_workspace": "0"},
    "EXHAUSTIVE": {"cudnn_conv_algo_search": "EXHAUSTIVE"},
}


def measure(model: str, options: dict[str, str]) -> str:
    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=[("CUDAExecutionProvider", options), "CPUExecutionProvider"])
    if session.get_providers()[0] != "CUDAExecutionProvider":
        raise SystemExit(f"ONNX Runtime did not take the CUDA provider: {session.get_providers()}")
    feed = session.get_inputs()[0]
    dims = [d if isinstance(d, int) else 1 for d in feed.shape[1:]]
    rng = np.random.default_rng(0)
    xs = {b: rng.standard_normal((b, *dims)).astype(np.float32) for b in range(1, 9)}
    for b in list(range(1, 9)) * 2:
        session.run(None, {feed.name: xs[b]})
    runs = images = 0
    start = time.perf_counter()
    for b in (int(b) for b in rng.integers(1, 9, 40)):
        session.run(None, {feed.name: xs[b]})
        runs, images = runs + 1, images + b
        if time.perf_counter() - start > 8:
            break
    varied = time.perf_counter() - start
    fixed = {}
    for b in (1, 8):
        for _ in range(5):
            session.run(None, {feed.name: xs[b]})
        start = time.perf_counter()
        for _ in range(50):
            session.run(None, {feed.name: xs[b]})
        fixed[b] = 1000 * (time.perf_counter() - start) / 50
    return (
        f"varied batch sizes: {runs} runs, {1000 * varied / runs:.1f} ms per run ({images / varied:.0f} images/s) | "
        f"fixed: batch 1 {fixed[1]:.2f} ms, batch 8 {fixed[8]:.2f} ms ({8000 / fixed[8]:.0f} images/s)"
    )


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    import onnxruntime as ort

    if hasattr(ort, "preload_dlls"):
        ort.preload_dlls()
    for name in argv[1:] or list(CONFIGS):
        print(f"{name}: {measure(argv[0], CONFIGS[name])}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
