"""Benchmark 3: `repo-builder render` of generated specs with 10, 100, 300 and 1,000 models."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from benchmarks.measure import median_run, repo_builder_cmd

SIZES = (10, 100, 300, 1000)


def make_spec(folder: Path, count: int) -> Path:
    """A spec with `count` ONNX models, all tensors explicit (render needs no TensorFlow)."""
    (folder / "factory.py").write_text("def build():\n    raise NotImplementedError('render only')\n")
    models = [
        {
            "name": f"model_{i:04d}",
            "source": {"python": "factory.py:build"},
            "target": "onnx",
            "max_batch_size": 16,
            "inputs": [{"name": "features", "dtype": "FP32", "dims": [32]}],
            "outputs": [{"name": "scores", "dtype": "FP32", "dims": [4]}],
            "dynamic_batching": {"max_queue_delay_microseconds": 100},
            "instance_groups": [{"kind": "KIND_CPU", "count": 2}],
        }
        for i in range(count)
    ]
    spec = folder / f"spec_{count}.yaml"
    spec.write_text(yaml.safe_dump({"repository": f"repo_{count}", "models": models}, sort_keys=False))
    return spec


def run(repeats: int = 3) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="rb-bench-render-") as tmp:
        folder = Path(tmp)
        for count in SIZES:
            spec = make_spec(folder, count)
            out = folder / f"repo_{count}"
            result = median_run(
                repo_builder_cmd("-q", "render", str(spec), "-o", str(out)),
                repeats,
                setup=lambda out=out: shutil.rmtree(out, ignore_errors=True),
            )
            rows.append(
                {
                    "models": count,
                    "wall_s": round(result.wall_s, 3),
                    "ms_per_model": round(1000 * result.wall_s / count, 3),
                }
            )
    # the fixed start-up cost (interpreter, imports) is shared; the slope is the per-model cost
    small, large = rows[0], rows[-1]
    marginal = (large["wall_s"] - small["wall_s"]) / (large["models"] - small["models"])
    # flat: the cost of each added model does not grow with the spec. The 10 -> 100 segment is ~0.1 s on a
    # ~0.9 s start-up and within timer noise, so flatness compares the two longer segments (100 -> 300 and
    # 300 -> 1,000): the later one may cost at most 1.5x the earlier one per model.
    slopes = [1000 * (b["wall_s"] - a["wall_s"]) / (b["models"] - a["models"]) for a, b in itertools.pairwise(rows)]
    flat = slopes[-1] <= 1.5 * max(slopes[-2], 0.1)
    return {
        "curve": rows,
        "wall_s_1000": rows[-1]["wall_s"],
        "marginal_ms_per_model": round(1000 * marginal, 3),
        "segment_ms_per_model": [round(x, 3) for x in slopes],
        "flat": flat,
        "target": "1,000 models under 2 s; per-model cost flat from 10 to 1,000",
        "met": rows[-1]["wall_s"] < 2.0 and flat,
    }
