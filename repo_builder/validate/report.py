"""Results of a validation: one named result per check, a JSON report, JUnit XML and a rich table; and how a
check words a skip (Skip) or an exception (error_text) for its result."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from rich.table import Table

Status = Literal["pass", "fail", "skip"]


class Skip(Exception):
    """Raised inside a check to record it as skipped with a reason."""


def error_text(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text if type(e).__name__ in text else f"{type(e).__name__}: {text}"


@dataclass
class CheckResult:
    name: str  # e.g. "golden"
    status: Status
    detail: str = ""
    model: str | None = None  # None for server-wide checks
    duration_s: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.model}/{self.name}" if self.model else self.name


@dataclass
class Report:
    url: str
    protocol: str
    repository: str
    checks: list[CheckResult] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no check failed and at least one passed (skips carry their reason)."""
        return not self.failures and any(c.status == "pass" for c in self.checks)

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == "fail"]

    def get(self, name: str, model: str | None = None) -> CheckResult:
        """The result of one check, e.g. report.get("golden", "mlp"); KeyError when absent."""
        for c in self.checks:
            if c.name == name and c.model == model:
                return c
        raise KeyError(f"{model}/{name}" if model else name)

    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.checks) for s in ("pass", "fail", "skip")}

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "url": self.url,
            "protocol": self.protocol,
            "repository": self.repository,
            "started": self.started,
            "duration_s": round(self.duration_s, 3),
            "counts": self.counts(),
            "checks": [asdict(c) | {"id": c.id} for c in self.checks],
        }

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=str) + "\n"

    def to_junit(self) -> str:
        import xml.etree.ElementTree as ET

        counts = self.counts()
        suites = ET.Element("testsuites")
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"repo-builder validate ({self.protocol} {self.url})",
            tests=str(len(self.checks)),
            failures=str(counts["fail"]),
            skipped=str(counts["skip"]),
            errors="0",
            time=f"{self.duration_s:.3f}",
        )
        for c in self.checks:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"{self.protocol}.{c.model or 'server'}",
                name=c.name,
                time=f"{c.duration_s:.3f}",
            )
            if c.status == "fail":
                failure = ET.SubElement(case, "failure", message=c.detail.splitlines()[0] if c.detail else "failed")
                failure.text = c.detail
            elif c.status == "skip":
                ET.SubElement(case, "skipped", message=c.detail)
            elif c.detail:
                ET.SubElement(case, "system-out").text = c.detail
        ET.indent(suites)
        return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"

    def to_table(self) -> Table:
        from rich.table import Table

        style = {"pass": "[green]PASS[/]", "fail": "[bold red]FAIL[/]", "skip": "[yellow]SKIP[/]"}
        counts = self.counts()
        verdict = "[green]all checks passed[/]" if self.ok else "[bold red]validation failed[/]"
        table = Table(
            title=f"Validation of {self.repository} on {self.url} ({self.protocol})",
            caption=f"{verdict}: {counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped "
            f"in {self.duration_s:.1f} s",
        )
        table.add_column("model")
        table.add_column("check")
        table.add_column("result")
        table.add_column("detail", overflow="fold")
        for c in self.checks:
            table.add_row(c.model or "(server)", c.name, style[c.status], c.detail)
        return table
