"""Benchmark 3: `repo-builder render` of generated specs with 10, 100, 300 and 1,000 models."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from benchmarks.measure import ROOT, repo_builder_cmd, run_measured

SIZES = (10, 100, 300, 1000)


def make_spec(folder: Path, count: int, name: str = "") -> Path:
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
    spec = folder / f"spec_{name or count}.yaml"
    spec.write_text(yaml.safe_dump({"repository": f"repo_{name or count}", "models": models}, sort_keys=False))
    return spec


#: tmpfs: the tool's own cost without the disk's (see run())
MEMORY = Path("/dev/shm")

# Time per model inside one process: load_spec + render_repository of a spec, after a warm-up render of
# another spec (imports, Jinja's template compilation, Triton's ModelConfig class: start-up, not per model).
_IN_PROCESS = r"""
import sys, time
from repo_builder.repository.write import render_repository
from repo_builder.spec import load_spec
warm_spec, warm_out, spec, out = sys.argv[1:5]
render_repository(load_spec(warm_spec), warm_out)
t0 = time.perf_counter()
render_repository(load_spec(spec), out)
print(time.perf_counter() - t0)
"""


def _in_process_s(warm: Path, spec: Path, out: Path) -> float:
    warm_out = out.with_name(out.name + "_warm")
    for folder in (out, warm_out):
        shutil.rmtree(folder, ignore_errors=True)
    done = subprocess.run(
        [sys.executable, "-c", _IN_PROCESS, str(warm), str(warm_out), str(spec), str(out)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return float(done.stdout.strip().splitlines()[-1])


def _curve(folder: Path, repeats: int) -> list[dict[str, Any]]:
    rows = []
    warm = make_spec(folder, 10, name="warm")
    for count in SIZES:
        spec = make_spec(folder, count)
        out = folder / f"repo_{count}"
        runs = []
        inside = []
        for _ in range(repeats):
            shutil.rmtree(out, ignore_errors=True)
            runs.append(run_measured(repo_builder_cmd("-q", "render", str(spec), "-o", str(out))))
            inside.append(_in_process_s(warm, spec, out))
        shutil.rmtree(out, ignore_errors=True)
        wall = statistics.median(r.wall_s for r in runs)
        rows.append(
            {
                "models": count,
                "wall_s": round(wall, 3),
                "sys_s": round(statistics.median(r.sys_s for r in runs), 3),
                "ms_per_model": round(1000 * wall / count, 3),
                "in_process_ms_per_model": round(1000 * statistics.median(inside) / count, 3),
                "runs": [round(r.wall_s, 3) for r in runs],
            }
        )
    return rows


def run(repeats: int = 5) -> dict[str, Any]:
    """`repo-builder render` of 10 to 1,000 models, with the repository on tmpfs and on the machine's disk.

    Wall time of the command (start-up included) for the 2 s target; time per model measured inside one
    process (spec loading, rendering, the ModelConfig check, writing) for flatness, as the command's
    ~0.3 s start-up would drown the smaller sizes. The tool does the minimum of file-system work (2
    folders and 1 file per model), but on this VM the disk's kernel time for them swings several-fold
    between runs of the same code (1,000 models: 0.05 s system time on tmpfs; 0.1 to 2.5 s on the ext4
    disk, 740 us per mkdir in a slow run under strace), so the targets are judged on tmpfs, the tool's
    own cost, and the disk's figures stand beside them.
    """
    with tempfile.TemporaryDirectory(prefix="rb-bench-render-") as tmp:
        disk = _curve(Path(tmp), repeats)
    memory: list[dict[str, Any]] = []
    if MEMORY.is_dir():
        with tempfile.TemporaryDirectory(prefix="rb-bench-render-", dir=MEMORY) as tmp:
            memory = _curve(Path(tmp), repeats)
    judged = memory or disk
    per_model = [row["in_process_ms_per_model"] for row in judged]
    # flat: no size costs more than 1.5x per model what the cheapest size does
    flat = max(per_model) <= 1.5 * min(per_model)
    return {
        "judged_on": "tmpfs" if memory else "disk",
        "curve": judged,
        "disk_curve": disk,
        "wall_s_1000": judged[-1]["wall_s"],
        "disk_wall_s_1000": disk[-1]["wall_s"],
        "in_process_ms_per_model": per_model,
        "disk_in_process_ms_per_model": [row["in_process_ms_per_model"] for row in disk],
        "repeats": repeats,
        "flat": flat,
        "target": "1,000 models under 2 s; per-model cost flat from 10 to 1,000",
        "met": judged[-1]["wall_s"] < 2.0 and flat,
    }
