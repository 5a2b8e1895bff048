"""The GPUs the embedded tritonserver will see on this host.

Triton enumerates CUDA devices itself; this module only needs to know whether there are any, before the
server starts, to place GPU instance groups (triton/preview.py `place`). Read from `nvidia-smi -L` (the
driver's own tool), else the driver's /proc entries, and narrowed by CUDA_VISIBLE_DEVICES as CUDA narrows
it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

PROC_GPUS = Path("/proc/driver/nvidia/gpus")


def _driver_gpus() -> int:
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired):
            out = None
        if out is not None and out.returncode == 0:
            return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
    return len(list(PROC_GPUS.iterdir())) if PROC_GPUS.is_dir() else 0


def visible_gpus(environ: dict[str, str] | None = None, driver_gpus: int | None = None) -> int:
    """How many GPUs a CUDA program started here sees (CUDA_VISIBLE_DEVICES narrows the driver's list)."""
    env = os.environ if environ is None else environ
    found = _driver_gpus() if driver_gpus is None else driver_gpus
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return found
    count = 0
    for item in visible.split(","):  # CUDA stops at the first entry that names no device
        item = item.strip()
        if not item or item.startswith("-"):
            break
        count += 1
    return min(count, found)
