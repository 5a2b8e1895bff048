"""Golden files: every case in tests/golden/configs/<case>/ renders byte for byte to expected/.

Run `pytest tests/unit/render/test_config.py --update-golden` to rewrite expected/ after a deliberate
change, then review the diff.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from repo_builder.spec import load_spec
from repo_builder.triton import rules as triton_rules
from repo_builder.triton.platforms import TARGETS
from tests.unit.cli_runner import run_cli

CASES_DIR = Path(__file__).resolve().parents[2] / "golden" / "configs"
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "spec.yaml").is_file())
META = "repo_builder_manifest.json"  # repo-builder's own top-level file: not part of the golden layout


def _files(root: Path, *, meta: bool = False) -> dict[str, bytes]:
    """Every file under root by relative path (without repo-builder's metadata unless asked)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and (meta or p.relative_to(root).as_posix() != META)
    }


def _render(capsys: pytest.CaptureFixture[str], case: str, out: Path) -> Path:
    result = run_cli(capsys, "render", CASES_DIR / case / "spec.yaml", "-o", out)
    assert result.code == 0, result.stderr
    assert result.stderr == ""
    return out


def _golden_configs() -> list[tuple[str, str]]:
    return [
        (case, p.parent.name) for case in CASES for p in sorted((CASES_DIR / case / "expected").glob("*/config.pbtxt"))
    ]


def test_enough_cases() -> None:
    assert len(CASES) >= 10, CASES


@pytest.mark.parametrize("case", CASES)
def test_render_matches_golden(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], update_golden: bool
) -> None:
    repo = _render(capsys, case, tmp_path / "repo")
    expected_dir = CASES_DIR / case / "expected"
    rendered = _files(repo)
    if update_golden:
        shutil.rmtree(expected_dir, ignore_errors=True)
        for rel, content in rendered.items():
            (expected_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (expected_dir / rel).write_bytes(content)
    expected = _files(expected_dir)
    assert sorted(rendered) == sorted(expected)
    for rel, content in rendered.items():
        # compare as text first for a readable diff, then byte for byte
        assert content.decode("utf-8", "replace") == expected[rel].decode("utf-8", "replace"), rel
        assert content == expected[rel], rel


@pytest.mark.parametrize("case", CASES)
def test_layout_has_numeric_version_folders(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = _render(capsys, case, tmp_path / "repo")
    spec = load_spec(CASES_DIR / case / "spec.yaml")
    models = {p.name for p in repo.iterdir() if p.name != META}
    assert models == {m.name for m in spec.models}
    for m in spec.models:
        versions = sorted(int(p.name) for p in (repo / m.name).iterdir() if p.is_dir() and p.name.isdigit())
        assert versions == sorted(m.versions), m.name
        assert (repo / m.name / "config.pbtxt").is_file()


@pytest.mark.parametrize("case", CASES)
def test_render_twice_is_byte_identical(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = _files(_render(capsys, case, tmp_path / "first"), meta=True)
    second = _files(_render(capsys, case, tmp_path / "second"), meta=True)
    assert first == second
    # rendering again over the previous output (a repository repo-builder wrote) changes nothing either
    again = _files(_render(capsys, case, tmp_path / "first"), meta=True)
    assert again == first


@pytest.mark.parametrize(("case", "model"), _golden_configs(), ids=lambda v: str(v))
def test_golden_config_parses_and_follows_tritons_rules(case: str, model: str) -> None:
    text = (CASES_DIR / case / "expected" / model / "config.pbtxt").read_text()
    config = triton_rules.parse(text, origin=f"{case}/{model}/config.pbtxt")
    assert config.name == model  # Triton: the name equals the folder name
    assert triton_rules.check(config) == []
    assert "max_batch_size:" in text  # written explicitly, even when 0


def test_cases_cover_every_platform_and_feature() -> None:
    """The golden cases together use every target and every ModelConfig feature the spec offers."""
    targets = {m.target for case in CASES for m in load_spec(CASES_DIR / case / "spec.yaml").models}
    assert targets == set(TARGETS)

    texts = [(CASES_DIR / c / "expected" / m / "config.pbtxt").read_text() for c, m in _golden_configs()]
    configs = [triton_rules.parse(text) for text in texts]
    assert {c.platform or c.backend for c in configs} == {
        "tensorflow_savedmodel",
        "onnxruntime_onnx",
        "tensorrt_plan",
        "python",
        "ensemble",
    }
    tensors = [t for c in configs for t in (*c.input, *c.output)]
    accelerated = {
        c.platform
        for c in configs
        for a in c.optimization.execution_accelerators.gpu_execution_accelerator
        if a.name == "tensorrt" and "precision_mode" in a.parameters
    }
    features = {
        "max_batch_size 0": any("max_batch_size: 0\n" in t for t in texts),
        "reshape": any(t.HasField("reshape") for t in tensors),
        "optional input": any(i.optional for c in configs for i in c.input),
        "label file": any(o.label_filename for c in configs for o in c.output),
        "priority levels": any(c.dynamic_batching.priority_levels for c in configs),
        "default queue policy": any(c.dynamic_batching.HasField("default_queue_policy") for c in configs),
        "priority queue policy": any(c.dynamic_batching.priority_queue_policy for c in configs),
        "preferred batch size": any(c.dynamic_batching.preferred_batch_size for c in configs),
        "version_policy latest": any(c.version_policy.HasField("latest") for c in configs),
        "version_policy all": any(c.version_policy.HasField("all") for c in configs),
        "version_policy specific": any(c.version_policy.HasField("specific") for c in configs),
        "model_warmup": any(c.model_warmup for c in configs),
        "warmup data file": any(
            v.HasField("input_data_file") for c in configs for w in c.model_warmup for v in w.inputs.values()
        ),
        "response_cache": any(c.response_cache.enable for c in configs),
        "tensorrt accelerator for onnx and tf": accelerated >= {"onnxruntime_onnx", "tensorflow_savedmodel"},
        "auto mixed precision": any(
            a.name == "auto_mixed_precision"
            for c in configs
            for a in c.optimization.execution_accelerators.gpu_execution_accelerator
        ),
        "cuda graphs": any(c.optimization.cuda.graphs for c in configs),
        "graph specs": any(c.optimization.cuda.graph_spec for c in configs),
        "optimization profiles": any(g.profile for c in configs for g in c.instance_group),
        "gpus": any(g.gpus for c in configs for g in c.instance_group),
        "parameters": any(c.parameters for c in configs),
        "TF_SIGNATURE_DEF": any("TF_SIGNATURE_DEF" in c.parameters for c in configs),
        "cc_model_filenames": any(c.cc_model_filenames for c in configs),
        "ensemble steps": any(c.ensemble_scheduling.step for c in configs),
    }
    assert [name for name, used in features.items() if not used] == []


def test_all_platforms_case_has_every_target() -> None:
    """The issue's "done when": one spec with a model of every target renders a valid repository."""
    spec = load_spec(CASES_DIR / "all_platforms" / "spec.yaml")
    assert sorted(m.target for m in spec.models) == sorted(TARGETS)
