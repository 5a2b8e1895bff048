"""The session's one Triton oracle (oracle.py): started on first use, stopped at the end of the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.triton_oracle.oracle import TritonOracle


@pytest.fixture(scope="session")
def triton_oracle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonOracle]:
    with TritonOracle(tmp_path_factory.mktemp("triton_oracle")) as oracle:
        yield oracle
