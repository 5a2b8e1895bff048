"""Measuring helpers shared by the benchmarks: wall time and peak RSS of a command and its children."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs a command and prints its wall time and the peak RSS of the largest process in its tree
# (RUSAGE_CHILDREN covers every descendant that was waited for: the build's worker processes too).
_PROBE = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - t0
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
sys.stderr.write(rc.stderr.decode(errors="replace")[-4000:] if rc.returncode else "")
print(json.dumps({"wall_s": wall, "peak_rss_mib": peak_kib / 1024, "returncode": rc.returncode}))
"""


@dataclass(frozen=True)
class Run:
    wall_s: float
    peak_rss_mib: float


def run_measured(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """Wall time and peak RSS (MiB) of `cmd` and all its descendants; raises when it fails."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *cmd],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd or ROOT,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"probe failed for {' '.join(cmd)}:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["returncode"] != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {result['returncode']}:\n{done.stderr[-3000:]}")
    return Run(result["wall_s"], result["peak_rss_mib"])


def median_run(cmd: list[str], repeats: int, setup: object = None, **kwargs: object) -> Run:
    runs = []
    for _ in range(repeats):
        if callable(setup):
            setup()
        runs.append(run_measured(cmd, **kwargs))  # type: ignore[arg-type]
    return Run(statistics.median(r.wall_s for r in runs), statistics.median(r.peak_rss_mib for r in runs))


def timed(fn: object) -> float:
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t0


def repo_builder_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "repo_builder", *args]


_BUILD_SHIM = r"""
import argparse, sys
from repo_builder.build import build_command
p = argparse.ArgumentParser()
p.add_argument("spec"); p.add_argument("-o"); p.add_argument("-j", type=int, default=1)
p.add_argument("--force", action="store_true")
a = p.parse_args(sys.argv[1:])
sys.exit(build_command(a.spec, a.o, jobs=a.j, force=a.force))
"""


def build_cmd(*args: str) -> list[str]:
    """`repo-builder -q build ARGS`; while the CLI has no `build` command yet, the same build_command()
    through a shim (see build_via())."""
    if build_via() == "cli":
        return repo_builder_cmd("-q", "build", *args)
    return [sys.executable, "-c", _BUILD_SHIM, *args]


_VIA: list[str] = []


def build_via() -> str:
    """ "cli" when `python -m repo_builder build` exists, else "build_command shim"."""
    if not _VIA:
        done = subprocess.run(
            repo_builder_cmd("build", "--help"), capture_output=True, text=True, cwd=ROOT, check=False
        )
        _VIA.append("cli" if done.returncode == 0 else "build_command shim")
    return _VIA[0]
