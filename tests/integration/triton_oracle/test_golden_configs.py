"""Every golden config (tests/golden/configs/<case>/expected) loads in Triton's own core."""

from __future__ import annotations

from pathlib import Path

import pytest

from repo_builder.repository.write import render_repository
from repo_builder.spec import load_spec
from tests.integration.triton_oracle.oracle import TritonOracle, refusals

pytestmark = pytest.mark.server

CASES_DIR = Path(__file__).resolve().parents[2] / "golden" / "configs"
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "spec.yaml").is_file())


@pytest.mark.parametrize("case", CASES)
def test_golden_case_loads_in_triton(case: str, tmp_path: Path, triton_oracle: TritonOracle) -> None:
    # what `render` writes for the case: the golden configs plus their version folders (git keeps no empty folder)
    repo = tmp_path / "repo"
    render_repository(load_spec(CASES_DIR / case / "spec.yaml"), repo)
    expected = CASES_DIR / case / "expected"
    for config in sorted(expected.glob("*/config.pbtxt")):
        assert (repo / config.relative_to(expected)).read_text() == config.read_text(), "the golden is stale"

    verdicts = triton_oracle.judge(repo)

    assert sorted(verdicts) == sorted(p.parent.name for p in expected.glob("*/config.pbtxt"))
    assert refusals(verdicts) == {}
