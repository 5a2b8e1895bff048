"""The main job end to end: the examples built with the real converters, served by the real embedded
tritonserver (one server for the module) and validated over HTTP and gRPC with tritonclient."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from repo_builder.cli.serve import serve_command
from repo_builder.serve import EmbeddedServer
from repo_builder.validate import validate
from tests.integration.examples import BuiltExamples
from tests.integration.sample_repository import copy_for_validation

pytestmark = [pytest.mark.tensorflow, pytest.mark.server]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_MODELS = [
    "image_cnn",
    "image_cnn_python",
    "image_cnn_savedmodel",
    "normalizer",
    "tabular_mlp",
    "tabular_pipeline",
    "text_classifier",
    "two_tower",
]


def test_serve_validate_passes_over_both_protocols(built_examples: BuiltExamples, tmp_path: Path) -> None:
    """What the README's first command runs: `repo-builder serve model_repository --validate`."""
    pytest.importorskip("pytriton", reason="the embedded tritonserver comes with nvidia-pytriton")
    out, results = io.StringIO(), io.StringIO()
    code = serve_command(
        built_examples.repository,
        validate=True,
        report=tmp_path / "report.json",
        concurrency=(2,),
        perf_duration=0.3,
        console=Console(file=out, width=200),
        console_out=Console(file=results, width=200),
    )
    data = json.loads((tmp_path / "report.json").read_text())
    failed = [
        (r["protocol"], c["id"], c["detail"]) for r in data["reports"] for c in r["checks"] if c["status"] == "fail"
    ]
    assert code == 0, failed
    assert [r["protocol"] for r in data["reports"]] == ["http", "grpc"]
    for report in data["reports"]:
        checks = {c["id"]: c["status"] for c in report["checks"]}
        for name in EXAMPLE_MODELS:  # every model, the ensemble included, answers with its reference
            assert checks[f"{name}/golden"] == "pass", (report["protocol"], name)
            assert checks[f"{name}/ready"] == "pass"
            assert checks[f"{name}/config"] == "pass"
        skipped = sorted(k for k, v in checks.items() if v == "skip")
        assert skipped == ["tabular_pipeline/dynamic_batching"]  # an ensemble has no batcher of its own
    assert results.getvalue().count("all checks passed") == 2  # one table per protocol, on stdout


@pytest.fixture(scope="module")
def examples_server(built_examples: BuiltExamples) -> Iterator[EmbeddedServer]:
    pytest.importorskip("pytriton", reason="the embedded tritonserver comes with nvidia-pytriton")
    with EmbeddedServer(built_examples.repository, startup_timeout=180) as server:
        yield server


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_an_ensemble_that_computes_something_else_fails_golden(
    built_examples: BuiltExamples, examples_server: EmbeddedServer, tmp_path: Path, protocol: str
) -> None:
    """The ensemble's reference is checked for real: the served ensemble against a reference made with
    its steps in the other order (tabular_mlp on the raw features, no normalizer) fails."""
    import onnxruntime as ort

    repo = copy_for_validation(built_examples.repository, tmp_path / "repo")
    npz = repo / "tabular_pipeline" / "reference.npz"
    ref = dict(np.load(npz))
    session = ort.InferenceSession(
        str(built_examples.repository / "tabular_mlp" / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    (ref["output/probs"],) = session.run(["probs"], {"features": ref["input/raw_features"]})
    np.savez(npz, **ref)
    url = examples_server.http_url if protocol == "http" else examples_server.grpc_url
    report = validate(
        repo,
        url,
        protocol,  # type: ignore[arg-type]
        served_configs={p.name: p.config() for p in examples_server.previews},
        skip={"dynamic_batching", "performance", "metadata"},
    )
    assert [c.id for c in report.failures] == ["tabular_pipeline/golden"]
    detail = report.get("golden", "tabular_pipeline").detail
    assert detail.startswith("outputs computed on the CPU differ from the reference:\nv1 batch 1, output 'probs':")


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_query_example_gets_the_reference_outputs(
    built_examples: BuiltExamples, examples_server: EmbeddedServer, protocol: str
) -> None:
    """examples/query.py: the plain tritonclient code a user starts from, against the served examples."""
    url = examples_server.http_url if protocol == "http" else examples_server.grpc_url
    query = [sys.executable, str(ROOT / "examples" / "query.py"), str(built_examples.repository)]
    done = subprocess.run(
        [*query, "--url", url, "--protocol", protocol],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert sorted({line.split()[0] for line in lines}) == EXAMPLE_MODELS
    assert all(line.endswith(" ok") for line in lines), done.stdout


def test_readme_query_snippet_runs(examples_server: EmbeddedServer) -> None:
    """The README's tritonclient snippet, as printed there, against the served examples (its address
    swapped for this server's)."""
    import re

    readme = (ROOT / "README.md").read_text()
    match = re.search(r"```python\n(.*?)```", readme, re.S)
    assert match is not None, "the README has no python snippet"
    snippet = match.group(1)
    assert '"localhost:8000"' in snippet
    snippet = snippet.replace('"localhost:8000"', repr(examples_server.http_url))
    done = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(rows) == 4  # a batch of 4 rows of 4 probabilities
