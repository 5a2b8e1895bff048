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
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stderr.write(rc.stderr.decode(errors="replace")[-4000:] if rc.returncode else "")
print(json.dumps({"wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024, "user_s": usage.ru_utime,
                  "sys_s": usage.ru_stime, "returncode": rc.returncode}))
"""


@dataclass(frozen=True)
class Run:
    wall_s: float
    peak_rss_mib: float
    user_s: float = 0.0  # user CPU time of the command and its waited-for descendants
    sys_s: float = 0.0  # system (kernel) CPU time of the same


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
    return Run(result["wall_s"], result["peak_rss_mib"], result["user_s"], result["sys_s"])


def median_run(cmd: list[str], repeats: int, setup: object = None, **kwargs: object) -> Run:
    runs = []
    for _ in range(repeats):
        if callable(setup):
            setup()
        runs.append(run_measured(cmd, **kwargs))  # type: ignore[arg-type]
    return Run(
        statistics.median(r.wall_s for r in runs),
        statistics.median(r.peak_rss_mib for r in runs),
        statistics.median(r.user_s for r in runs),
        statistics.median(r.sys_s for r in runs),
    )


def timed(fn: object) -> float:
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t0


def repo_builder_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "repo_builder", *args]


def build_cmd(*args: str) -> list[str]:
    """`repo-builder -q build ARGS`, run with this interpreter."""
    return repo_builder_cmd("-q", "build", *args)
