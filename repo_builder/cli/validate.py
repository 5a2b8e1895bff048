"""`repo-builder validate`: check a running deployment; results on stdout, reports as JSON and JUnit.

Progress (a transient status line with the last finished check) goes to the stderr console, the
results (one table per protocol, its caption the verdict and the counts) to the stdout console.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repo_builder.cli.output import print_table
from repo_builder.errors import DeploymentError
from repo_builder.validate.connection import PROTOCOLS

if TYPE_CHECKING:
    from rich.console import Console
    from tritonclient.grpc.model_config_pb2 import ModelConfig

    from repo_builder.validate.report import Report


LOG = logging.getLogger("repo_builder.validate")


def _console(console: Console | None, stderr: bool = True) -> Console:
    from rich.console import Console

    if console is not None:
        return console
    return Console(stderr=True) if stderr else Console(highlight=False, soft_wrap=True)


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
    models: Sequence[str] | None = None,
    console_out: Console | None = None,
) -> int:
    """Validate against each (protocol, url), show the tables, write the files; 0 all pass, 1 failures.

    models: check only these (None: all); a name not in the repository raises DeploymentError.
    Progress on `console` (default: stderr), the tables on `console_out` (default: stdout).
    """
    from rich.markup import escape

    from repo_builder.validate.checks import validate

    err = _console(console)
    out = _console(console_out, stderr=False)
    reports = []
    for protocol, url in targets:
        doing = f"validating {repository} on {url} over {protocol}"
        with err.status(escape(doing)) as status:

            def progress(line: str, doing: str = doing) -> None:
                LOG.info("%s", line)
                status.update(escape(f"{doing}: {line}"))

            reports.append(
                validate(
                    repository,
                    url,
                    protocol,  # type: ignore[arg-type]
                    timeout=timeout,
                    concurrency=concurrency,
                    perf_duration=perf_duration,
                    served_configs=served_configs,
                    on_progress=progress,
                    models=models,
                )
            )
        print_table(out, reports[-1].to_table())
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
    models: Sequence[str] | None = None,
    console_out: Console | None = None,
) -> int:
    """`repo-builder validate REPO --url URL [--protocol http|grpc] [--model NAME ...] [--report F] [--junit F]`.

    Progress on `console` (stderr), the results table on `console_out` (stdout). Returns 0 when every
    check passed, 1 otherwise; raises DeploymentError for a --model name the repository does not hold."""
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
        models=models,
        console_out=console_out,
    )
