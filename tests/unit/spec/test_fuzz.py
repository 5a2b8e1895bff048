"""Fuzzing `check` and `render` over spec text: mutated valid specs and random YAML.

Whatever the text, the tool must
- exit 0 or 1 (never 3, never a hang: each run is under a deadline),
- print no traceback, no "internal error" and no "bug in repo-builder" (a spec that passes validation must
  render a config Triton accepts),
- write nothing when it exits 1 (the output folder does not exist afterwards, the spec's folder is unchanged),
- stay within a few hundred MB (the process's peak RSS may not grow by more than MAX_RSS_GROWTH).

Seeds: every spec of tests/golden/configs (with the files beside it), tests/golden/spec_errors and examples/.
Inputs that once failed are kept as files in fuzz_corpus/ and replayed by test_corpus on every run; add a
new finding there (as <what>.yaml) when you fix it.

Bounded for CI: FUZZ_EXAMPLES examples per strategy (env REPO_BUILDER_FUZZ_EXAMPLES raises it for a longer
local run), no hypothesis database, a printed reproduction blob on failure.
"""

from __future__ import annotations

import copy
import os
import resource
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repo_builder.errors import SpecError
from repo_builder.spec.reader import parse_yaml
from tests.unit.cli_runner import run_cli
from tests.unit.spec.test_reader import deadline

ROOT = Path(__file__).resolve().parents[3]
CORPUS = Path(__file__).resolve().parent / "fuzz_corpus"
FUZZ_EXAMPLES = int(os.environ.get("REPO_BUILDER_FUZZ_EXAMPLES", "100"))
#: how much the process's peak RSS may grow over the whole fuzz run
MAX_RSS_GROWTH = 300 << 20
#: one check or render of one input
SECONDS_PER_RUN = 30


def _seeds() -> dict[str, Path]:
    """name -> folder holding spec.yaml (or models.yaml) and the files it names."""
    seeds = {f"configs/{p.parent.name}": p.parent for p in sorted((ROOT / "tests/golden/configs").glob("*/spec.yaml"))}
    seeds.update(
        {
            f"spec_errors/{p.parent.name}": p.parent
            for p in sorted((ROOT / "tests/golden/spec_errors").glob("*/spec.yaml"))
        }
    )
    seeds["examples"] = ROOT / "examples"
    return seeds


SEEDS = _seeds()


def _spec_text(folder: Path) -> str:
    name = "models.yaml" if (folder / "models.yaml").is_file() else "spec.yaml"
    return (folder / name).read_text(encoding="utf-8")


SEED_TEXT = {name: _spec_text(folder) for name, folder in SEEDS.items()}
SEED_DATA = {}
for _name, _text in SEED_TEXT.items():
    try:
        _data = parse_yaml(_text, _name)[0]
    except SpecError:  # the YAML refusals stay text seeds only
        continue
    if isinstance(_data, dict):
        SEED_DATA[_name] = _data

#: fragments that mean something to YAML or to the spec
FRAGMENTS = [
    *"[]{}:-,?&*!|>'\"#%@`~\n\t ",
    "&a ",
    "*a",
    "<<: ",
    "<<: *a",
    "!!int ",
    "!!bool ",
    "!!float ",
    "!!binary ",
    "!!timestamp ",
    "!!set ",
    "!!omap ",
    "!!python/object:os.system ",
    "? ",
    ": ",
    "- ",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "null",
    "~",
    "true",
    "-1",
    "0",
    "9" * 30,
    "9" * 5000,
    "1e400",
    ".nan",
    ".inf",
    "\u2028",
    "\x85",
    "\ufeff",
    "\U0001f600",
    "\\u2028",
    "../",
    "/dev/zero",
    "/etc/passwd",
    "labels: ",
    "file: ",
    "allow_outside_files: true\n",
    "x-a: &a {max_batch_size: 4}\n",
    "max_batch_size: ",
    "dims: [",
    "2147483648",
    "9223372036854775808",
    "18446744073709551616",
    "[" * 70,
    "{a: " * 10,
]

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0, -1, 1, 2**31, 2**63, 2**64])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["FP32", "onnx", "python", "savedmodel", "ensemble", "KIND_GPU", "labels.txt", "model.py:build"])
)
VALUES = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8,
)


@st.composite
def text_mutations(draw: st.DrawFn) -> tuple[str, str]:
    """A seed spec with 1-4 edits of its text: deletions, insertions, duplications, line swaps."""
    name = draw(st.sampled_from(sorted(SEED_TEXT)))
    text = SEED_TEXT[name]
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["delete", "insert", "duplicate", "swap", "fragment"]))
        if op == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 40)) :]
        elif op == "insert":
            text = text[:at] + draw(st.text(max_size=10)) + text[at:]
        elif op == "fragment":
            text = text[:at] + draw(st.sampled_from(FRAGMENTS)) + text[at:]
        elif op == "duplicate":
            end = min(len(text), at + draw(st.integers(1, 200)))
            text = text[:end] + text[at:end] + text[end:]
        else:
            lines = text.split("\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
    return name, text


def _paths(data: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _paths(v, (*at, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _paths(v, (*at, i))


@st.composite
def value_mutations(draw: st.DrawFn) -> tuple[str, str]:
    """A seed spec with 1-3 values replaced, deleted or added, dumped back to YAML."""
    name = draw(st.sampled_from(sorted(SEED_DATA)))
    data = copy.deepcopy(SEED_DATA[name])
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(data))))
        if not path:
            continue
        holder = data
        for step in path[:-1]:
            holder = holder[step]
        op = draw(st.sampled_from(["replace", "delete", "add"]))
        if op == "delete":
            del holder[path[-1]]
        elif op == "add" and isinstance(holder, dict):
            holder[draw(st.text(max_size=10))] = draw(VALUES)
        else:
            holder[path[-1]] = draw(VALUES)
    return name, yaml.safe_dump(data, sort_keys=False, allow_unicode=draw(st.booleans()))


@st.composite
def random_yaml(draw: st.DrawFn) -> tuple[str, str]:
    """Text built from YAML's own punctuation and the spec's words, or any YAML value dumped."""
    name = draw(st.sampled_from(sorted(SEED_TEXT)))
    if draw(st.booleans()):
        return name, "".join(draw(st.lists(st.sampled_from([*FRAGMENTS, "models", "name", "a"]), max_size=40)))
    return name, yaml.safe_dump(draw(VALUES), allow_unicode=True)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of every seed's folder: the fuzzed spec is written there, so the files it names are found."""
    root = tmp_path_factory.mktemp("fuzz")
    for name, folder in SEEDS.items():
        shutil.copytree(folder, root / name, ignore=shutil.ignore_patterns("expected", "expected.txt"))
        if not (root / name / "model.py").exists():  # spec_errors cases name a placeholder model.py
            (root / name / "model.py").write_text('"""Placeholder model source."""\n')
    return root


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


@pytest.fixture(scope="module")
def rss_before() -> int:
    """The process's peak RSS before the first fuzzed input (other modules' tests may have raised it)."""
    return _peak_rss()


def run_both(capsys: pytest.CaptureFixture[str], folder: Path, text: str, rss_before: int) -> None:
    """check and render `text` as a spec in `folder`; assert the promises of the module docstring."""
    spec = folder / "fuzz_spec.yaml"
    out = folder / "fuzz_out"
    spec.write_text(text, encoding="utf-8", errors="surrogatepass")
    before = sorted(os.listdir(folder))
    try:
        for args in (("check", spec), ("render", spec, "-o", out)):
            started = time.monotonic()
            with deadline(SECONDS_PER_RUN):
                result = run_cli(capsys, *args)
            shown = f"{args[0]} of:\n{text[:2000]!r}\nstderr:\n{result.stderr[:3000]}"
            assert result.code in (0, 1), shown
            assert "Traceback" not in result.stderr + result.stdout, shown
            assert "internal error" not in result.stderr, shown
            assert "bug in repo-builder" not in result.stderr, shown
            assert time.monotonic() - started < SECONDS_PER_RUN, shown
            if result.code == 1:
                assert result.stderr.startswith("error: "), shown
                assert not out.exists(), f"{shown}\n{args[0]} exited 1 but wrote {out}"
            assert sorted(os.listdir(folder)) == sorted({*before, *(["fuzz_out"] if out.exists() else [])}), shown
        grown = _peak_rss() - rss_before
        assert grown < MAX_RSS_GROWTH, f"peak RSS grew by {grown >> 20} MiB; {text[:2000]!r}"
    finally:
        spec.unlink()
        shutil.rmtree(out, ignore_errors=True)


_FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,  # our own per-run deadline; hypothesis' would be flaky on a loaded CI machine
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@_FUZZ
@given(case=text_mutations())
def test_text_mutations(
    case: tuple[str, str], workspace: Path, capsys: pytest.CaptureFixture[str], rss_before: int
) -> None:
    name, text = case
    run_both(capsys, workspace / name, text, rss_before)


@_FUZZ
@given(case=value_mutations())
def test_value_mutations(
    case: tuple[str, str], workspace: Path, capsys: pytest.CaptureFixture[str], rss_before: int
) -> None:
    name, text = case
    run_both(capsys, workspace / name, text, rss_before)


@_FUZZ
@given(case=random_yaml())
def test_random_yaml(
    case: tuple[str, str], workspace: Path, capsys: pytest.CaptureFixture[str], rss_before: int
) -> None:
    name, text = case
    run_both(capsys, workspace / name, text, rss_before)


CORPUS_FILES = sorted(CORPUS.glob("*.yaml"))


@pytest.mark.parametrize("path", CORPUS_FILES, ids=[p.stem for p in CORPUS_FILES])
def test_corpus(path: Path, workspace: Path, capsys: pytest.CaptureFixture[str], rss_before: int) -> None:
    """Inputs the fuzzer once broke the tool with. The first line `# seed: NAME` says which seed's folder
    (and files) the spec is run in; default configs/all_platforms."""
    text = path.read_text(encoding="utf-8")
    first = text.split("\n", 1)[0]
    seed = first.removeprefix("# seed: ").strip() if first.startswith("# seed: ") else "configs/all_platforms"
    run_both(capsys, workspace / seed, text, rss_before)


def test_the_corpus_is_kept() -> None:
    assert len(CORPUS_FILES) >= 1
