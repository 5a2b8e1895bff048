"""Valid-looking values that once ended as "a bug in repo-builder": odd unicode in the strings that go into
config.pbtxt is written as given; numbers wider than Triton's config fields are located refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from repo_builder.spec.models import INT32_MAX, INT64_MAX, SHELL_SPECIAL
from tests.unit.cli_runner import run_cli

SPEC = """\
models:
  - name: base
    source: {{python: model.py:build}}
    target: onnx
    max_batch_size: {mbs}
    inputs: [{{name: {input}, dtype: FP32, dims: [{dim}]}}]
    outputs: [{{name: y, dtype: FP32, dims: [2]}}]
    parameters: {{{key}: {value}}}
    instance_groups: [{{name: {group}, kind: cpu}}]
"""

ODD = [
    "\u2028",  # LINE SEPARATOR: str.splitlines() splits on it
    "\u2029",  # PARAGRAPH SEPARATOR
    "\x85",  # NEXT LINE
    "\x0b",  # vertical tab
    "\x0c",  # form feed
    "\x1c",  # file separator
    "\x1b[31m",  # an escape sequence
    "\u202e",  # RIGHT-TO-LEFT OVERRIDE
    "\ufeff",  # a BOM inside a value
    "\U0001f600",  # outside the BMP
    '"\\',  # quote and backslash
    "\r\n\t",
]


def _yaml(text: str) -> str:
    """A YAML double-quoted scalar: every character outside printable ASCII escaped (\\uXXXX, \\UXXXXXXXX)."""

    def escape(c: str) -> str:
        if c in '"\\':
            return "\\" + c
        if " " <= c <= "~":
            return c
        return f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"

    return '"' + "".join(escape(c) for c in text) + '"'


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text('"""Placeholder model source."""\n')
    return tmp_path


@pytest.mark.parametrize("odd", ODD, ids=[f"U+{ord(c[0]):04X}" for c in ODD])
def test_odd_unicode_reaches_the_config_unchanged(odd: str, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # quotes and control characters in group names: the next test
    group = "g" if any(c in SHELL_SPECIAL or ord(c) <= 0x20 for c in odd) else odd
    (folder / "spec.yaml").write_text(
        SPEC.format(
            mbs=8, input=_yaml(f"in{odd}put"), dim=4, key=_yaml(f"k{odd}"), value=_yaml(f"a{odd}b"), group=_yaml(group)
        )
    )
    check = run_cli(capsys, "check", "spec.yaml")
    assert (check.code, check.stderr) == (0, "")
    result = run_cli(capsys, "render", "spec.yaml", "-o", "out")
    assert (result.code, result.stderr) == (0, "")
    config = text_format.Parse(
        (folder / "out" / "base" / "config.pbtxt").read_text(encoding="utf-8"), model_config_pb2.ModelConfig()
    )
    assert config.input[0].name == f"in{odd}put"
    assert config.parameters[f"k{odd}"].string_value == f"a{odd}b"
    assert config.instance_group[0].name == group


@pytest.mark.parametrize(
    "name",
    ['a"b', "a\\b", "a\r\nb", "resnet_? gpu0", "a b", "a;b", "a`b", "a|b", "a&b", "a(b", "a'b", "a>b", "a$b", "a{b,c}"],
)
def test_an_instance_group_name_the_python_backend_cannot_start_is_refused(
    name: str, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Triton 2.51's python backend starts an instance's stub through a shell command line holding the group's
    name. Measured through the core oracle: a space fails the stub (`No module named 'model'`); a quote,
    backslash, line break, ; ` | & ( left the load unanswered; > made the shell write a file."""
    (folder / "spec.yaml").write_text(SPEC.format(mbs=8, input="x", dim=4, key="k", value="v", group=_yaml(name)))
    check = run_cli(capsys, "check", "spec.yaml")
    assert check.code == 1
    assert "instance_groups[0] -> name" in check.stderr
    assert "starts each instance through a shell command line" in check.stderr
    assert "Traceback" not in check.stderr


def test_a_nul_character_is_refused_where_it_stands(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Triton 2.51 never answers the load of a config whose strings hold a NUL (found by the core oracle)."""
    (folder / "spec.yaml").write_text(
        SPEC.format(mbs=8, input="x", dim=4, key="k", value=_yaml("a\x00b"), group=_yaml("g\x00"))
    )
    check = run_cli(capsys, "check", "spec.yaml")
    assert check.code == 1
    assert "spec.yaml:8:21: models[0] (base) -> parameters -> k" in check.stderr
    assert "spec.yaml:9:" in check.stderr and "instance_groups[0] -> name" in check.stderr
    result = run_cli(capsys, "render", "spec.yaml", "-o", "out")
    assert result.code == 1 and not (folder / "out").exists()


@pytest.mark.parametrize(
    ("mbs", "dim", "code"),
    [
        (INT32_MAX, INT64_MAX, 0),  # the widest values Triton's config holds
        (INT32_MAX + 1, 4, 1),
        (8, INT64_MAX + 1, 1),
        (8, 10**40, 1),
    ],
)
def test_numbers_fit_the_config_or_are_located(
    mbs: int, dim: int, code: int, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "spec.yaml").write_text(SPEC.format(mbs=mbs, input="x", dim=dim, key="k", value="v", group="g"))
    for command in ("check", "render"):
        result = run_cli(capsys, command, "spec.yaml", *(["-o", "out"] if command == "render" else []))
        assert result.code == code, result.stderr
        assert "bug in repo-builder" not in result.stderr
    if code:
        assert result.stderr.startswith("error: spec.yaml: 1 problem in the spec\nspec.yaml:")
        assert not (folder / "out").exists()
    else:
        assert f"dims: [ {dim} ]" in (folder / "out" / "base" / "config.pbtxt").read_text()
