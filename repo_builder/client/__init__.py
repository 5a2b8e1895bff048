"""The deployment validator: checks a running Triton server against a repository (tritonclient)."""

from __future__ import annotations

from repo_builder.client.report import CheckResult, Report
from repo_builder.client.validate import MODEL_CHECKS, validate

__all__ = ["MODEL_CHECKS", "CheckResult", "Report", "validate"]
