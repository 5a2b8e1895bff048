"""YAML with positions, and pydantic errors turned into one readable, located SpecError."""

from __future__ import annotations

import difflib
import gc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from repo_builder.errors import SpecError
from repo_builder.spec.advice import spec_warnings
from repo_builder.spec.files import file_problems
from repo_builder.spec.models import ModelSpec, Spec, duplicate_name_message
from repo_builder.spec.problems import Issues, Loc, Problem
from repo_builder.spec.reader import parse_yaml, read_spec_text, shorten


@dataclass(frozen=True)
class Mark:
    line: int  # 1-based
    column: int  # 1-based


class _Positions:
    """Line and column of every value (and every mapping key) in a YAML document."""

    def __init__(self) -> None:
        self.values: dict[Loc, Mark] = {}
        self.keys: dict[Loc, Mark] = {}

    def walk(self, node: yaml.Node, loc: Loc = ()) -> None:
        self.values[loc] = _mark(node)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = _scalar_key(key_node)
                self.keys[(*loc, key)] = _mark(key_node)
                self.walk(value_node, (*loc, key))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.walk(item, (*loc, i))

    def find(self, loc: Loc, *, key: bool = False) -> Mark | None:
        if key and loc in self.keys:
            return self.keys[loc]
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.values:
                return self.values[loc[:end]]
        return None


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def _scalar_key(node: yaml.Node) -> str | int:
    value = node.value if isinstance(node, yaml.ScalarNode) else str(node.value)
    if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":int"):
        try:
            return int(value)
        except ValueError:
            return str(value)
    return str(value)


def _read_yaml(path: Path) -> tuple[Any, yaml.Node]:
    """The document (a mapping) and its node tree, read within the limits of spec/reader.py."""
    shown = str(path)
    data, node = parse_yaml(read_spec_text(path), shown)
    if data is None or node is None:
        raise SpecError(f"{shown}: the file is empty; expected a mapping with at least `models:`")
    if not isinstance(data, dict):
        raise SpecError(
            f"{shown}:1:1: the document is a {type(data).__name__}, expected a mapping with "
            "keys such as repository, triton and models"
        )
    return data, node


def format_path(loc: Loc, data: Any) -> str:
    """('models', 1, 'dynamic_batching', 'preferred_batch_size', 0) -> models[1] (resnet) -> ... [0]."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int) and parts and isinstance(node, list):
            parts[-1] += f"[{item}]"
            node = node[item] if 0 <= item < len(node) else None
            if len(parts) == 1 and parts[0].startswith("models[") and isinstance(node, dict) and "name" in node:
                parts[-1] += f" ({_key_text(node['name'])})"
            continue
        parts.append(_key_text(item))
        node = node.get(item) if isinstance(node, dict) else None
    return " -> ".join(parts) if parts else "(top level)"


def _key_text(value: Any) -> str:
    """A key or model name as a path part: as written when it is short and printable, else its repr, cut."""
    text = str(value)
    return text if len(text) <= 100 and text.isprintable() else shorten(repr(value))


def _fields_of(model: type[BaseModel] | None) -> list[str]:
    return list(model.model_fields) if model is not None else []


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The pydantic model that holds the last key of loc (for listing the allowed keys)."""
    current: Any = Spec
    for item in loc[:-1]:
        if isinstance(item, int):
            continue
        fields = getattr(current, "model_fields", None)
        field = fields.get(item) if isinstance(fields, dict) else None
        if field is None:
            return None
        current = _inner_model(field.annotation)
        if current is None:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    origin = getattr(annotation, "__origin__", None)
    if origin is not None and origin is not annotation:
        return _inner_model(origin)
    return None


def _describe(error: dict[str, Any]) -> str:
    kind = error["type"]
    loc: Loc = tuple(error["loc"])
    value = error.get("input")
    shown = shorten(repr(value))
    if kind == "extra_forbidden":
        key = str(loc[-1])
        name = shorten(repr(key))
        allowed = _fields_of(_model_at(loc))
        close = difflib.get_close_matches(key, allowed, n=1)
        if not allowed:
            return f"unknown field {name}"
        if close:
            return f"unknown field {name}; did you mean {close[0]!r}? Expected one of: {', '.join(allowed)}"
        return f"unknown field {name}; expected one of: {', '.join(allowed)}"
    if kind == "missing":
        holder = _model_at(loc)
        field = holder.model_fields.get(str(loc[-1])) if holder is not None else None
        what = f" ({field.description.rstrip('.')})" if field is not None and field.description else ""
        return f"required field {shorten(repr(loc[-1]))} is missing; add it{what}"
    if kind == "too_short":
        least = error.get("ctx", {}).get("min_length", 1)
        return f"got {shown}; expected at least {least} item{'s' if least != 1 else ''}"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        choices = expected.replace(" or ", ", ").replace("'", "")
        return f"got {shown}; expected one of: {choices}"
    if kind in ("value_error", "assertion_error"):
        cause = error.get("ctx", {}).get("error")
        return str(cause) if cause is not None else error["msg"]
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        if loc and loc[-1] == "source" and isinstance(value, str):
            from repo_builder.spec.models import Source

            try:
                guess = Source.from_arg(value).kind
            except (ValueError, OSError):  # a NUL in the text, a name too long for a path
                guess = "python"
            return (
                f"got {type(value).__name__} {shown}; expected a mapping with one of python, saved_model, "
                f"keras_file, e.g. source: {{{guess}: {shorten(value)}}}"
            )
        return f"got {type(value).__name__} {shown}; expected a mapping (key: value)"
    if kind == "list_type":
        return f"got {type(value).__name__} {shown}; expected a list"
    if kind.startswith("int_") or kind.startswith("float_") or kind.startswith("bool_") or kind.startswith("string_"):
        msg = error["msg"]
        return f"got {shown}; {msg[0].lower() + msg[1:]}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal", "too_long"):
        msg = error["msg"]
        return f"got {shown}; {msg[0].lower() + msg[1:]}"
    msg = error["msg"]
    return f"{msg[0].lower() + msg[1:]} (got {shown})"


def _problems(e: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    for error in e.errors(include_url=False):
        loc: Loc = tuple(error["loc"])
        cause = error.get("ctx", {}).get("error") if error["type"] == "value_error" else None
        if isinstance(cause, Issues):
            problems.extend(Problem(loc + p.loc, p.message, p.key) for p in cause.problems)
        else:
            problems.append(Problem(loc, _describe(dict(error)), key=error["type"] == "extra_forbidden"))
    return problems


#: the most problems a message lists; a spec with thousands has one mistake repeated
MAX_SHOWN = 50


def _locate(path: Path, problems: list[Problem], data: Any, node: yaml.Node, limit: int | None = None) -> list[str]:
    """Each problem as `file:line:col: path\n  message`, in the order of the file (the first `limit`)."""
    positions = _Positions()  # only on the error path: walking every node costs ~0.3 s per 1,000 models
    positions.walk(node)
    located = [(positions.find(p.loc, key=p.key), p) for p in problems]
    # in the order of the file, so that a reader can work through them top to bottom
    located.sort(key=lambda item: (item[0].line, item[0].column) if item[0] else (0, 0))
    lines = []
    for mark, p in located[:limit]:
        where = f"{path}:{mark.line}:{mark.column}" if mark else str(path)
        lines.append(f"{where}: {format_path(p.loc, data)}\n  {p.message}")
    return lines


def _render(path: Path, problems: list[Problem], data: Any, node: yaml.Node) -> str:
    lines = _locate(path, problems, data, node, MAX_SHOWN)
    if len(problems) > MAX_SHOWN:
        lines.append(f"... and {len(problems) - MAX_SHOWN:,} more (fix these first)")
    head = f"{path}: {len(problems):,} problem{'s' if len(problems) != 1 else ''} in the spec"
    return head + "\n" + "\n".join(lines)


def _rules_despite_errors(e: ValidationError, data: dict[str, Any]) -> list[Problem]:
    """The rules of each model that has invalid fields, run on the rest of it: pydantic skips a model's
    own validators when any of its fields is invalid, and `check` should report every problem at once.
    Each such model is validated again without its invalid fields, skipping the rules that read them."""
    models = data.get("models")
    if not isinstance(models, list):
        return []
    bad: dict[int, set[str]] = {}
    for error in e.errors(include_url=False):
        loc = tuple(error["loc"])
        if len(loc) >= 3 and loc[0] == "models" and isinstance(loc[1], int) and isinstance(loc[2], str):
            bad.setdefault(loc[1], set()).add(loc[2])
    found: list[Problem] = []
    for i, keys in sorted(bad.items()):
        raw = models[i] if 0 <= i < len(models) else None
        if not isinstance(raw, dict) or keys & {"name", "target"}:
            continue
        try:
            ModelSpec.model_validate({k: v for k, v in raw.items() if k not in keys}, context={"skip": frozenset(keys)})
        except ValidationError as again:
            found += [
                Problem(("models", i, *p.loc), p.message, p.key)
                for p in _problems(again)
                if not (p.loc and p.loc[0] in keys)
            ]
    return found


def _raw_checks(data: dict[str, Any], base: Path) -> list[Problem]:
    """Files the spec names (spec/files.py) and unique model names.

    Works on the raw document, so that these are reported together with the spec's other problems;
    values of the wrong type are left to the schema's own messages.
    """
    problems: list[Problem] = []
    first: dict[str, int] = {}
    models = data.get("models")
    for i, m in enumerate(models if isinstance(models, list) else []):
        name = m.get("name") if isinstance(m, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:  # also Spec's own rule, which pydantic skips while any model has a field error
            problems.append(Problem(("models", i, "name"), duplicate_name_message(name, first[name])))
        else:
            first[name] = i
    return problems + _nul_problems(data) + file_problems(data, base)


def _nul_problems(value: Any, loc: Loc = ()) -> list[Problem]:
    """Every string (key or value) holding a NUL character: Triton does not load a config.pbtxt whose
    strings hold one (seen on 2.51: the load request never answers), and no path or name has one."""
    found: list[Problem] = []
    if isinstance(value, str) and "\x00" in value:
        found.append(Problem(loc, "contains a NUL character (U+0000), which Triton cannot load in a config; remove it"))
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and "\x00" in k:
                found.append(Problem((*loc, k), "the key contains a NUL character (U+0000); remove it", key=True))
            found += _nul_problems(v, (*loc, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _nul_problems(v, (*loc, i))
    return found


def load(path: Path) -> Spec:
    # Parsing and validating allocate many small objects and no cycles worth collecting: the cyclic GC's
    # full passes would make a 1,000-model spec cost more per model than a 100-model one.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _load(path)
    finally:
        if paused:
            gc.enable()


def _load(path: Path) -> Spec:
    data, node = _read_yaml(path)
    # top-level keys that start with `x-` are the user's own (as in docker compose): a place for the
    # anchors that merge keys (`<<: *defaults`) share between models
    data = {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}
    problems = _raw_checks(data, path.resolve().parent)
    try:
        spec = Spec.model_validate(data)
    except ValidationError as e:
        found = _problems(e)
        known = {(p.loc, p.message) for p in found}
        found += [p for p in _rules_despite_errors(e, data) if (p.loc, p.message) not in known]
        seen = {p.loc for p in found}
        found += [p for p in problems if p.loc not in seen]
        raise SpecError(_render(path, found, data, node)) from None
    if problems:
        raise SpecError(_render(path, problems, data, node))
    spec._path = path.resolve()
    advice = spec_warnings(spec)
    if advice:
        spec._warnings = _locate(path, advice, data, node)
    return spec


def load_spec(path: str | Path) -> Spec:
    """Read, parse and validate a spec file. Raises SpecError listing every problem with file:line:col."""
    return load(Path(path))
