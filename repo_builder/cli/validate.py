"""`repo-builder validate`: plain functions the typer CLI calls (cli.py stays free of logic)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repo_builder.errors import DeploymentError
from repo_builder.validate.connection import PROTOCOLS

if TYPE_CHECKING:
    from rich.console import Console
    from tritonclient.grpc.model_config_pb2 import ModelConfig

    from repo_builder.validate.report import Report


def _console(console: Console | None) -> Console:
    from rich.console import Console

    return console if console is not None else Console(stderr=True)


def write_reports(reports: Sequence[Report], json_path: Path | None, junit_path: Path | None) -> None:
    """One JSON file and one JUnit file for one or more reports (e.g. HTTP and gRPC)."""
    import json
    import xml.etree.ElementTree as ET

    try:
        if json_path is not None:
            data: dict[str, Any] = (
                reports[0].to_dict()
                if len(reports) == 1
                else {"ok": all(r.ok for r in reports), "reports": [r.to_dict() for r in reports]}
            )
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(data, indent=2, default=str) + "\n")
        if junit_path is not None:
            root = ET.Element("testsuites")
            for r in reports:
                root.extend(ET.fromstring(r.to_junit()))
            ET.indent(root)
            junit_path.parent.mkdir(parents=True, exist_ok=True)
            junit_path.write_text(
                '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
            )
    except OSError as e:
        raise DeploymentError(f"cannot write the validation report: {e}") from e


def run_validation(
    repository: Path,
    targets: Sequence[tuple[str, str]],
    *,
    timeout: float = 10.0,
    concurrency: Sequence[int] = (1, 4, 16),
    perf_duration: float = 1.0,
    served_configs: dict[str, ModelConfig] | None = None,
    report: Path | None = None,
    junit: Path | None = None,
    console: Console | None = None,
) -> int:
    """Validate against each (protocol, url), show the tables, write the files; 0 all pass, 1 failures."""
    from repo_builder.validate.checks import validate

    out = _console(console)
    reports = []
    for protocol, url in targets:
        with out.status(f"validating {repository} on {url} over {protocol}"):
            reports.append(
                validate(
                    repository,
                    url,
                    protocol,  # type: ignore[arg-type]
                    timeout=timeout,
                    concurrency=concurrency,
                    perf_duration=perf_duration,
                    served_configs=served_configs,
                )
            )
        out.print(reports[-1].to_table())
    write_reports(reports, report, junit)
    return 0 if all(r.ok for r in reports) else 1


def validate_command(
    repository: Path,
    url: str,
    protocol: str = "http",
    report: Path | None = None,
    junit: Path | None = None,
    timeout: float = 10.0,
    concurrency: Sequence[int] = (1, 4, 16),
    perf_duration: float = 1.0,
    console: Console | None = None,
) -> int:
    """`repo-builder validate REPO --url URL [--protocol http|grpc] [--report F] [--junit F] [--timeout S]`.

    Returns 0 when every check passed, 1 otherwise."""
    if protocol not in PROTOCOLS:
        raise DeploymentError(f"--protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}")
    return run_validation(
        Path(repository),
        [(protocol, url)],
        timeout=timeout,
        concurrency=concurrency,
        perf_duration=perf_duration,
        report=report,
        junit=junit,
        console=console,
    )
