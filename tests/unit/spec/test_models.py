"""`repo-builder schema` documents the spec: every field of every model has a description."""

from __future__ import annotations

from typing import Any

from repo_builder.spec.models import Spec


def _undescribed(schema: dict[str, Any]) -> list[str]:
    """`Model.field` for every property, of the top-level model and of every $defs model, without a description."""
    models = {schema.get("title", "Spec"): schema, **schema.get("$defs", {})}
    return [
        f"{model}.{name}"
        for model, sub in sorted(models.items())
        for name, prop in sub.get("properties", {}).items()
        if not str(prop.get("description", "")).strip()
    ]


def test_every_spec_field_has_a_description() -> None:
    schema = Spec.model_json_schema()
    assert len(schema["$defs"]) >= 20  # the walk reaches the nested models
    assert _undescribed(schema) == []


def test_the_walk_finds_a_field_without_one() -> None:
    schema = {"title": "Spec", "properties": {"a": {"description": "A."}}, "$defs": {"M": {"properties": {"b": {}}}}}
    assert _undescribed(schema) == ["M.b"]
