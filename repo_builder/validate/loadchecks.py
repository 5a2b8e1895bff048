"""The checks that load the server: dynamic batching (concurrent batch-1 requests must run in fewer
executions than requests) and the performance probe (load.py's generator at each concurrency level: latency
percentiles, throughput, the server's own counts, against the manifest's thresholds).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from repo_builder.validate.expected import ExpectedModel
from repo_builder.validate.golden import datatypes, sample
from repo_builder.validate.load import run_load
from repo_builder.validate.payloads import Target, check_sample, grpc_request, http_request
from repo_builder.validate.report import Skip, error_text

if TYPE_CHECKING:
    from repo_builder.validate.checks import Validator


def _concurrent(
    validator: Validator, model: ExpectedModel, threads: int, *, requests: int = 0, duration: float = 0.0
) -> tuple[list[float], list[str], float]:
    """Send batch-1 requests from `threads` connections: a fixed number, or for `duration` seconds.
    Returns (latencies in s, errors, elapsed s)."""
    inputs, outputs = sample(validator.repo, model)
    types = datatypes(model, inputs)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(requests)) if requests else None
    barrier = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def worker() -> None:
        conn = None
        try:
            conn = validator.connect()
            barrier.wait(validator.timeout)
            while True:
                if counter is not None:
                    with lock:
                        if next(counter, None) is None:
                            return
                elif time.monotonic() >= stop_at[0]:
                    return
                t0 = time.monotonic()
                try:
                    conn.infer(model.name, inputs, types, outputs)
                except Exception as e:
                    with lock:
                        errors.append(error_text(e))
                    if len(errors) > 20:
                        return
                    continue
                with lock:
                    latencies.append(time.monotonic() - t0)
        except threading.BrokenBarrierError:
            with lock:
                errors.append("a client could not start in time")
        finally:
            if conn is not None:
                conn.close()

    pool = [threading.Thread(target=worker, daemon=True, name=f"validate-{i}") for i in range(threads)]
    for t in pool:
        t.start()
    try:
        barrier.wait(validator.timeout)
    except threading.BrokenBarrierError:
        errors.append("clients could not start in time")
    start = time.monotonic()
    stop_at[0] = start + duration
    limit = (duration if duration else validator.timeout * max(1, requests)) + validator.timeout + 5
    for t in pool:
        t.join(max(0.0, start + limit - time.monotonic()))
    if any(t.is_alive() for t in pool):
        errors.append(f"requests still running after {limit:.0f} s (abandoned)")
    return latencies, errors, time.monotonic() - start


def check_dynamic_batching(validator: Validator, model: ExpectedModel) -> tuple[str, dict[str, Any]]:
    assert validator.conn is not None
    if not model.dynamic_batching:
        reason = (
            "max_batch_size <= 1"
            if model.config is not None and model.config.HasField("dynamic_batching")
            else "no dynamic_batching in config.pbtxt"
        )
        raise Skip(reason)
    threads = 16
    rounds = []
    for _ in range(3):  # batches form as soon as requests queue up; a busy host may need another round
        before = validator.conn.statistics(model.name)
        _, errors, _ = _concurrent(validator, model, threads, requests=validator.batching_requests)
        after = validator.conn.statistics(model.name)
        if errors:
            raise AssertionError(f"{len(errors)} of {validator.batching_requests} requests failed: {errors[0]}")
        inferences = after["inference_count"] - before["inference_count"]
        executions = after["execution_count"] - before["execution_count"]
        rounds.append({"inference_count": inferences, "execution_count": executions})
        if 0 < executions < inferences:
            return (
                f"{validator.batching_requests} concurrent requests of batch 1 from {threads} clients ran in "
                f"{executions} executions (inference_count +{inferences}, average batch "
                f"{inferences / executions:.1f})",
                {"rounds": rounds},
            )
    raise AssertionError(
        f"no batches formed: over {len(rounds)} rounds of {validator.batching_requests} concurrent requests, "
        f"execution_count grew as much as inference_count ({rounds}). Check dynamic_batching and "
        "max_queue_delay_microseconds in config.pbtxt."
    )


def probe_target(validator: Validator, model: ExpectedModel) -> tuple[Target, list[str]]:
    """The performance probe's request, encoded once: the golden check's request (reference inputs,
    batch 1 when batching) for the model's default version; and the outputs it asks for."""
    inputs, outputs = sample(validator.repo, model)
    types = datatypes(model, inputs)
    if validator.protocol == "http":
        payload = http_request(validator.url, model.name, inputs, types, outputs)
    else:
        payload = grpc_request(model.name, inputs, types, outputs)
    return Target(validator.protocol, validator.url, payload, validator.timeout), outputs


def check_performance(validator: Validator, model: ExpectedModel) -> tuple[str, dict[str, Any]]:
    import numpy as np

    assert validator.conn is not None
    if not validator.concurrency:
        raise Skip("no concurrency levels requested")
    conn = validator.conn
    target, outputs = probe_target(validator, model)
    thresholds = model.thresholds
    levels = []
    problems = []
    for c in validator.concurrency:
        load = run_load(
            target,
            c,
            duration=validator.perf_duration,
            warmup=validator.perf_warmup,
            processes=validator.probe_processes,
            statistics=lambda: conn.statistics(model.name),
        )
        ms = np.array(load.latencies) * 1000.0
        level: dict[str, Any] = {
            "concurrency": c,
            "requests": len(load.latencies),
            "errors": load.errors,
            "p50_ms": float(np.percentile(ms, 50)) if ms.size else None,
            "p95_ms": float(np.percentile(ms, 95)) if ms.size else None,
            "p99_ms": float(np.percentile(ms, 99)) if ms.size else None,
            "throughput": load.throughput,
            "window_s": load.window_s,
            "processes": load.processes,
        }
        if load.stats is not None:
            before, after, seconds = load.stats
            inferences = after["inference_count"] - before["inference_count"]
            executions = after["execution_count"] - before["execution_count"]
            level["server"] = {
                "inference_count": inferences,
                "execution_count": executions,
                "window_s": seconds,
                "throughput": inferences / seconds if seconds > 0 else 0.0,
                "executions_per_s": executions / seconds if seconds > 0 else 0.0,
                "average_batch": inferences / executions if executions else None,
            }
        levels.append(level)
        if load.errors or load.messages:
            problems.append(
                f"concurrency {c}: {load.errors} request(s) failed: "
                + (load.messages[0] if load.messages else "no message")
            )
            if validator.silent() is not None:  # no higher level: the run stops here
                break
        if load.sample is not None and (wrong := check_sample(validator.protocol, load.sample, outputs)):
            problems.append(f"concurrency {c}: {wrong}")
        limit = thresholds.get("p99_latency_ms")
        p99 = level["p99_ms"]
        if limit is not None and p99 is not None and p99 > limit:
            problems.append(f"concurrency {c}: p99 {p99:.1f} ms > p99_latency_ms {limit:g}")
    best = max((float(lv["throughput"] or 0.0) for lv in levels), default=0.0)
    minimum = thresholds.get("min_throughput")
    if minimum is not None and best < minimum:
        problems.append(f"best throughput {best:.1f} infer/s < min_throughput {minimum:g}")
    summary = "; ".join(_level_summary(lv) for lv in levels)
    data = {
        "levels": levels,
        "thresholds": thresholds,
        "duration_s": validator.perf_duration,
        "warmup_s": validator.perf_warmup,
        "request_bytes": len(target.payload),
    }
    if problems:
        raise AssertionError("\n".join(problems) + "\n" + summary)
    return summary + ("" if thresholds else " (no thresholds in the manifest)"), data


def _level_summary(level: Mapping[str, Any]) -> str:
    """c=8: p50/p95/p99 1.1/2.3/4.0 ms, 5210 infer/s (server 5230 infer/s, average batch 3.1)"""
    latency = "/".join(f"{level[k]:.1f}" for k in ("p50_ms", "p95_ms", "p99_ms")) if level["requests"] else "-"
    text = f"c={level['concurrency']}: p50/p95/p99 {latency} ms, {level['throughput']:.0f} infer/s"
    server = level.get("server")
    if server:
        batch = server["average_batch"]
        text += f" (server {server['throughput']:.0f} infer/s" + (f", average batch {batch:.1f})" if batch else ")")
    return text
