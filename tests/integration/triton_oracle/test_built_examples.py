"""Every config `build` writes for the examples (tensors read from the real models) loads in Triton's core."""

from __future__ import annotations

import pytest

from tests.integration.examples import BuiltExamples
from tests.integration.triton_oracle.oracle import TritonOracle, refusals

pytestmark = [pytest.mark.tensorflow, pytest.mark.server, pytest.mark.slow]


def test_every_built_example_loads_in_triton(built_examples: BuiltExamples, triton_oracle: TritonOracle) -> None:
    verdicts = triton_oracle.judge(built_examples.repository)
    assert len(verdicts) >= 8, sorted(verdicts)
    assert refusals(verdicts) == {}
