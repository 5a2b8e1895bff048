"""The command line: version, help, usage errors, internal errors, schema, tables off a terminal, staying light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from repo_builder import __version__, cli
from tests.unit.cli_runner import run_cli

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "configs"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, "--version")
    assert (result.code, result.stdout, result.stderr) == (0, f"repo-builder {__version__}\n", "")


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, "--help")
    assert result.code == 0
    for command in ("check", "render", "schema"):
        assert command in result.stdout


COMMANDS = ("check", "render", "build", "inspect", "compose", "up", "down", "logs", "serve", "validate", "schema")


@pytest.mark.parametrize("command", [(), *((c,) for c in COMMANDS)], ids=["repo-builder", *COMMANDS])
def test_help_shows_no_value_after_flags(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    """`--quiet`, `--force`, `--validate`, `-v` and `--help` take no value: no `<bool>` or `<int>` after them."""
    result = run_cli(capsys, *command, "--help")
    assert result.code == 0, result.stderr
    assert "<bool>" not in result.stdout
    flag_lines = [line for line in result.stdout.splitlines() if "--help" in line or "--verbose" in line]
    assert flag_lines and all("<" not in line for line in flag_lines), flag_lines
    if command == ("serve",):  # options that take a value still say which
        assert any("--http-port" in line and "<int>" in line for line in result.stdout.splitlines())


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("render",), id="missing-argument"),
        pytest.param(("render", "spec.yaml", "--no-such-option"), id="unknown-option"),
        pytest.param(("frobnicate",), id="unknown-command"),
        pytest.param(("-v", "check"), id="missing-argument-verbose"),
    ],
)
def test_usage_error_exits_2(args: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, *args)
    assert result.code == 2
    assert result.stdout == ""
    assert "Usage:" in result.stderr or "error" in result.stderr.lower()
    assert "Traceback" not in result.stderr


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("simulated bug")


def test_internal_error_exits_3_without_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("repo_builder.cli.render.load_spec", _boom)
    result = run_cli(capsys, "check", GOLDEN / "all_platforms" / "spec.yaml")
    assert result.code == 3
    assert result.stdout == ""
    assert result.stderr == (
        "internal error: RuntimeError: simulated bug\n(run with -v for the traceback; please report it)\n"
    )


def test_internal_error_shows_traceback_with_verbose(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("repo_builder.cli.render.load_spec", _boom)
    result = run_cli(capsys, "-v", "check", GOLDEN / "all_platforms" / "spec.yaml")
    assert result.code == 3
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert result.stderr.rstrip().endswith("RuntimeError: simulated bug")
    assert cli.state.verbose == 0  # the runner resets it; -v does not leak into other tests


def test_quiet_keeps_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, "-q", "check", tmp_path / "missing.yaml")
    assert result.code == 1
    assert result.stderr.startswith("error: ")


def test_inspect_no_safe_mode_applies_to_keras_files_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, "inspect", tmp_path / "saved_model", "--no-safe-mode")
    assert result.code == 1
    assert (
        result.stderr
        == f"error: {tmp_path / 'saved_model'}: --no-safe-mode applies to a Keras .keras or .h5 file only\n"
    )
    result = run_cli(capsys, "inspect", tmp_path / "missing.keras", "--no-safe-mode")  # checked before TensorFlow
    assert (result.code, result.stderr) == (1, f"error: {tmp_path / 'missing.keras'}: no such file or folder\n")


def test_check_ok(capsys: pytest.CaptureFixture[str]) -> None:
    spec = GOLDEN / "all_platforms" / "spec.yaml"
    result = run_cli(capsys, "check", spec)
    assert (result.code, result.stderr) == (0, "")
    assert result.stdout == f"{spec}: ok, 6 models, 6 configs checked\n"


def test_render_prints_the_written_configs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, "render", GOLDEN / "ensemble_pipeline" / "spec.yaml", "-o", tmp_path / "repo")
    assert (result.code, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        str(tmp_path / "repo" / name / "config.pbtxt") for name in ("preprocess", "classifier", "pipeline")
    ]


def test_render_refuses_a_foreign_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "repo"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    result = run_cli(capsys, "render", GOLDEN / "savedmodel_basic" / "spec.yaml", "-o", out)
    assert result.code == 1
    assert "was not written by repo-builder" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["precious.txt"]


def test_render_does_not_replace_built_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """render writes configs only: over a repository `build` wrote, it would drop the converted models."""
    spec, out = GOLDEN / "savedmodel_basic" / "spec.yaml", tmp_path / "repo"
    assert run_cli(capsys, "render", spec, "-o", out).code == 0
    manifest = json.loads((out / "repo_builder_manifest.json").read_text())
    name = next(iter(manifest["models"]))
    manifest["models"][name]["status"] = "built"  # as `build` records a converted model
    (out / "repo_builder_manifest.json").write_text(json.dumps(manifest))
    artifact = out / name / "1" / "model.savedmodel" / "saved_model.pb"
    artifact.parent.mkdir(parents=True)
    artifact.write_bytes(b"converted")
    result = run_cli(capsys, "render", spec, "-o", out)
    assert result.code == 1
    assert result.stderr.replace("\n", "") == (
        f"error: {out} holds models built by `repo-builder build` ({name}); render writes configs only and would "
        "replace them. Choose another output with -o, or pass --force to replace them."
    )
    assert artifact.read_bytes() == b"converted"
    assert run_cli(capsys, "render", spec, "-o", out, "--force").code == 0
    assert not artifact.exists()


def test_build_does_not_drop_another_specs_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A repository built from another spec keeps its models: building a spec without them into it is
    refused before anything runs (no TensorFlow needed to get there)."""
    out = tmp_path / "repo"
    (out / "resnet" / "1").mkdir(parents=True)
    manifest = {"format": 1, "spec": "/elsewhere/models.yaml", "models": {"resnet": {"status": "built"}}}
    (out / "repo_builder_manifest.json").write_text(json.dumps(manifest))
    spec = GOLDEN / "savedmodel_basic" / "spec.yaml"
    result = run_cli(capsys, "build", spec, "-o", out)
    assert result.code == 1
    assert result.stderr.replace("\n", "") == (
        f"error: {out} was built from another spec (/elsewhere/models.yaml); its models resnet are not in {spec} "
        "and would be removed. Choose another output with -o, or pass --force."
    )
    assert sorted(p.name for p in out.iterdir()) == ["repo_builder_manifest.json", "resnet"]


def test_schema_is_json_schema_of_the_spec(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_cli(capsys, "schema")
    assert (result.code, result.stderr) == (0, "")
    schema = json.loads(result.stdout)
    assert schema["type"] == "object"
    assert schema["required"] == ["models"]
    assert schema["additionalProperties"] is False
    assert {"repository", "triton", "models"} <= set(schema["properties"])
    model = schema["$defs"]["ModelSpec"]
    assert model["additionalProperties"] is False
    assert set(model["properties"]["target"]["enum"]) == {
        "savedmodel",
        "tftrt",
        "onnx",
        "tensorrt",
        "python",
        "ensemble",
    }


def test_schema_validates_the_golden_specs(capsys: pytest.CaptureFixture[str]) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed")
    import yaml

    schema = json.loads(run_cli(capsys, "schema").stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    for spec in sorted(GOLDEN.glob("*/spec.yaml")):
        # through JSON, as an editor sees it (YAML's integer mapping keys become strings)
        jsonschema.validate(json.loads(json.dumps(yaml.safe_load(spec.read_text()))), schema)


def test_render_and_check_do_not_import_tensorflow(tmp_path: Path) -> None:
    """`render` and `check` must stay light: TensorFlow (and tf2onnx, onnxruntime) are never imported."""
    spec = GOLDEN / "all_platforms" / "spec.yaml"
    code = f"""
import sys
from repo_builder import cli
for argv in (["repo-builder", "check", {str(spec)!r}],
             ["repo-builder", "render", {str(spec)!r}, "-o", {str(tmp_path / "repo")!r}]):
    sys.argv = argv
    try:
        cli.main()
    except SystemExit as e:
        assert e.code in (0, None), e.code
heavy = sorted(m for m in ("tensorflow", "tf2onnx", "onnxruntime", "onnx", "keras") if m in sys.modules)
print("heavy:", heavy)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "heavy: []"


def test_tables_off_a_terminal_keep_every_token_whole() -> None:
    """Piped or redirected, build's summary and validate's results print whole names, paths and details."""
    import io

    from rich.console import Console

    from repo_builder.build.results import BuildResult, ModelResult
    from repo_builder.cli.build import summary_table
    from repo_builder.cli.output import print_table
    from repo_builder.repository.manifest import ManifestEntry, ModelStatus
    from repo_builder.validate.report import CheckResult, Report

    names = [f"image_classifier_with_a_rather_long_descriptive_name_number_{i}" for i in range(3)]
    repository = Path("/srv/teams/vision/some/deeply/nested/output/folder/model_repository_of_the_team")
    build = BuildResult(
        repository,
        [
            ModelResult(n, "tensorrt", ModelStatus.KEPT, ManifestEntry(max_error=1e-6), seconds=3.2, size=12_345_678)
            for n in names
        ],
    )
    detail = "config differs: instance_group[0].count expected 2, served 3 (see /srv/teams/vision/config.pbtxt)"
    report = Report(
        url="127.0.0.1:8000",
        protocol="http",
        repository=str(repository),
        checks=[CheckResult("golden", "fail", detail, n) for n in names],
    )
    # each row on one line: the name, and the rest of its row whole next to it
    cases = [(summary_table(build), "FAILED (previous kept)"), (report.to_table(), detail)]
    for table, rest in cases:
        for soft_wrap in (True, False):  # the CLI's stdout console soft-wraps; tests' consoles may not
            buf = io.StringIO()
            console = Console(file=buf, width=80, soft_wrap=soft_wrap)
            assert not console.is_terminal
            print_table(console, table)
            lines = buf.getvalue().splitlines()
            assert any(str(repository) in line for line in lines), lines  # the title
            for name in names:
                assert any(name in line and rest in line for line in lines), (name, lines)
            assert not any("…" in line for line in lines)
            assert console.width == 80  # widened for this one print only
