"""Which failed checks tell the validator that the server stopped answering (validate.checks._timed_out)."""

from __future__ import annotations

import pytest

from repo_builder.validate.checks import _timed_out


@pytest.mark.parametrize(
    "detail",
    [
        "TimeoutError: timed out",  # tritonclient over HTTP
        "InferenceServerException: [StatusCode.DEADLINE_EXCEEDED] Deadline Exceeded",  # over gRPC
        "concurrency 1: 4 request(s) failed: no response within 10 s",  # the load probe, HTTP
        "concurrency 1: 1 request(s) failed: gRPC DEADLINE_EXCEEDED: Deadline Exceeded",  # the load probe, gRPC
        "requests still running 10 s after the window (abandoned)",
    ],
)
def test_a_call_that_waited_out_its_timeout(detail: str) -> None:
    assert _timed_out(detail)


@pytest.mark.parametrize(
    "detail",
    [
        "served config differs: dynamic_batching.default_queue_policy.default_timeout_microseconds: 100 != 0",
        "outputs differ from the reference:\nv1 batch 1, output 'y': 3 of 4 values beyond atol=1e-05",
        "ConnectionRefusedError: [Errno 111] Connection refused",
    ],
)
def test_other_failures(detail: str) -> None:
    assert not _timed_out(detail)
