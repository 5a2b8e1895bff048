"""The deployment validator against the real embedded server, over HTTP and gRPC, healthy and broken."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from repo_builder.cli.serve import serve_command
from repo_builder.cli.validate import validate_command
from repo_builder.errors import DeploymentError
from repo_builder.serve import EmbeddedServer, free_ports
from repo_builder.validate import Report, validate
from repo_builder.validate.load import run_load
from repo_builder.validate.payloads import Target, grpc_request, http_request
from tests.integration.sample_repository import copy_for_validation

pytestmark = pytest.mark.server

PROTOCOLS = ["http", "grpc"]
FAST: dict[str, Any] = {"concurrency": (1, 4), "perf_duration": 0.3}
NO_LOAD: dict[str, Any] = {"skip": {"dynamic_batching", "performance"}}


def url(server: EmbeddedServer, protocol: str) -> str:
    return server.http_url if protocol == "http" else server.grpc_url


def statuses(report: Report) -> dict[str, str]:
    return {c.id: c.status for c in report.checks}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_healthy_deployment_passes(
    embedded_server: EmbeddedServer, model_repository: Path, served_configs: dict[str, Any], protocol: str
) -> None:
    report = validate(
        model_repository,
        url(embedded_server, protocol),
        protocol,  # type: ignore[arg-type]
        served_configs=served_configs,
        **FAST,
    )
    assert report.ok, report.to_json()
    got = statuses(report)
    assert got["server"] == got["models"] == "pass"
    models = ["ens", "onnx_mlp", "py_add", "trt_mlp"] + (["tf_scale"] if "tf_scale/ready" in got else [])
    for model in models:
        for check in ("ready", "config", "metadata", "performance"):
            assert got[f"{model}/{check}"] == "pass", report.get(check, model).detail
    for model in ("onnx_mlp", "py_add", "trt_mlp"):
        assert got[f"{model}/golden"] == got[f"{model}/dynamic_batching"] == "pass"
        rounds = report.get("dynamic_batching", model).data["rounds"]
        assert 0 < rounds[-1]["execution_count"] < rounds[-1]["inference_count"]
    assert report.get("golden", "onnx_mlp").data["batch_sizes"] == [1, 8, 16]
    assert report.get("golden", "ens").detail == "the manifest has no reference for this model (ensemble)"
    assert got["ens/dynamic_batching"] == "skip"
    config = report.get("config", "py_add")
    assert config.detail.startswith(f"equal to {model_repository / 'py_add' / 'config.pbtxt'}; filled in by the server")
    assert "instance_group[0].name" in config.data["server_filled"]
    assert report.get("config", "onnx_mlp").data["preview"] is True
    levels = report.get("performance", "py_add").data["levels"]
    assert [lv["concurrency"] for lv in levels] == [1, 4]
    assert all(lv["requests"] > 0 and lv["errors"] == 0 and lv["p50_ms"] <= lv["p99_ms"] for lv in levels)
    # the server's own count over the window, next to the client's
    assert all(lv["server"]["inference_count"] > 0 and lv["server"]["execution_count"] > 0 for lv in levels)
    assert all(lv["server"]["inference_count"] >= lv["server"]["execution_count"] for lv in levels)

    data = json.loads(report.to_json())
    assert data["ok"] is True and data["counts"]["fail"] == 0 and data["protocol"] == protocol
    suite = ET.fromstring(report.to_junit()).find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    assert int(suite.get("tests", "0")) == len(report.checks)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_wrong_reference_output_fails_golden(
    embedded_server: EmbeddedServer,
    model_repository: Path,
    served_configs: dict[str, Any],
    tmp_path: Path,
    protocol: str,
) -> None:
    repo = copy_for_validation(model_repository, tmp_path / "repo")
    npz = repo / "py_add" / "reference.npz"
    ref = dict(np.load(npz))
    ref["output/y"][0, 2] += 0.5
    np.savez(npz, **ref)
    report = validate(
        repo,
        url(embedded_server, protocol),
        protocol,  # type: ignore[arg-type]
        served_configs=served_configs,
        **NO_LOAD,
    )
    assert not report.ok
    assert [c.id for c in report.failures] == ["py_add/golden"]
    served = float(np.float32(2) * ref["input/x"][0, 2] + np.float32(1))  # what the model computes
    want = float(ref["output/y"][0, 2])
    detail = report.get("golden", "py_add").detail
    assert detail.splitlines()[0] == "outputs computed on the CPU differ from the reference:"
    assert detail.splitlines()[1] == (
        "v1 batch 1, output 'y': 1 of 4 values beyond atol=1e-05 rtol=0.0001; max |diff| 0.5; "
        f"first at [0, 2]: served {served:.8g}, reference {want:.8g}"
    )
    assert len(detail.splitlines()) == 4  # batch sizes 1, 4 and 8 all contain row 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_altered_config_fails_with_field_diff(
    embedded_server: EmbeddedServer,
    model_repository: Path,
    served_configs: dict[str, Any],
    tmp_path: Path,
    protocol: str,
) -> None:
    repo = copy_for_validation(model_repository, tmp_path / "repo")
    config = repo / "py_add" / "config.pbtxt"
    text = (
        config.read_text()
        .replace("count: 2", "count: 3")
        .replace("max_queue_delay_microseconds: 2000", "max_queue_delay_microseconds: 500")
    )
    config.write_text(text + 'parameters { key: "mode" value { string_value: "fast" } }\n')
    report = validate(
        repo,
        url(embedded_server, protocol),
        protocol,  # type: ignore[arg-type]
        served_configs=served_configs,
        **NO_LOAD,
    )
    assert [c.id for c in report.failures] == ["py_add/config"]
    assert report.get("config", "py_add").detail == (
        f"served config differs from {config} in 3 field(s):\n"
        "dynamic_batching.max_queue_delay_microseconds: generated 500, served 2000\n"
        "instance_group[0].count: generated 3, served 2\n"
        "parameters['mode']: generated { string_value: \"fast\" }, not served"
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_preview_is_recognized_from_another_process(
    embedded_server: EmbeddedServer, model_repository: Path, tmp_path: Path, protocol: str
) -> None:
    """`repo-builder serve` in one terminal, `repo-builder validate --url` in another: no served_configs are
    handed over, the preview is known by its marker parameter, and a change beyond the preview still fails."""
    report = validate(model_repository, url(embedded_server, protocol), protocol, **NO_LOAD)  # type: ignore[arg-type]
    assert report.ok, [(c.id, c.detail) for c in report.failures]
    assert report.get("config", "onnx_mlp").detail.startswith(
        "equal to config.pbtxt as the embedded server rewrites it (preview, placement)"
    )
    repo = copy_for_validation(model_repository, tmp_path / "repo")
    config = repo / "onnx_mlp" / "config.pbtxt"
    config.write_text(config.read_text().replace("max_batch_size: 16", "max_batch_size: 12"))
    report = validate(
        repo, url(embedded_server, protocol), protocol, skip={"golden", "dynamic_batching", "performance"}
    )  # type: ignore[arg-type]
    assert [c.id for c in report.failures] == ["onnx_mlp/config"]
    assert "max_batch_size: generated 12, served 16" in report.get("config", "onnx_mlp").detail


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_missing_and_unexpected_models_fail(
    embedded_server: EmbeddedServer,
    model_repository: Path,
    served_configs: dict[str, Any],
    tmp_path: Path,
    protocol: str,
) -> None:
    repo = copy_for_validation(model_repository, tmp_path / "repo")
    manifest_path = repo / "repo_builder_manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["models"]["ghost"] = dict(manifest["models"]["py_add"], reference=None)
    del manifest["models"]["ens"]
    manifest_path.write_text(json.dumps(manifest))
    (repo / "ens" / "config.pbtxt").unlink()
    report = validate(
        repo,
        url(embedded_server, protocol),
        protocol,  # type: ignore[arg-type]
        served_configs=served_configs,
        **NO_LOAD,
    )
    assert [c.id for c in report.failures] == ["models", "ghost/ready"]
    assert report.get("models").detail == (
        "missing: ghost (in the repository's manifest.json only; server: not in its index)\n"
        "unexpected: ens is served but not in the repository"
    )
    assert report.get("ready", "ghost").detail == "ghost is not READY:\nversion 1: not in the server index"
    assert statuses(report)["ghost/golden"] == "skip"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_server_down_fails_fast_with_clear_report(model_repository: Path, protocol: str) -> None:
    (port,) = free_ports(1)
    start = time.monotonic()
    report = validate(model_repository, f"127.0.0.1:{port}", protocol, timeout=5, connect_grace=1)  # type: ignore[arg-type]
    assert time.monotonic() - start < 5
    assert not report.ok
    assert [c.id for c in report.checks] == ["server", "models"]
    assert report.get("server").status == "fail"
    assert report.get("server").detail.startswith(f"cannot reach Triton at 127.0.0.1:{port} over {protocol} (")
    assert report.get("models").detail == "not checked: the server is not reachable or not ready"
    suite = ET.fromstring(report.to_junit()).find("testsuite")
    assert suite is not None and suite.get("failures") == "1" and suite.get("skipped") == "1"


def test_manifest_thresholds_fail_performance(
    embedded_server: EmbeddedServer, model_repository: Path, served_configs: dict[str, Any], tmp_path: Path
) -> None:
    repo = copy_for_validation(model_repository, tmp_path / "repo")
    manifest_path = repo / "repo_builder_manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["models"]["py_add"]["validation"] = {"p99_latency_ms": 1e-6, "min_throughput": 1e12}
    manifest_path.write_text(json.dumps(manifest))
    report = validate(
        repo,
        embedded_server.grpc_url,
        "grpc",
        served_configs=served_configs,
        concurrency=(1, 2),
        perf_duration=0.2,
        skip={"dynamic_batching"},
    )
    assert [c.id for c in report.failures] == ["py_add/performance"]
    lines = report.get("performance", "py_add").detail.splitlines()
    assert lines[0].startswith("concurrency 1: p99 ") and lines[0].endswith(" ms > p99_latency_ms 1e-06")
    assert lines[1].startswith("concurrency 2: p99 ")
    assert lines[2].startswith("best throughput ") and lines[2].endswith(" infer/s < min_throughput 1e+12")


def test_validate_command_exit_codes_and_files(
    embedded_server: EmbeddedServer, model_repository: Path, tmp_path: Path
) -> None:
    def run(repo: Path) -> tuple[int, dict[str, Any], ET.Element, str]:
        out, err = io.StringIO(), io.StringIO()
        code = validate_command(
            repo,
            f"http://{embedded_server.http_url}",
            "http",
            report=tmp_path / "r.json",
            junit=tmp_path / "r.xml",
            timeout=10,
            concurrency=(1,),
            perf_duration=0.2,
            console=Console(file=err, width=200),
            console_out=Console(file=out, width=200),
        )
        data = json.loads((tmp_path / "r.json").read_text())
        assert "Validation of" not in err.getvalue()  # the results go to stdout, progress to stderr
        return code, data, ET.parse(tmp_path / "r.xml").getroot(), out.getvalue()

    code, data, junit, out = run(model_repository)
    assert code == 0, [(c["id"], c["detail"]) for c in data["checks"] if c["status"] == "fail"]
    assert junit.tag == "testsuites" and junit[0].get("failures") == "0"
    assert "all checks passed" in out

    broken = copy_for_validation(model_repository, tmp_path / "broken")
    config = broken / "py_add" / "config.pbtxt"
    config.write_text(config.read_text().replace("count: 2", "count: 3"))
    code, data, junit, out = run(broken)
    assert code == 1
    failed = sorted(c["id"] for c in data["checks"] if c["status"] == "fail")
    assert failed == ["py_add/config"]
    assert junit[0].get("failures") == "1"
    assert "validation failed" in out

    code = validate_command(
        model_repository,
        f"127.0.0.1:{free_ports(1)[0]}",
        "grpc",
        timeout=2,
        console=Console(file=io.StringIO()),
    )
    assert code == 1


def test_serve_with_validate_over_both_protocols(model_repository: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("py_add", "ens", "trt_mlp", "repo_builder_manifest.json"):
        (repo / name).symlink_to(model_repository / name)
    manifest = json.loads((model_repository / "repo_builder_manifest.json").read_text())
    out, results = io.StringIO(), io.StringIO()
    code = serve_command(
        repo,
        validate=True,
        report=tmp_path / "r.json",
        junit=tmp_path / "r.xml",
        concurrency=(1, 2),
        perf_duration=0.2,
        console=Console(file=out, width=200),
        console_out=Console(file=results, width=200),
    )
    data = json.loads((tmp_path / "r.json").read_text())
    # the manifest still names onnx_mlp (and tf_scale), which this repository does not hold
    missing = sorted(n for n in manifest["models"] if n not in ("py_add", "ens", "trt_mlp"))
    assert code == 1
    assert [r["protocol"] for r in data["reports"]] == ["http", "grpc"]
    for r in data["reports"]:
        failed = [c["id"] for c in r["checks"] if c["status"] == "fail"]
        assert failed == ["models"] + [f"{m}/ready" for m in missing]
        assert all(c["status"] == "pass" for c in r["checks"] if c["id"].startswith(("py_add/", "trt_mlp/")))
    assert (
        "preview: " in out.getvalue() and "trt_mlp: tensorrt_plan served as a python-backend preview" in out.getvalue()
    )
    assert len(ET.parse(tmp_path / "r.xml").getroot()) == 2
    # the results, one table per protocol, on stdout; the progress and the preview notice on stderr
    assert [line.split(" on ")[0] for line in results.getvalue().splitlines() if line.startswith("Validation of")] == [
        f"Validation of {repo}"
    ] * 2
    assert "Validation of" not in out.getvalue()
    assert "preview: " not in results.getvalue()


def test_validate_model_filter(embedded_server: EmbeddedServer, model_repository: Path, tmp_path: Path) -> None:
    """`validate --model py_add --model ens`: only those are checked; the server may serve the others."""
    out, err = io.StringIO(), io.StringIO()
    code = validate_command(
        model_repository,
        embedded_server.http_url,
        "http",
        report=tmp_path / "r.json",
        concurrency=(1,),
        perf_duration=0.2,
        models=["py_add", "ens"],
        console=Console(file=err, width=200),
        console_out=Console(file=out, width=200),
    )
    data = json.loads((tmp_path / "r.json").read_text())
    assert code == 0, [(c["id"], c["detail"]) for c in data["checks"] if c["status"] == "fail"]
    checked = {c["model"] for c in data["checks"]}
    assert checked == {None, "py_add", "ens"}
    models = next(c for c in data["checks"] if c["id"] == "models")
    assert models["data"]["expected"] == ["ens", "py_add"] and models["data"]["unexpected"] == []
    assert "onnx_mlp" in models["data"]["ready"]  # served, not selected: neither checked nor unexpected
    rows = [line for line in out.getvalue().splitlines() if line.startswith("│")]
    assert any("py_add" in row for row in rows) and not any("onnx_mlp" in row for row in rows)


def repo_builder_validate(repository: Path, url: str) -> list[str]:
    return [sys.executable, "-m", "repo_builder", "validate", str(repository), "--url", url]


def test_validate_unknown_model_exits_1_listing_the_models(
    embedded_server: EmbeddedServer, model_repository: Path
) -> None:
    """Through the real command line: exit 1, nothing on stdout, the repository's models on stderr."""
    done = subprocess.run(
        [*repo_builder_validate(model_repository, embedded_server.http_url), "--model", "py_add", "--model", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    held = sorted(p.parent.name for p in model_repository.glob("*/config.pbtxt"))
    assert "no model named 'nope'" in done.stderr and "py_add" not in done.stderr.split("'nope'")[0]
    assert all(name in done.stderr for name in held), done.stderr


def test_validate_command_line_writes_results_to_stdout(
    embedded_server: EmbeddedServer, model_repository: Path
) -> None:
    """`repo-builder validate ... | cat`: the table, whole rows, on stdout; stderr holds no result."""
    done = subprocess.run(
        [
            *repo_builder_validate(model_repository, embedded_server.grpc_url),
            *("--protocol", "grpc", "--model", "py_add", "--concurrency", "1", "--perf-duration", "0.2"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"Validation of {model_repository} on {embedded_server.grpc_url} (grpc)"
    assert any(line.startswith("all checks passed: ") for line in lines), done.stdout
    for check in ("ready", "config", "metadata", "golden", "dynamic_batching", "performance"):
        assert any(" py_add " in line and f" {check} " in line and " PASS " in line for line in lines), check
    assert "PASS" not in done.stderr and "Validation of" not in done.stderr


def test_serve_model_filter_serves_only_those_and_the_ensemble_steps(model_repository: Path, tmp_path: Path) -> None:
    """`serve --model ens --model trt_mlp --validate`: py_add is served as a step of ens, onnx_mlp is not."""
    out, results = io.StringIO(), io.StringIO()
    code = serve_command(
        model_repository,
        validate=True,
        protocol="http",
        report=tmp_path / "r.json",
        concurrency=(1,),
        perf_duration=0.2,
        models=["ens", "trt_mlp"],
        console=Console(file=out, width=200),
        console_out=Console(file=results, width=200),
    )
    data = json.loads((tmp_path / "r.json").read_text())
    assert code == 0, [(c["id"], c["detail"]) for c in data["checks"] if c["status"] == "fail"]
    models = next(c for c in data["checks"] if c["id"] == "models")
    assert models["data"]["ready"] == ["ens", "py_add", "trt_mlp"]
    assert {c["model"] for c in data["checks"]} == {None, "ens", "trt_mlp"}
    assert "also serving the steps of the selected ensembles: py_add" in out.getvalue()
    assert "all checks passed" in results.getvalue()


def test_serve_unknown_model_fails_before_starting(model_repository: Path) -> None:
    out = io.StringIO()
    with pytest.raises(DeploymentError) as e:
        serve_command(model_repository, models=["py_add", "nope"], console=Console(file=out, width=200))
    folders = ", ".join(sorted(p.name for p in model_repository.iterdir() if p.is_dir() and p.name[0] != "."))
    assert e.value.message == f"no model named 'nope' in {model_repository.resolve()}; its models: {folders}"
    assert "starting tritonserver" not in out.getvalue()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_probe_counts_failed_requests(embedded_server: EmbeddedServer, protocol: str) -> None:
    where = url(embedded_server, protocol)
    inputs = {"x": np.ones((1, 4), np.float32)}
    args = ("no_such_model", inputs, {"x": "FP32"}, ["y"])
    payload = http_request(where, *args) if protocol == "http" else grpc_request(*args)
    start = time.monotonic()
    load = run_load(Target(protocol, where, payload, 5.0), 2, duration=0.3, warmup=0.1)  # type: ignore[arg-type]
    assert time.monotonic() - start < 5
    assert load.latencies == [] and load.throughput == 0.0 and load.errors > 0
    assert "no_such_model" in load.messages[0]
    assert load.messages[0].startswith("HTTP/1.1 4" if protocol == "http" else "gRPC ")


def test_probe_times_out_a_silent_server() -> None:
    import socket

    with socket.socket() as listener:  # accepts connections (the kernel's backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        where = f"127.0.0.1:{listener.getsockname()[1]}"
        payload = http_request(where, "m", {"x": np.ones((1, 4), np.float32)}, {"x": "FP32"}, ["y"])
        start = time.monotonic()
        load = run_load(Target("http", where, payload, 0.5), 2, duration=0.3, warmup=0.1)
        assert time.monotonic() - start < 5
    assert load.latencies == [] and load.errors >= 2
    assert load.messages[0] == "no response within 0.5 s"
