"""Run every benchmark side by side, print figures, targets and ratios, write benchmarks/results/latest.json.

    .venv/bin/python -m benchmarks.run [--only build,rebuild,render,serving,probe] [--repeats N]

A section that fails to run is recorded with its error and the others still run; the exit code is 1 when
any section failed to run (a missed target is a result, not a failure).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.measure import ROOT

SECTIONS = ("build", "rebuild", "render", "serving", "probe")
RESULTS = Path(__file__).with_name("results") / "latest.json"


def machine() -> dict[str, Any]:
    import importlib.metadata as md

    versions = {}
    for name in ("tensorflow", "tf2onnx", "onnxruntime", "tritonclient", "nvidia-pytriton"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    return {
        "cpus": os.cpu_count(),
        "gpu": None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "libraries": versions,
    }


def _guard(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    t0 = time.perf_counter()
    print(f"[{name}] running ...", file=sys.stderr, flush=True)
    try:
        result = fn()
    except Exception as e:
        result = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-4000:]}
    result["section_s"] = round(time.perf_counter() - t0, 1)
    status = "error: " + result["error"].splitlines()[0] if "error" in result else "done"
    print(f"[{name}] {status} ({result['section_s']} s)", file=sys.stderr, flush=True)
    return result


def run_all(only: tuple[str, ...], repeats: int, serve_duration: float) -> dict[str, Any]:
    from benchmarks import build_overhead, render_scale, serving

    results: dict[str, Any] = {}
    if "build" in only or "rebuild" in only:
        both = _guard("build+rebuild", lambda: build_overhead.run(repeats=repeats, rebuild_repeats=max(3, repeats)))
        if "error" in both:
            for key in ("build", "rebuild"):
                if key in only:
                    results[key] = dict(both)
        else:
            for key in ("build", "rebuild"):
                if key in only:
                    results[key] = dict(both[key], section_s=both["section_s"])
    if "render" in only:
        # a render run takes 0.3-2 s: more repeats than the default 3 for a steadier median
        results["render"] = _guard("render", lambda: render_scale.run(repeats=max(5, repeats)))
    wanted = tuple(s for s in ("serving", "probe") if s in only)
    if wanted:
        served = _guard(
            "+".join(wanted),
            lambda: serving.run(duration=serve_duration, repeats=repeats, sections=wanted),
        )
        for key in wanted:
            results[key] = served.get(key, {"error": served.get("error", "did not run")})
    return results


# ------------------------------------------------------------------------------------------------ table


def _met(value: bool | None) -> str:
    return "-" if value is None else ("[green]yes[/]" if value else "[red]NO[/]")


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, bool | None]]:
    """(figure, value, target, ratio, met) for every figure."""
    out: list[tuple[str, str, str, str, bool | None]] = []
    for name, r in results.items():
        if "error" in r:
            out.append((f"{name}: ERROR", r["error"].splitlines()[0][:100], "", "", False))
    b = results.get("build", {})
    if "build" in b:
        out += [
            (
                "1 build wall (-j 2, onnx, 7 models)",
                f"{b['build']['wall_s']:.1f} s",
                "<= 1.3x floor",
                f"{b['wall_ratio']:.2f}x",
                b["wall_met"],
            ),
            ("1 floor wall (plain tf2onnx script)", f"{b['floor']['wall_s']:.1f} s", "", "", None),
            (
                "1 build peak RSS, largest process",
                f"{b['build']['peak_rss_mib']:.0f} MiB",
                "<= 1.2x floor",
                f"{b['peak_rss_ratio']:.2f}x",
                b["rss_met"],
            ),
            ("1 floor peak RSS", f"{b['floor']['peak_rss_mib']:.0f} MiB", "", "", None),
        ]
    rb = results.get("rebuild", {})
    if "wall_s" in rb:
        out += [
            ("2 no-op rebuild wall", f"{rb['wall_s']:.2f} s", "< 1 s", "", rb["wall_s"] < 1.0),
            (
                "2 tensorflow modules imported (-X importtime)",
                str(rb["tensorflow_modules_imported"]),
                "0",
                "",
                rb["tensorflow_modules_imported"] == 0,
            ),
        ]
    rd = results.get("render", {})
    if "curve" in rd:
        where = rd.get("judged_on", "disk")
        disk = {point["models"]: point for point in rd.get("disk_curve", [])}
        for point in rd["curve"]:
            on_disk = disk.get(point["models"])
            out.append(
                (
                    f"3 render {point['models']} models ({where})",
                    f"{point['wall_s']:.2f} s"
                    + (f"; disk {on_disk['wall_s']:.2f} s" if on_disk and where != "disk" else ""),
                    "< 2 s" if point["models"] == 1000 else "",
                    f"{point['ms_per_model']:.2f} ms/model",
                    point["wall_s"] < 2.0 if point["models"] == 1000 else None,
                )
            )
        per_model = rd["in_process_ms_per_model"]
        out += [
            (
                f"3 ms per model in one process, 10/100/300/1000 ({where})",
                " / ".join(f"{x:.2f}" for x in per_model),
                "flat",
                f"{max(per_model) / min(per_model):.2f}x max/min",
                rd.get("flat"),
            ),
            (
                "3 the same on disk",
                " / ".join(f"{x:.2f}" for x in rd.get("disk_in_process_ms_per_model", [])),
                "",
                "",
                None,
            ),
        ]
    sv = results.get("serving", {})
    if "levels" in sv:
        for protocol, per_model in sv["levels"].items():
            default = {lv["concurrency"]: lv for lv in per_model["image_cnn"]}
            single = {lv["concurrency"]: lv for lv in per_model["image_cnn_single"]}
            for c in sorted(default):
                ratio = sv["ratios"][protocol][str(c)]
                top = c == max(default)
                out.append(
                    (
                        f"4 {protocol} c={c}: default vs 1 inst, no batching",
                        f"{default[c]['throughput']:.0f} vs {single[c]['throughput']:.0f} infer/s; "
                        f"p99 {default[c]['p99_ms']:.1f} vs {single[c]['p99_ms']:.1f} ms",
                        ">= 2x thr, p99 not worse" if top else "",
                        f"{ratio['throughput_ratio']:.2f}x thr, {ratio['p99_ratio']:.2f}x p99",
                        sv["ratios"][protocol]["met"] if top else None,
                    )
                )
        wrk = sv.get("wrk_http_c16")
        if wrk and "skipped" in wrk:
            out.append(("4 http c=16 with wrk (server-bound check)", wrk["skipped"], "", "", None))
        elif wrk:
            out.append(
                (
                    "4 http c=16 with wrk (server-bound check)",
                    f"{wrk['image_cnn']['throughput']:.0f} vs {wrk['image_cnn_single']['throughput']:.0f} infer/s",
                    "",
                    f"{wrk['throughput_ratio']:.2f}x thr",
                    None,
                )
            )
    pb = results.get("probe", {})
    if "ratio" in pb:
        out += [
            (
                f"5 validator probe, {pb['model']} http c={pb['concurrency']}",
                f"{pb['validator_throughput']:.0f} infer/s",
                "within 15% of wrk",
                f"{pb['ratio']:.2f}x wrk",
                pb["met"],
            ),
            ("5 wrk, the validator's exact request", f"{pb['wrk_throughput']:.0f} infer/s", "", "", None),
            ("5 wrk, KServe v2 JSON request", f"{pb['wrk_json_throughput']:.0f} infer/s", "", "", None),
            ("5 validator client CPU (cores busy)", f"{pb['validator_client_cpu_cores']:.2f}", "", "", None),
        ]
    return out


def print_table(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="repo-builder benchmarks", title_justify="left")
    for col in ("figure", "value", "target", "ratio", "met?"):
        table.add_column(col, justify="right" if col in ("value", "ratio") else "left")
    for figure, value, target, ratio, met in rows(results):
        table.add_row(figure, value, target, ratio, _met(met))
    Console(highlight=False, width=160).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated: {','.join(SECTIONS)}")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (the median is reported)")
    parser.add_argument("--serve-duration", type=float, default=3.0, help="seconds of load per level (4)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args(argv)
    only = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    os.chdir(ROOT)
    t0 = time.perf_counter()
    info = machine()
    results = run_all(only, max(1, args.repeats), args.serve_duration)
    report = {
        "machine": info,
        "repeats": args.repeats,
        "total_s": round(time.perf_counter() - t0, 1),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print_table(results)
    print(
        f"total {report['total_s']} s on {info['cpus']} CPUs (no GPU); "
        f"load average at start {info['load_average_at_start']}; results: {args.output}"
    )
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
