"""The bounded YAML reader: whatever the file holds, reading it ends quickly and small, or with a located SpecError.

- The spec must be a regular file of at most MAX_SPEC_BYTES; its kind is checked before it is opened, so a
  FIFO cannot hang the tool, nor /dev/zero fill its memory.
- The YAML's node tree is checked before any Python value is built from it: no alias may refer to itself,
  nothing may nest deeper than MAX_DEPTH, and the whole document, aliases expanded, may hold at most MAX_NODES
  values and MAX_CHARS characters (the "billion laughs" guard: pydantic, the renderer and the error report all
  walk the expanded tree). Keys must be plain scalars, and none may be given twice in one mapping.
- A scalar that cannot be built (`!!int abc`, `!!bool maybe`, an integer of 5,000 digits) is reported at its
  line and column instead of escaping as a Python exception.

YAML merge keys (`<<: *defaults`) work as in PyYAML: the mapping's own keys win over the merged ones.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import yaml

from repo_builder.errors import SpecError

#: the largest spec file read (1 MiB); a spec of 1,000 models is ~330 KiB
MAX_SPEC_BYTES = 1 << 20
#: the most values a document may hold once its aliases are expanded; 1,000 models are ~42,000
MAX_NODES = 150_000
#: the most characters the document's scalars may hold once its aliases are expanded: an alias to a long
#: string, repeated, would otherwise be rendered into config after config
MAX_CHARS = 16 << 20
#: the deepest nesting of a document; a spec needs about 8 levels
MAX_DEPTH = 64

_MERGE = "tag:yaml.org,2002:merge"
_EXPECTED = {
    "int": "an integer such as 42",
    "float": "a number such as 0.5",
    "bool": "true or false",
    "null": "null or ~",
    "timestamp": "a date such as 2024-01-31",
    "binary": "base64 text",
}


def shorten(text: str, limit: int = 100) -> str:
    """`text` cut to `limit` characters (with `...`), so that a message never quotes a megabyte of input."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def os_reason(e: OSError | ValueError) -> str:
    """Why a path could not be used, in words (ENAMETOOLONG, ELOOP, EACCES, a NUL in the name, ...)."""
    if isinstance(e, ValueError):
        return "the path contains a NUL character"
    return e.strerror or str(e)


def file_kind(mode: int) -> str:
    """What a non-regular file is, for messages: `a folder`, `a FIFO (named pipe)`, ..."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_spec_text(path: Path) -> str:
    """The spec file's text: a regular UTF-8 file of at most MAX_SPEC_BYTES, else a SpecError."""
    shown = str(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise SpecError(f"{shown}: no such file; expected a YAML spec (see `repo-builder schema`)") from None
    except (OSError, ValueError) as e:
        raise SpecError(f"{shown}: cannot be read: {os_reason(e)}; expected a YAML spec file") from None
    _check_kind_and_size(shown, info)
    try:
        # O_NONBLOCK: a FIFO put in the file's place after the stat above cannot block the open
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise SpecError(f"{shown}: cannot be read: {os_reason(e)}") from None
    try:
        _check_kind_and_size(shown, os.fstat(fd))
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_SPEC_BYTES:
            chunk = os.read(fd, MAX_SPEC_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:
        raise SpecError(f"{shown}: cannot be read: {os_reason(e)}") from None
    finally:
        os.close(fd)
    if size > MAX_SPEC_BYTES:  # it grew since the stat
        raise SpecError(_too_large(shown, size, more=True))
    raw = b"".join(chunks)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise SpecError(
            f"{shown}:{line}:{column}: is not UTF-8 text (byte 0x{raw[e.start]:02x}); save the spec as UTF-8"
        ) from None


def _check_kind_and_size(shown: str, info: os.stat_result) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise SpecError(f"{shown}: is a folder; expected a YAML spec file")
    if not stat.S_ISREG(info.st_mode):
        raise SpecError(f"{shown}: is {file_kind(info.st_mode)}, not a regular file; expected a YAML spec file")
    if info.st_size > MAX_SPEC_BYTES:
        raise SpecError(_too_large(shown, info.st_size))


def _too_large(shown: str, size: int, more: bool = False) -> str:
    return (
        f"{shown}: the file is {'more than ' if more else ''}{size:,} bytes; a spec may be at most "
        f"{MAX_SPEC_BYTES:,} bytes (1 MiB, about 3,000 models): split it into several specs"
    )


# --------------------------------------------------------------------------------------------- YAML

_LoaderBase: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: 10x faster


class _Loader(_LoaderBase):
    """SafeLoader whose scalars that cannot be built are located errors, not Python exceptions."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except Exception as e:  # PyYAML's constructors fail as they may: `!!int ` is an IndexError
            raise yaml.constructor.ConstructorError(None, None, _bad_scalar(node, e), node.start_mark) from None


def _bad_scalar(node: yaml.Node, e: Exception) -> str:
    tag = str(node.tag)
    short = tag.rsplit(":", 1)[-1] if tag.startswith("tag:yaml.org,2002:") else tag
    value = node.value if isinstance(node, yaml.ScalarNode) else None
    if short == "int" and isinstance(value, str) and "digits" in str(e):
        digits = sum(c.isdigit() for c in value)
        return (
            f"an integer of {digits:,} digits; a number in a spec has at most {sys.get_int_max_str_digits():,} "
            "digits (quote it if it is text)"
        )
    shown = shorten(repr(value)) if value is not None else f"this {type(node).__name__}"
    expected = _EXPECTED.get(short)
    if expected:
        return f"{shown} is not a valid !!{short}; expected {expected}"
    return f"{shown} cannot be read as {tag}: {shorten(str(e))}"


def _located(shown: str, mark: Any, what: str) -> SpecError:
    where = f"{shown}:{mark.line + 1}:{mark.column + 1}" if mark is not None else shown
    return SpecError(f"{where}: invalid YAML: {what}")


#: texts longer than this are first counted event by event, so that a dense megabyte (`[1,1,1,...]`, half a
#: million values) is refused before its node tree is built (~300 MB); shorter ones cannot hold that many
_COUNT_EVENTS_ABOVE = 256 << 10
_VALUE_EVENTS = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent, yaml.AliasEvent)


def _count_values(text: str, shown: str) -> None:
    """Refuse a text with more than MAX_NODES values, in constant memory (events, no tree)."""
    loader = _Loader(text)
    count = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, _VALUE_EVENTS):
                count += 1
                if count > MAX_NODES:
                    raise _located(shown, event.start_mark, _too_many(aliased=False))
    except yaml.YAMLError:
        return  # the parse proper reports it, located
    finally:
        loader.dispose()


def _too_many(aliased: bool) -> str:
    if not aliased:
        return (
            f"the document holds more than {MAX_NODES:,} values (a spec of 1,000 models holds about 42,000); "
            "split it into several specs"
        )
    return (
        f"this value expands to more than {MAX_NODES:,} values once its aliases (*name) are followed "
        "(a spec of 1,000 models holds about 42,000); is an alias repeated by mistake?"
    )


def parse_yaml(text: str, shown: str) -> tuple[Any, yaml.Node | None]:
    """The document's data and its node tree (for positions), or a located SpecError."""
    if len(text) > _COUNT_EVENTS_ABOVE:
        _count_values(text, shown)
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
            if node is None:
                return None, None
            _check_tree(node, loader, shown)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        what = e.problem or str(e)
        if e.context:
            what = f"{what} ({e.context})"
        raise _located(shown, e.problem_mark or e.context_mark, what) from None
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        column = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        raise SpecError(
            f"{shown}:{line}:{column}: invalid YAML: unacceptable character #x{e.character:04x}: {e.reason}"
        ) from None
    except yaml.YAMLError as e:
        raise SpecError(f"{shown}: invalid YAML: {shorten(str(e), 300)}") from None
    except RecursionError:  # the pure-Python parser (no libyaml) on deep nesting
        raise SpecError(f"{shown}: invalid YAML: nested deeper than {MAX_DEPTH} levels") from None
    return data, node


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_tree(root: yaml.Node, loader: _Loader, shown: str) -> None:
    """Refuse recursive aliases, nesting deeper than MAX_DEPTH, more than MAX_NODES values once aliases are
    expanded, keys that are not scalars, and keys given twice: one walk, each distinct node entered once."""
    size: dict[int, int] = {}  # id(node) -> values in its expanded subtree
    chars: dict[int, int] = {}  # id(node) -> characters of the scalars in its expanded subtree
    height: dict[int, int] = {}  # id(node) -> levels of its subtree
    on_path: set[int] = set()  # the nodes being walked: one of them met again is an alias to itself
    aliased = False  # a node was met twice: the document uses aliases
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, finished = stack.pop()
        key = id(node)
        if finished:
            on_path.discard(key)
            children = _children(node)
            size[key] = 1 + sum(size[id(c)] for c in children)
            chars[key] = len(node.value) if isinstance(node, yaml.ScalarNode) else sum(chars[id(c)] for c in children)
            height[key] = 1 + max((height[id(c)] for c in children), default=0)
            if size[key] > MAX_NODES:
                raise _located(shown, node.start_mark, _too_many(aliased))
            if chars[key] > MAX_CHARS:
                raise _located(
                    shown,
                    node.start_mark,
                    f"this value expands to more than {MAX_CHARS:,} characters once its aliases (*name) are "
                    "followed; is an alias to a long text repeated by mistake?",
                )
            continue
        if key in size:  # met before through an alias: already counted, but maybe deeper now
            aliased = True
            if depth + height[key] - 1 > MAX_DEPTH:
                raise _located(shown, node.start_mark, _too_deep())
            continue
        if depth > MAX_DEPTH:
            raise _located(shown, node.start_mark, _too_deep())
        if isinstance(node, yaml.MappingNode):
            _check_keys(node, loader)
        on_path.add(key)
        stack.append((node, depth, True))
        for child in _children(node):
            if id(child) in on_path:
                raise _located(
                    shown,
                    child.start_mark,
                    "an alias refers to the value that contains it (a recursive alias); a spec must be a tree",
                )
            stack.append((child, depth + 1, False))


def _too_deep() -> str:
    return f"nested deeper than {MAX_DEPTH} levels (a spec needs about 8)"


def _check_keys(node: yaml.MappingNode, loader: _Loader) -> None:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            what = "a list" if isinstance(key_node, yaml.SequenceNode) else "a mapping"
            raise yaml.constructor.ConstructorError(
                None, None, f"a key is {what}; keys are plain names such as `models`", key_node.start_mark
            )
        if key_node.tag == _MERGE:  # `<<: *defaults`: its keys may be given again, the mapping's own win
            continue
        key = loader.construct_object(key_node)
        try:
            first = seen.get(key)
        except TypeError:  # a tag that builds an unhashable value
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {shorten(repr(key))} cannot be a key", key_node.start_mark
            ) from None
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {shorten(repr(key))} is given twice in one mapping (first on line {first.start_mark.line + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node
