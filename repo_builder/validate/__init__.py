"""The deployment validator: checks a running Triton server against a repository (tritonclient)."""

from __future__ import annotations

from repo_builder.validate.checks import MODEL_CHECKS, validate
from repo_builder.validate.report import CheckResult, Report

__all__ = ["MODEL_CHECKS", "CheckResult", "Report", "validate"]
