"""GPU benchmark: what the generated config buys on a GPU, and how close the server gets to the raw engine.

    python -m benchmarks.gpu_serving build OUT      here (TensorFlow): ResNet-50 (224x224, random weights) built
                                                    with the tool's defaults (target onnx) into OUT/repo, plus a
                                                    copy with no dynamic batching and one GPU instance
    python -m benchmarks.gpu_serving run OUT [-d S]  on the GPU host: both served by the embedded tritonserver on
                                                    the GPU, loaded with the validator's probe over gRPC at
                                                    concurrency 1, 16 and 64 (S seconds per level), then plain
                                                    ONNX Runtime CUDA in one process at max_batch_size;
                                                    and the default instance's own account of its time
                                                    at concurrency 64 (computing, or waiting for batches)

The embedded server has no ONNX Runtime backend: both copies run as python-backend previews computing with
ONNX Runtime's CUDA provider on the instance's GPU (templates/preview_model.py.j2), with the config's batching
and instances. Prints one JSON document (also OUT/gpu_serving.json). Targets: the default config at least 3x
the unbatched one at concurrency 64; the server at least 0.7x plain ONNX Runtime CUDA at the same batch size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.measure import build_cmd
from benchmarks.serving import _level, add_single_instance_copy, probe, statistics

MODEL = "resnet50"
SINGLE = "resnet50_single"  # the same model: no dynamic batching, one instance on the GPU
TWO = "resnet50_x2"  # for insight, not a target: the default config with two instances on the GPU
LEVELS = (1, 16, 64)


def build(out: Path) -> Path:
    """ResNet-50 as `repo-builder build` writes it by default, and the single-instance unbatched copy."""
    spec = {
        "repository": "repo",
        "models": [
            {
                "name": MODEL,
                "source": {"python": f"{Path(__file__).with_name('gpu_models.py')}:resnet50"},
                "target": "onnx",
            }
        ],
    }
    out.mkdir(parents=True, exist_ok=True)
    spec_path = out / "gpu_serving.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    done = subprocess.run(build_cmd(str(spec_path), "-o", str(out / "repo"), "--force"), check=False)
    if done.returncode != 0:
        raise SystemExit(f"building {spec_path} failed (exit {done.returncode})")
    add_single_instance_copy(out / "repo", source=MODEL, name=SINGLE, kind="KIND_GPU")
    add_instances_copy(out / "repo", source=MODEL, name=TWO, count=2)
    return out / "repo"


def add_instances_copy(repo: Path, source: str, name: str, count: int) -> None:
    """`source` as `name` with `count` instances on the GPU, batching as written; the model file linked."""
    import os
    import shutil

    from google.protobuf import text_format
    from tritonclient.grpc.model_config_pb2 import ModelConfig, ModelInstanceGroup

    shutil.copytree(repo / source, repo / name, ignore=shutil.ignore_patterns("model.onnx"))
    os.symlink(f"../../{source}/1/model.onnx", repo / name / "1" / "model.onnx")
    config = text_format.Parse((repo / source / "config.pbtxt").read_text(), ModelConfig())
    config.name = name
    config.ClearField("instance_group")
    config.instance_group.add(kind=ModelInstanceGroup.KIND_GPU, count=count)
    (repo / name / "config.pbtxt").write_text(text_format.MessageToString(config))
    manifest_path = repo / "repo_builder_manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["models"][name] = dict(manifest["models"][source])
    manifest_path.write_text(json.dumps(manifest, indent=2))


def raw_engine(onnx: Path, batch: int, seconds: float) -> dict[str, Any]:
    """Plain ONNX Runtime with the CUDA provider in this process: images per second at `batch`."""
    import numpy as np
    import onnxruntime as ort

    if hasattr(ort, "preload_dlls"):
        ort.preload_dlls()
    cuda = {"cudnn_conv_algo_search": "HEURISTIC"}  # as the served model.py (templates/_device.py.j2)
    session = ort.InferenceSession(str(onnx), providers=[("CUDAExecutionProvider", cuda), "CPUExecutionProvider"])
    if session.get_providers()[0] != "CUDAExecutionProvider":
        raise SystemExit(f"ONNX Runtime did not take the CUDA provider: {session.get_providers()}")
    feed_name = session.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal((batch, 224, 224, 3)).astype(np.float32)
    for _ in range(10):
        session.run(None, {feed_name: x})
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        session.run(None, {feed_name: x})
        runs += 1
    elapsed = time.perf_counter() - start
    return {
        "batch": batch,
        "runs": runs,
        "ms_per_batch": round(1000 * elapsed / runs, 3),
        "throughput": round(runs * batch / elapsed, 1),
        "providers": session.get_providers(),
    }


def serve_levels(
    repo: Path, models: list[str], log: Path, duration: float
) -> tuple[dict[str, Any], dict[str, float | None]]:
    """Each model loaded over gRPC at LEVELS by one embedded server on the GPU: the levels, and the average
    batch the server formed over them."""
    from repo_builder.serve.embedded import EmbeddedServer

    levels: dict[str, Any] = {}
    batching: dict[str, float | None] = {}
    with EmbeddedServer(repo, log_file=log, models=models) as server:
        url = server.grpc_url
        for model in models:
            probe(repo, url, "grpc", model, (16,), 2.0)  # warm-up: CUDA kernels, batcher
        for model in models:
            before = statistics(url, "grpc", model)
            levels[model] = [_level(lv) for lv in probe(repo, url, "grpc", model, LEVELS, duration, processes=4)]
            after = statistics(url, "grpc", model)
            inferences = after["inference_count"] - before["inference_count"]
            executions = after["execution_count"] - before["execution_count"]
            batching[model] = round(inferences / executions, 2) if executions else None
    return levels, batching


ACCOUNT = re.compile(
    r"compute thread: (?P<batches>\d+) batches, (?P<computing>[\d.]+) s computing, (?P<waiting>[\d.]+) s waiting"
    r" for a batch; execute\(\) waited (?P<blocked>[\d.]+) s for the thread"
    r"(; the runtime ran (?P<running>[\d.]+) s, execute\(\) stacked (?P<stacking>[\d.]+) s, "
    r"(?P<between>[\d.]+) s passed between execute\(\) calls)?"
)


def compute_account(repo: Path, model: str, log: Path, duration: float, concurrency: int) -> dict[str, Any]:
    """`model` alone on a server under load at `concurrency`, then unloaded: the level, and the account its
    compute thread logs at unload (templates/_pipeline.py.j2) of where the instance's time went: computing,
    waiting for a batch (reading it was the bound), and execute() waiting for the thread (computing was)."""
    from repo_builder.serve.embedded import EmbeddedServer

    log.unlink(missing_ok=True)  # this run's account only
    with EmbeddedServer(repo, log_file=log, models=[model]) as server:
        probe(repo, server.grpc_url, "grpc", model, (16,), 2.0)  # warm-up, as for the levels
        level = _level(probe(repo, server.grpc_url, "grpc", model, (concurrency,), duration, processes=4)[0])
    found = ACCOUNT.search(log.read_text(errors="replace"))
    if found is None:
        return {"level": level, "account": None, "note": "no compute thread account in the log"}
    account: dict[str, Any] = {k: float(v) for k, v in found.groupdict().items() if v is not None}
    busy = account["computing"] + account["waiting"]
    account["computing_share"] = round(account["computing"] / busy, 3) if busy else None
    return {"level": level, "account": account}


def run(out: Path, duration: float) -> dict[str, Any]:
    from repo_builder.serve.gpus import visible_gpus

    repo = out / "repo"
    served = [m for m in (MODEL, SINGLE, TWO) if (repo / m).is_dir()]
    config = (repo / MODEL / "config.pbtxt").read_text()
    max_batch = int(next(line.split(":")[1] for line in config.splitlines() if line.startswith("max_batch_size")))
    gpu = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"], capture_output=True, text=True
    ).stdout.strip()
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "device": gpu,
        "gpus_seen": visible_gpus(),
        "cpus": platform.processor() or platform.machine(),
        "duration_s_per_level": duration,
        "configs": {m: (repo / m / "config.pbtxt").read_text() for m in served},
    }
    results["levels"], results["batching"] = serve_levels(repo, served, out / "gpu_serving_server.log", duration)
    # the same default config with every batch computed inside execute() at its own size, as before GPU
    # instances got their compute thread and padded batches (templates/_pipeline.py.j2): insight, not a target
    os.environ["REPO_BUILDER_GPU_BATCHING"] = "0"
    try:
        results["levels_in_execute"], _ = serve_levels(repo, [MODEL], out / "gpu_serving_in_execute.log", duration)
    finally:
        os.environ.pop("REPO_BUILDER_GPU_BATCHING")
    # where the default instance's time goes at the top level (insight): computing, or waiting for batches
    results["compute_account"] = compute_account(repo, MODEL, out / "gpu_serving_account.log", duration, LEVELS[-1])
    results["raw_onnxruntime_cuda"] = raw_engine(repo / MODEL / "1" / "model.onnx", max_batch, max(duration, 5.0))
    default = {lv["concurrency"]: lv for lv in results["levels"][MODEL]}
    single = {lv["concurrency"]: lv for lv in results["levels"][SINGLE]}
    top = LEVELS[-1]
    batched_ratio = default[top]["throughput"] / single[top]["throughput"] if single[top]["throughput"] else None
    raw_ratio = default[top]["throughput"] / results["raw_onnxruntime_cuda"]["throughput"]
    results["ratios"] = {
        f"default / unbatched throughput at c={top}": round(batched_ratio, 2) if batched_ratio else None,
        f"served (c={top}) / raw ONNX Runtime CUDA (batch {max_batch}) throughput": round(raw_ratio, 2),
    }
    in_execute = {lv["concurrency"]: lv for lv in results["levels_in_execute"][MODEL]}
    results["ratios"][f"default / the same without GPU batching (thread, padding) at c={top} (insight)"] = round(
        default[top]["throughput"] / in_execute[top]["throughput"], 2
    )
    if TWO in results["levels"]:
        two = {lv["concurrency"]: lv for lv in results["levels"][TWO]}
        results["ratios"][f"two instances / default throughput at c={top} (insight, not a target)"] = round(
            two[top]["throughput"] / default[top]["throughput"], 2
        )
    results["targets"] = {
        "default >= 3x unbatched at c=64": bool(batched_ratio and batched_ratio >= 3.0),
        "served >= 0.7x raw engine at the same batch size": raw_ratio >= 0.7,
    }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_serving", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["build", "run"])
    parser.add_argument("out", type=Path)
    parser.add_argument("-d", "--duration", type=float, default=10.0, help="seconds per concurrency level")
    args = parser.parse_args(argv)
    if args.what == "build":
        print(build(args.out))
        return 0
    results = run(args.out, args.duration)
    text = json.dumps(results, indent=2)
    (args.out / "gpu_serving.json").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
