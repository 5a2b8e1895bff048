"""The bounded reader (spec/reader.py): special files, sizes, encodings and YAML that would hang or exhaust the tool.

The YAML refusals' messages are golden cases (tests/golden/spec_errors/yaml_*); these tests cover what a
golden case cannot hold (a FIFO, a device, a sparse file, memory and time) and what must be accepted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from repo_builder.errors import SpecError
from repo_builder.spec import load_spec
from repo_builder.spec.reader import MAX_CHARS, MAX_DEPTH, MAX_NODES, MAX_SPEC_BYTES
from tests.unit.cli_runner import Result, run_cli

GOLDEN = Path(__file__).resolve().parents[2] / "golden"

MODEL = """\
  - name: {name}
    source: {{python: model.py:build}}
    target: onnx
    inputs: [{{name: x, dtype: FP32, dims: [4]}}]
    outputs: [{{name: y, dtype: FP32, dims: [2]}}]
"""


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail the test instead of hanging the suite when the block takes longer than `seconds`."""

    def expired(signum: int, frame: object) -> None:
        raise AssertionError(f"still running after {seconds} s: the tool hangs on this input")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _check(capsys: pytest.CaptureFixture[str], spec: str | Path) -> Result:
    with deadline(20):
        result = run_cli(capsys, "check", spec)
    assert "Traceback" not in result.stderr
    return result


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text('"""Placeholder model source."""\n')
    return tmp_path


# --------------------------------------------------------------------------------------------- the file


def test_a_fifo_is_refused_without_opening_it(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(folder / "spec.yaml")  # no writer: opening it for reading would block forever
    result = _check(capsys, "spec.yaml")
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == "error: spec.yaml: is a FIFO (named pipe), not a regular file; expected a YAML spec file\n"


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_a_device_is_refused(device: str, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = _check(capsys, device)
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == f"error: {device}: is a character device, not a regular file; expected a YAML spec file\n"


def test_a_symlink_to_a_device_is_refused(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (folder / "spec.yaml").symlink_to("/dev/zero")
    result = _check(capsys, "spec.yaml")
    assert result.stderr == "error: spec.yaml: is a character device, not a regular file; expected a YAML spec file\n"


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = folder / "spec.yaml"
    with spec.open("wb") as f:  # sparse: 2 GiB on paper, nothing on disk
        f.truncate(2 << 30)
    tracemalloc.start()
    try:
        result = _check(capsys, "spec.yaml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.code == 1
    assert result.stderr == (
        "error: spec.yaml: the file is 2,147,483,648 bytes; a spec may be at most 1,048,576 bytes "
        "(1 MiB, about 3,000 models): split it into several specs\n"
    )
    assert peak < 20 << 20


def test_a_file_at_the_size_limit_is_read(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "models:\n" + MODEL.format(name="base")
    text += "#" * (MAX_SPEC_BYTES - len(text.encode()) - 1) + "\n"
    (folder / "spec.yaml").write_text(text)
    assert (folder / "spec.yaml").stat().st_size == MAX_SPEC_BYTES
    result = _check(capsys, "spec.yaml")
    assert (result.code, result.stderr) == (0, "")


def test_not_utf8_is_located(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (folder / "spec.yaml").write_bytes(b"models:\n  - name: caf\xe9\n")
    result = _check(capsys, "spec.yaml")
    assert result.stderr == "error: spec.yaml:2:14: is not UTF-8 text (byte 0xe9); save the spec as UTF-8\n"


def test_a_control_character_is_located(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (folder / "spec.yaml").write_text("models:\n  - name: a\x00b\n")
    result = _check(capsys, "spec.yaml")
    assert result.stderr == (
        "error: spec.yaml:2:12: invalid YAML: unacceptable character #x0000: control characters are not allowed\n"
    )


def test_a_name_too_long_for_the_file_system(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "s" * 300 + ".yaml"
    result = _check(capsys, name)
    assert (result.code, result.stderr) == (
        1,
        f"error: {name}: cannot be read: File name too long; expected a YAML spec file\n",
    )


def test_an_unreadable_file(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads a file without read permission")
    (folder / "spec.yaml").write_text("models: []\n")
    (folder / "spec.yaml").chmod(0)
    result = _check(capsys, "spec.yaml")
    assert result.stderr == "error: spec.yaml: cannot be read: Permission denied\n"


# --------------------------------------------------------------------------------------------- the YAML


def _bomb(levels: int, width: int = 9) -> str:
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + f"\nmodels: *l{levels - 1}\n"


@pytest.mark.parametrize("levels", [6, 9, 30])
def test_an_alias_bomb_is_refused_before_memory_grows(
    levels: int, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "spec.yaml").write_text(_bomb(levels))
    tracemalloc.start()
    try:
        result = _check(capsys, "spec.yaml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.code == 1
    assert "once its aliases (*name) are followed" in result.stderr
    assert peak < 20 << 20  # the tree is walked, never expanded


def test_a_document_just_under_the_node_limit_is_read(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Aliases that expand to fewer than MAX_NODES values are fine (pydantic then reports the wrong type)."""
    (folder / "spec.yaml").write_text(_bomb(5))  # 9**5 = 59,049 strings + lists
    result = _check(capsys, "spec.yaml")
    assert result.code == 1
    assert "once its aliases" not in result.stderr and "expected a mapping" in result.stderr
    assert 9**5 < MAX_NODES < 9**6


def test_a_thousand_models_stay_well_inside_the_limits() -> None:
    """The limits leave room: a spec of 1,000 models is a third of MAX_SPEC_BYTES and of MAX_NODES."""
    import tempfile

    from benchmarks.render_scale import make_spec  # the benchmark's own generated spec

    with tempfile.TemporaryDirectory() as tmp:
        spec = make_spec(Path(tmp), 1000)
        assert spec.stat().st_size < MAX_SPEC_BYTES / 3
        loaded = load_spec(spec)
    assert len(loaded.models) == 1000


@pytest.mark.parametrize("flow", [True, False], ids=["flow", "block"])
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 5000])
def test_deep_nesting_is_refused(depth: int, flow: bool, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # flow: [[[...]]]; block: compact block sequences, `- - - x`
    text = "models: " + "[" * depth + "]" * depth + "\n" if flow else "models:\n" + "- " * depth + "x\n"
    (folder / "spec.yaml").write_text(text)
    result = _check(capsys, "spec.yaml")
    assert result.code == 1
    assert result.stderr.startswith("error: spec.yaml:") and "invalid YAML" in result.stderr
    assert "nest" in result.stderr  # ours ("nested deeper than 64 levels") or libyaml's ("maximum nesting depth")


def test_merge_keys_share_settings(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (folder / "spec.yaml").write_text(
        """\
x-defaults: &defaults
  source: {python: model.py:build}
  target: onnx
  max_batch_size: 16
  inputs: [{name: x, dtype: FP32, dims: [4]}]
  outputs: [{name: y, dtype: FP32, dims: [2]}]
models:
  - <<: *defaults
    name: a
  - <<: *defaults
    name: b
    max_batch_size: 4
"""
    )
    spec = load_spec("spec.yaml")
    assert [(m.name, m.target, m.max_batch_size) for m in spec.models] == [("a", "onnx", 16), ("b", "onnx", 4)]
    result = run_cli(capsys, "render", "spec.yaml", "-o", "out")
    assert result.code == 0, result.stderr
    assert "max_batch_size: 4\n" in (folder / "out" / "b" / "config.pbtxt").read_text()


def test_merge_of_several_mappings_and_a_key_given_twice(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`<<: [*a, *b]` merges both; a key given twice outside merges is an error."""
    (folder / "spec.yaml").write_text(
        """\
x-onnx: &onnx {target: onnx, source: {python: model.py:build}}
x-io: &io {inputs: [{name: x, dtype: FP32, dims: [4]}], outputs: [{name: y, dtype: FP32, dims: [2]}]}
models:
  - <<: [*onnx, *io]
    name: a
"""
    )
    model = load_spec("spec.yaml").models[0]
    assert (model.target, model.source and model.source.python, len(model.inputs or [])) == (
        "onnx",
        "model.py:build",
        1,
    )
    text = (folder / "spec.yaml").read_text()
    (folder / "spec.yaml").write_text(text + "    name: b\n")
    result = _check(capsys, "spec.yaml")
    assert (
        result.stderr
        == "error: spec.yaml:6:5: invalid YAML: key 'name' is given twice in one mapping (first on line 5)\n"
    )


def test_an_anchor_merged_and_used_whole_is_not_a_duplicate(folder: Path) -> None:
    """A mapping that merges another is still itself when an alias uses it whole."""
    (folder / "spec.yaml").write_text(
        "x-base: &base {target: onnx, max_batch_size: 2}\n"
        "models:\n"
        "  - &first\n"
        "    <<: *base\n"
        "    name: a\n"
        "    source: {python: model.py:build}\n"
        "    max_batch_size: 4\n"
        "    inputs: [{name: x, dtype: FP32, dims: [4]}]\n"
        "    outputs: [{name: y, dtype: FP32, dims: [2]}]\n"
        "  - {<<: *first, name: b}\n"
    )
    spec = load_spec("spec.yaml")
    assert [(m.name, m.max_batch_size) for m in spec.models] == [("a", 4), ("b", 4)]


def test_x_keys_are_the_users_own(folder: Path) -> None:
    (folder / "spec.yaml").write_text("x-notes: {anything: [1, 2]}\nmodels:\n" + MODEL.format(name="a"))
    assert [m.name for m in load_spec("spec.yaml").models] == ["a"]


def test_a_long_value_is_quoted_short(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (folder / "spec.yaml").write_text("models: " + "{a: " * 50 + "1" + "}" * 50 + "\n")
    result = _check(capsys, "spec.yaml")
    assert result.code == 1
    assert max(len(line) for line in result.stderr.splitlines()) < 200


def test_api_raises_spec_error(folder: Path) -> None:
    os.mkfifo(folder / "spec.yaml")
    with deadline(10), pytest.raises(SpecError, match="FIFO"):
        load_spec("spec.yaml")


def test_the_readmes_merge_example_loads(folder: Path) -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Shared settings", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    (folder / "models.py").write_text('"""Placeholder model source."""\n')
    (folder / "spec.yaml").write_text(block)
    spec = load_spec("spec.yaml")
    assert [(m.name, m.target, m.max_batch_size) for m in spec.models] == [("mlp_a", "onnx", 32), ("mlp_b", "onnx", 8)]


def test_an_alias_to_a_long_text_repeated_is_refused(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Few values, but each config.pbtxt would carry the text: the expanded characters are bounded too."""
    lines = ['x-text: &text "' + "a" * 100_000 + '"', "models:"]
    lines += [f"  - {{name: m{i}, parameters: {{k: *text}}}}" for i in range(200)]
    (folder / "spec.yaml").write_text("\n".join(lines) + "\n")
    tracemalloc.start()
    try:
        result = _check(capsys, "spec.yaml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.stderr == (
        f"error: spec.yaml:3:3: invalid YAML: this value expands to more than {MAX_CHARS:,} characters once its "
        "aliases (*name) are followed; is an alias to a long text repeated by mistake?\n"
    )
    assert peak < 20 << 20


def test_thousands_of_problems_are_cut_to_the_first_fifty(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One mistake repeated 20,000 times: the message lists the first 50 in file order and counts the rest."""
    (folder / "spec.yaml").write_text("models: [" + ", ".join(["1"] * 20_000) + "]\n")
    result = _check(capsys, "spec.yaml")
    lines = result.stderr.splitlines()
    assert lines[0] == "error: spec.yaml: 20,000 problems in the spec"
    assert lines[1:3] == ["spec.yaml:1:10: models[0]", "  got int 1; expected a mapping (key: value)"]
    assert lines[-3:] == [
        "spec.yaml:1:157: models[49]",
        "  got int 1; expected a mapping (key: value)",
        "... and 19,950 more (fix these first)",
    ]
    assert len(lines) == 1 + 2 * 50 + 1


def test_a_dense_megabyte_is_counted_before_its_tree_is_built(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Half a million values in 1 MiB: refused by counting events, in little memory."""
    (folder / "spec.yaml").write_text("models: [" + ",".join(["1"] * 500_000) + "]\n")
    tracemalloc.start()
    try:
        result = _check(capsys, "spec.yaml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.stderr == (
        "error: spec.yaml:1:300004: invalid YAML: the document holds more than 150,000 values (a spec of 1,000 "
        "models holds about 42,000); split it into several specs\n"
    )
    assert peak < 20 << 20
