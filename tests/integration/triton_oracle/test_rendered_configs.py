"""Every config the tests render from a valid spec loads in Triton's own core.

The unit tests run once more in a child pytest with the recorder plugin (recorder.py), which keeps every
config.pbtxt that `render_config` returned (the tool accepted the spec and the config), grouped by spec so
that an ensemble comes with its steps. Each recorded repository is then judged by the oracle; the test lists
every refusal with Triton's message and the tests that rendered the config. The configs `build` renders from
real models are judged in test_built_examples.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.triton_oracle.oracle import TritonOracle, refusals
from tests.integration.triton_oracle.recorder import ENV

pytestmark = [pytest.mark.server, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
GOLDEN_CASES = [p for p in (ROOT / "tests" / "golden" / "configs").iterdir() if (p / "spec.yaml").is_file()]


def _record(out: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, **{ENV: str(out)})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # the fuzz test renders hundreds of mutated specs; a sample of them keeps this test within minutes
    env["REPO_BUILDER_FUZZ_EXAMPLES"] = "10"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/unit", "-q", "-p", "no:cacheprovider",
         "-p", "tests.integration.triton_oracle.recorder"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def test_every_config_the_unit_tests_render_loads_in_triton(triton_oracle: TritonOracle, tmp_path: Path) -> None:
    recorded = tmp_path / "recorded"
    done = _record(recorded)
    # 1: some unit tests failed; that is their own report, the configs they rendered are judged all the same
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    repositories = sorted(p for p in recorded.iterdir() if p.is_dir())
    assert len(repositories) >= len(GOLDEN_CASES), "the recorder kept fewer repositories than there are golden cases"

    refused = {}
    for repo in repositories:
        for model, message in refusals(triton_oracle.judge(repo)).items():
            sources = (repo / "SOURCES").read_text().split()
            refused[f"{model} ({len(sources)} tests, first {sources[0]})"] = message
    assert refused == {}
