"""The examples (examples/models.yaml) built with the real TensorFlow, tf2onnx and onnxruntime, in a fresh
interpreter. The session fixture `built_examples` (tests/integration/conftest.py) builds them once."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
PYTHON = sys.executable

#: run build_command in a fresh interpreter; prints whether TensorFlow got imported
BUILD_SCRIPT = """
import sys, time
from repo_builder.cli.build import build_command
if __name__ == "__main__":
    args = sys.argv[1:]
    force = "--force" in args
    only = [args[i + 1] for i, a in enumerate(args) if a == "--only"]
    skip = {i for i, a in enumerate(args) if a == "--only"}
    args = [a for i, a in enumerate(args) if a != "--force" and i not in skip and i - 1 not in skip]
    rc = build_command(args[0], args[1], jobs=2, force=force, only=only or None)
    print("TENSORFLOW_IMPORTED" if "tensorflow" in sys.modules else "TENSORFLOW_NOT_IMPORTED")
    sys.exit(rc)
"""


@dataclass(frozen=True)
class BuiltExamples:
    spec: Path  # a copy of examples/models.yaml (with models.py) in a temporary folder
    repository: Path
    seconds: float
    returncode: int
    output: str


def copy_examples(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("models.yaml", "models.py"):
        shutil.copy2(EXAMPLES / name, dest / name)
    return dest / "models.yaml"


def run_build(spec: Path, repo: Path, *extra: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    script = spec.parent / "_build.py"
    script.write_text(BUILD_SCRIPT)
    return subprocess.run(
        [PYTHON, str(script), str(spec), str(repo), *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=spec.parent,
    )
