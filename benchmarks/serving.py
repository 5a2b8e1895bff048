"""Benchmarks 4 and 5 on one embedded Triton server.

4. What the generated config buys: the example image model (image_cnn, target onnx) as `repo-builder build`
   writes it by default, next to a copy whose config has no dynamic batching and one CPU instance, loaded at
   concurrency 1, 4 and 16 over HTTP and gRPC with the validator's own probe (batch-1 requests).
5. The validator's load probe: its throughput for tabular_mlp over HTTP against wrk sending the same request
   to the same server at the same concurrency.

The embedded server has no ONNX Runtime backend: both copies of the image model run as python-backend
previews on the same model.onnx (repo_builder/serve/preview.py), with the config's batching and instances.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.measure import ROOT, build_cmd

EXAMPLES = ROOT / "examples" / "models.py"
IMAGE = "image_cnn"
SINGLE = "image_cnn_single"  # the same model: no dynamic batching, one CPU instance
PROBE_MODEL = "tabular_mlp"
LEVELS = (1, 4, 16)
PROTOCOLS = ("http", "grpc")


def build_repository(folder: Path) -> Path:
    """Build image_cnn and tabular_mlp with the tool's defaults, then add the single-instance copy."""
    spec = {
        "repository": "repo",
        "models": [
            {"name": IMAGE, "source": {"python": f"{EXAMPLES}:build_cnn"}, "target": "onnx"},
            {
                "name": PROBE_MODEL,
                "source": {"python": f"{EXAMPLES}:build_mlp"},
                "target": "onnx",
                "max_batch_size": 64,
            },
        ],
    }
    spec_path = folder / "serving.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    repo = folder / "repo"
    done = subprocess.run(
        build_cmd(str(spec_path), "-o", str(repo), "-j", "2", "--force"),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"building the serving repository failed:\n{done.stderr[-3000:]}{done.stdout[-2000:]}")
    add_single_instance_copy(repo)
    return repo


def add_single_instance_copy(repo: Path, source: str = IMAGE, name: str = SINGLE, kind: str = "KIND_CPU") -> str:
    """`source` as `name`: no dynamic_batching, instance_group [{count: 1, kind: kind}]."""
    from google.protobuf import text_format
    from tritonclient.grpc.model_config_pb2 import ModelConfig, ModelInstanceGroup

    shutil.copytree(repo / source, repo / name)
    config = text_format.Parse((repo / source / "config.pbtxt").read_text(), ModelConfig())
    config.name = name
    config.ClearField("dynamic_batching")
    config.ClearField("instance_group")
    config.instance_group.add(kind=ModelInstanceGroup.Kind.Value(kind), count=1)
    text = text_format.MessageToString(config)
    (repo / name / "config.pbtxt").write_text(text)
    manifest_path = repo / "repo_builder_manifest.json"
    manifest = json.loads(manifest_path.read_text())
    entry = dict(manifest["models"][source], dynamic_batching=False)
    manifest["models"][name] = entry  # same reference inputs as the source
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return text


def probe(
    repo: Path,
    url: str,
    protocol: str,
    model: str,
    levels: tuple[int, ...],
    duration: float,
    processes: int = 1,
) -> list[dict[str, Any]]:
    """The validator's performance probe (loadchecks.check_performance) on one model: one dict per level.
    processes: the probe's event loops (1: a thread of this process; more: spawned worker processes)."""
    from repo_builder.validate.checks import Validator
    from repo_builder.validate.expected import read_repository
    from repo_builder.validate.loadchecks import check_performance

    expected = read_repository(repo)
    validator = Validator(
        expected,
        url,
        protocol,  # type: ignore[arg-type]
        timeout=30.0,
        connect_grace=5.0,
        concurrency=levels,
        perf_duration=duration,
        batching_requests=64,
        skip=(),
        served_configs={},
        on_progress=lambda _m: None,
    )
    validator.probe_processes = processes
    validator.conn = validator.connect()
    try:
        _, data = check_performance(validator, expected.models[model])
    finally:
        validator.conn.close()
    return list(data["levels"])


def statistics(url: str, protocol: str, model: str) -> dict[str, int]:
    from repo_builder.validate.connection import Connection

    with Connection(url, protocol, 10.0) as conn:  # type: ignore[arg-type]
        return conn.statistics(model)


def _level(lv: dict[str, Any]) -> dict[str, Any]:
    server = lv.get("server") or {}
    batch = server.get("average_batch")
    return {
        "concurrency": lv["concurrency"],
        "throughput": round(float(lv["throughput"]), 1),
        "p50_ms": round(lv["p50_ms"], 2) if lv["p50_ms"] is not None else None,
        "p99_ms": round(lv["p99_ms"], 2) if lv["p99_ms"] is not None else None,
        "requests": lv["requests"],
        "errors": lv["errors"],
        "server_throughput": round(float(server["throughput"]), 1) if server else None,
        "server_average_batch": round(batch, 2) if batch else None,
    }


def serving_benchmark(repo: Path, http_url: str, grpc_url: str, duration: float) -> dict[str, Any]:
    urls = {"http": http_url, "grpc": grpc_url}
    results: dict[str, Any] = {"configs": {}, "levels": {}}
    for model in (IMAGE, SINGLE):
        results["configs"][model] = (repo / model / "config.pbtxt").read_text()
    batching: dict[str, Any] = {}
    for protocol in PROTOCOLS:
        for model in (IMAGE, SINGLE):
            probe(repo, urls[protocol], protocol, model, (4,), 0.5)  # warm-up
        rows: dict[str, Any] = {}
        for model in (IMAGE, SINGLE):
            before = statistics(urls[protocol], protocol, model)
            levels = probe(repo, urls[protocol], protocol, model, LEVELS, duration)
            after = statistics(urls[protocol], protocol, model)
            rows[model] = [_level(lv) for lv in levels]
            inferences = after["inference_count"] - before["inference_count"]
            executions = after["execution_count"] - before["execution_count"]
            batching[f"{protocol}/{model}"] = {
                "inference_count": inferences,
                "execution_count": executions,
                "average_batch": round(inferences / executions, 2) if executions else None,
            }
        results["levels"][protocol] = rows
    results["batching"] = batching
    ratios = {}
    met = True
    for protocol in PROTOCOLS:
        default = {lv["concurrency"]: lv for lv in results["levels"][protocol][IMAGE]}
        single = {lv["concurrency"]: lv for lv in results["levels"][protocol][SINGLE]}
        per_level: dict[str, Any] = {}
        for c in LEVELS:
            d, s = default[c], single[c]
            per_level[str(c)] = {
                "throughput_ratio": round(d["throughput"] / s["throughput"], 3) if s["throughput"] else None,
                "p99_ratio": round(d["p99_ms"] / s["p99_ms"], 3) if d["p99_ms"] and s["p99_ms"] else None,
            }
        top = per_level[str(LEVELS[-1])]
        ok = (top["throughput_ratio"] or 0) >= 2.0 and (top["p99_ratio"] or 99) <= 1.0
        per_level["met"] = ok
        met = met and ok
        ratios[protocol] = per_level
    results["ratios"] = ratios
    # cross-check with a C client that costs the shared 2 cores far less than Python's threads
    body, headers, _ = validator_request(repo, IMAGE)
    if shutil.which("wrk") is None:
        results["wrk_http_c16"] = {"skipped": NO_WRK}
        results["duration_s_per_level"] = duration
        results["met"] = met
        return results
    with tempfile.TemporaryDirectory(prefix="rb-bench-wrk-") as tmp:
        wrk = {
            model: _wrk(
                f"http://{http_url}/v2/models/{model}/infer",
                body,
                headers,
                LEVELS[-1],
                duration,
                Path(tmp),
                model,
            )
            for model in (IMAGE, SINGLE)
        }
    wrk["throughput_ratio"] = round(wrk[IMAGE]["throughput"] / wrk[SINGLE]["throughput"], 3)
    results["wrk_http_c16"] = wrk
    results["duration_s_per_level"] = duration
    results["target"] = (
        "default config >= 2x the throughput of (no dynamic batching, 1 instance) at concurrency 16, p99 not worse"
    )
    results["met"] = met
    return results


# ---------------------------------------------------------------------------------------------- wrk

NO_WRK = "wrk is not installed: `sudo apt-get install -y wrk` (Debian/Ubuntu package), then run again"


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and its waited-for children: the validator's probe runs
    in a thread here, or in spawned worker processes (the server is a child too, but never waited for)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


_LUA = """
wrk.method = "POST"
local f = assert(io.open("{body}", "rb"))
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "{content_type}"
{extra}
"""


def _wrk(
    url: str, body: bytes, headers: dict[str, str], concurrency: int, duration: float, folder: Path, tag: str
) -> dict[str, Any]:
    body_path = folder / f"{tag}.body"
    body_path.write_bytes(body)
    extra = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items() if k != "Content-Type")
    script = folder / f"{tag}.lua"
    script.write_text(
        _LUA.format(body=body_path, content_type=headers.get("Content-Type", "application/json"), extra=extra)
    )
    threads = min(2, concurrency)
    cmd = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{duration:g}s", "--latency", "-s", str(script), url]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr}")
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    p99_ms = None
    if p99:
        p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return {
        "command": " ".join(cmd),
        "throughput": round(rps, 1),
        "p99_ms": round(p99_ms, 2) if p99_ms is not None else None,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def validator_request(repo: Path, model: str) -> tuple[bytes, dict[str, str], dict[str, Any]]:
    """The exact HTTP body and headers the validator's probe sends (loadchecks.probe_target: tritonclient's
    binary tensor encoding, batch 1), split for wrk, which adds Host and Content-Length itself; and the
    same inputs as a KServe v2 JSON body."""
    from repo_builder.validate.checks import Validator
    from repo_builder.validate.expected import read_repository
    from repo_builder.validate.golden import datatypes, sample
    from repo_builder.validate.loadchecks import probe_target

    expected = read_repository(repo)
    validator = Validator(
        expected,
        "127.0.0.1:1",
        "http",
        timeout=1.0,
        connect_grace=0.0,
        concurrency=(1,),
        perf_duration=0.0,
        batching_requests=1,
        skip=(),
        served_configs={},
        on_progress=lambda _m: None,
    )
    m = expected.models[model]
    target, outputs = probe_target(validator, m)
    head, _, body = target.payload.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.lower() not in ("host", "content-length", "connection"):
            headers[key] = value.strip()
    inputs, _ = sample(expected, m)
    types = datatypes(m, inputs)
    json_body = {
        "inputs": [
            {"name": n, "shape": list(v.shape), "datatype": types[n], "data": v.flatten().tolist()}
            for n, v in inputs.items()
        ],
        "outputs": [{"name": o} for o in outputs],
    }
    return body, headers, json_body


def probe_benchmark(
    repo: Path, http_url: str, grpc_url: str, concurrency: int, duration: float, repeats: int
) -> dict[str, Any]:
    """Validator probe vs wrk on the same model, server and concurrency, alternating, median of `repeats`.
    Also: the probe with 2 worker processes instead of one event loop in a thread, and the probe over gRPC
    (no wrk there: its figure is shown next to the server's own count)."""
    import statistics as stats

    if shutil.which("wrk") is None:
        raise RuntimeError(NO_WRK)
    url = f"http://{http_url}/v2/models/{PROBE_MODEL}/infer"
    body, headers, json_body = validator_request(repo, PROBE_MODEL)
    levels = (concurrency,)
    with tempfile.TemporaryDirectory(prefix="rb-bench-wrk-") as tmp:
        folder = Path(tmp)
        json_bytes = json.dumps(json_body).encode()
        probe(repo, http_url, "http", PROBE_MODEL, levels, 1.0)  # warm-up
        runs: dict[str, list[dict[str, Any]]] = {
            k: [] for k in ("validator", "validator_2proc", "validator_grpc", "wrk", "wrk_json")
        }
        client_cpu: dict[str, list[float]] = {"validator": [], "validator_2proc": [], "validator_grpc": []}
        variants = (
            ("validator", http_url, "http", 1),
            ("validator_2proc", http_url, "http", 2),
            ("validator_grpc", grpc_url, "grpc", 1),
        )
        for _ in range(repeats):
            for key, where, protocol, processes in variants:
                cpu0, t0 = _cpu_seconds(), time.perf_counter()
                level = probe(repo, where, protocol, PROBE_MODEL, levels, duration, processes)[0]
                client_cpu[key].append((_cpu_seconds() - cpu0) / (time.perf_counter() - t0))
                runs[key].append(_level(level))
            runs["wrk"].append(_wrk(url, body, headers, concurrency, duration, folder, "same"))
            runs["wrk_json"].append(
                _wrk(
                    url,
                    json_bytes,
                    {"Content-Type": "application/json"},
                    concurrency,
                    duration,
                    folder,
                    "json",
                )
            )

    def median(key: str, field: str = "throughput") -> float:
        return float(stats.median(float(r[field] or 0.0) for r in runs[key]))

    v, w = median("validator"), median("wrk")
    ratio = v / w if w else 0.0
    return {
        "model": PROBE_MODEL,
        "concurrency": concurrency,
        "duration_s": duration,
        "request": {
            "same": "the validator's own request bytes (loadchecks.probe_target: JSON header + binary "
            "tensor data, batch 1, Inference-Header-Content-Length "
            f"{headers.get('Inference-Header-Content-Length')}), {len(body)} bytes of body",
            "json": f"KServe v2 JSON, same input values and requested outputs, {len(json_bytes)} bytes",
        },
        "validator_throughput": round(v, 1),
        "validator_server_throughput": round(median("validator", "server_throughput"), 1),
        "validator_average_batch": round(median("validator", "server_average_batch"), 2),
        "validator_p99_ms": round(median("validator", "p99_ms"), 2),
        "wrk_throughput": round(w, 1),
        "wrk_p99_ms": round(median("wrk", "p99_ms"), 2),
        "wrk_json_throughput": round(median("wrk_json"), 1),
        "validator_2proc_throughput": round(median("validator_2proc"), 1),
        "validator_grpc_throughput": round(median("validator_grpc"), 1),
        "validator_grpc_server_throughput": round(median("validator_grpc", "server_throughput"), 1),
        "ratio": round(ratio, 3),
        "runs": runs,
        "validator_client_cpu_cores": round(stats.median(client_cpu["validator"]), 2),
        "client_cpu_cores": {k: round(stats.median(x), 2) for k, x in client_cpu.items()},
        "note": "client and server share the same 2 cores: the client's CPU use lowers what the server gets",
        "target": "validator's figure within 15% of wrk's",
        "met": abs(ratio - 1.0) <= 0.15,
    }


def run(
    duration: float = 3.0,
    probe_concurrency: int = 8,
    probe_duration: float = 5.0,
    repeats: int = 3,
    sections: tuple[str, ...] = ("serving", "probe"),
) -> dict[str, Any]:
    from repo_builder.serve.embedded import EmbeddedServer

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="rb-bench-serve-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        repo = build_repository(folder)
        build_s = time.perf_counter() - t0
        with EmbeddedServer(repo) as server:
            if "serving" in sections:
                try:
                    out["serving"] = serving_benchmark(repo, server.http_url, server.grpc_url, duration)
                    out["serving"]["repository_build_s"] = round(build_s, 1)
                except Exception as e:  # recorded, the other section still runs
                    out["serving"] = {"error": f"{type(e).__name__}: {e}"}
            if "probe" in sections:
                try:
                    out["probe"] = probe_benchmark(
                        repo, server.http_url, server.grpc_url, probe_concurrency, probe_duration, repeats
                    )
                except Exception as e:
                    out["probe"] = {"error": f"{type(e).__name__}: {e}"}
    return out
