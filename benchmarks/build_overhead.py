"""Benchmarks 1 and 2: `repo-builder build` against a plain tf2onnx script (the floor), and the no-op rebuild.

1. An ONNX-only spec derived from examples/models.yaml (every non-ensemble model, target onnx, sources
   pointing at examples/models.py by absolute path) is built with `build -j 2 --force` into a fresh
   folder each run; the floor (benchmarks/floor_onnx.py) does the same conversions in one process.
   Wall time and the peak RSS of the largest single process (RUSAGE_CHILDREN) for both.
2. The build is run again with nothing to do (no --force): wall time, and the number of `tensorflow`
   modules imported, read from `python -X importtime` (every imported module is one stderr line).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.measure import ROOT, Run, build_cmd, median_run, run_measured

EXAMPLES = ROOT / "examples" / "models.yaml"
FLOOR = Path(__file__).with_name("floor_onnx.py")

#: what the build does that the floor does not (part of the product, so it counts against the build)
BUILD_EXTRAS = (
    "spawned worker processes (one TensorFlow import each)",
    "signature inspection and config.pbtxt rendered and parsed with Triton's ModelConfig",
    "onnx.checker on each artifact",
    "verification: source model and ONNX (onnxruntime) on the same inputs at several batch sizes",
    "reference vectors (.npz), manifest with sha256 of every artifact, per-model logs, atomic swap",
)


def onnx_spec(folder: Path) -> Path:
    """examples/models.yaml with every non-ensemble model retargeted to onnx (absolute source paths)."""
    spec = yaml.safe_load(EXAMPLES.read_text())
    models = []
    for m in spec["models"]:
        if m.get("target") == "ensemble" or "source" not in m:
            continue
        m = dict(m, target="onnx")
        m.pop("python_runtime", None)
        file_part, func = m["source"]["python"].rsplit(":", 1)
        m["source"] = {"python": f"{(EXAMPLES.parent / file_part).resolve()}:{func}"}
        models.append(m)
    path = folder / "onnx_models.yaml"
    path.write_text(yaml.safe_dump({"repository": "repo", "models": models}, sort_keys=False))
    return path


def tensorflow_imports(cmd: list[str]) -> tuple[int, float]:
    """(number of tensorflow* modules imported, wall s) for `python -X importtime ...`."""
    assert cmd[0] == sys.executable
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *cmd[1:]], capture_output=True, text=True, cwd=ROOT, check=False
    )
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    modules = [
        line.rsplit("|", 1)[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    ]
    names = [m for m in modules if m.split(".")[0] in ("tensorflow", "tf2onnx", "keras", "tf_keras")]
    return len([n for n in names if n.split(".")[0] == "tensorflow"]), wall


def _run(r: Run) -> dict[str, float]:
    return {"wall_s": round(r.wall_s, 2), "peak_rss_mib": round(r.peak_rss_mib, 1)}


def run(repeats: int = 3, rebuild_repeats: int = 5, jobs: int = 2) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rb-bench-build-") as tmp:
        folder = Path(tmp)
        spec = onnx_spec(folder)
        names = [m["name"] for m in yaml.safe_load(spec.read_text())["models"]]
        out = folder / "repo"
        floor_out = folder / "floor"

        def fresh(path: Path) -> Any:
            return lambda: shutil.rmtree(path, ignore_errors=True)

        forced = build_cmd(str(spec), "-o", str(out), "-j", str(jobs), "--force")
        floor_cmd = [sys.executable, str(FLOOR), str(spec), str(floor_out)]
        # interleave build and floor so drift of the machine hits both alike
        builds, floors = [], []
        for _ in range(repeats):
            shutil.rmtree(floor_out, ignore_errors=True)
            floors.append(run_measured(floor_cmd))
            shutil.rmtree(out, ignore_errors=True)
            builds.append(run_measured(forced))
        build = Run(statistics.median(r.wall_s for r in builds), statistics.median(r.peak_rss_mib for r in builds))
        floor = Run(statistics.median(r.wall_s for r in floors), statistics.median(r.peak_rss_mib for r in floors))

        # 2. no-op rebuild of the repository the last build wrote
        noop_cmd = build_cmd(str(spec), "-o", str(out), "-j", str(jobs))
        rebuild = median_run(noop_cmd, rebuild_repeats)
        tf_modules, importtime_wall = tensorflow_imports(noop_cmd)

    return {
        "build": {
            "models": names,
            "jobs": jobs,
            "command": " ".join(forced[2:]),
            "build": _run(build),
            "floor": _run(floor),
            "runs": {"build": [_run(r) for r in builds], "floor": [_run(r) for r in floors]},
            "wall_ratio": round(build.wall_s / floor.wall_s, 3),
            "peak_rss_ratio": round(build.peak_rss_mib / floor.peak_rss_mib, 3),
            "build_does_in_addition": list(BUILD_EXTRAS),
            "target": "wall time <= 1.3x the floor; peak RSS of any one process <= 1.2x the floor's",
            "met": build.wall_s <= 1.3 * floor.wall_s and build.peak_rss_mib <= 1.2 * floor.peak_rss_mib,
            "wall_met": build.wall_s <= 1.3 * floor.wall_s,
            "rss_met": build.peak_rss_mib <= 1.2 * floor.peak_rss_mib,
        },
        "rebuild": {
            "wall_s": round(rebuild.wall_s, 3),
            "peak_rss_mib": round(rebuild.peak_rss_mib, 1),
            "repeats": rebuild_repeats,
            "tensorflow_modules_imported": tf_modules,
            "how": "python -X importtime -m repo_builder build ... (no --force): count of stderr lines "
            "naming a tensorflow module (0 = TensorFlow never imported)",
            "importtime_run_wall_s": round(importtime_wall, 3),
            "target": "under 1 s, TensorFlow never imported",
            "met": rebuild.wall_s < 1.0 and tf_modules == 0,
        },
    }
