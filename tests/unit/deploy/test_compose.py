"""docker-compose deployment: golden files, a real compose parser, the release guard and the details.

Golden cases live in tests/golden/compose/<case>/: spec.yaml and the expected docker-compose.yml (plus
triton-image/Dockerfile and prometheus/prometheus.yml where the case has them). Rewrite them with
`pytest --update-golden` (or REPO_BUILDER_UPDATE_GOLDEN=1) and read the diff.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from repo_builder.cli import deploy as deploy_cli
from repo_builder.deploy import compose, docker
from repo_builder.deploy import services as deploy_services
from repo_builder.errors import DeploymentError, RepoBuilderError, SpecError
from repo_builder.spec import load_spec
from repo_builder.triton import releases

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "golden" / "compose"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "spec.yaml").is_file())
GENERATED = (compose.COMPOSE_FILE, compose.DOCKERFILE, compose.PROMETHEUS_CONFIG, compose.ENV_FILE)
KEY_ENV = {"TRITON_ADMIN_KEY": "test-key", "MY_TRITON_KEY": "test-key", "MY_ADMIN_KEY": "test-key"}
#: the admin key of the golden .env files (a real one is random)
GOLDEN_KEY = "0123456789abcdef0123456789abcdef"


def _update_golden(request: pytest.FixtureRequest) -> bool:
    try:
        option = bool(request.config.getoption("update_golden", default=False))
    except ValueError:
        option = False
    return option or os.environ.get("REPO_BUILDER_UPDATE_GOLDEN") == "1"


def _render_case(case: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The case's deployment files, and the .env `compose` writes beside them (with GOLDEN_KEY)."""
    monkeypatch.chdir(GOLDEN / case)
    spec = load_spec("spec.yaml")
    files = compose.render_compose(spec, spec.repository_path())
    return {**files, compose.ENV_FILE: compose.env_text(spec.triton.restricted_api_key_env, GOLDEN_KEY)}


def _services(text: str) -> dict[str, Any]:
    return yaml.safe_load(text)["services"]


def _write_spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


MLP = '{python: "models:build_mlp"}'


def _spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, triton: str, models: str) -> Any:
    monkeypatch.chdir(tmp_path)
    body = "repository: model_repository\n"
    if triton:
        body += "triton:\n" + "".join(f"  {line}\n" for line in triton.strip().splitlines())
    body += "models:\n" + models
    _write_spec(tmp_path, body)
    return load_spec("spec.yaml")  # as typed: messages locate it as spec.yaml:LINE:COL


def _model(name: str, target: str, extra: str = "") -> str:
    text = f"  - name: {name}\n    source: {MLP}\n    target: {target}\n"
    return text + "".join(f"    {line}\n" for line in extra.strip().splitlines()) if extra else text


# --------------------------------------------------------------------------------------------- golden


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _render_case(case, monkeypatch)
    folder = GOLDEN / case
    if _update_golden(request):
        for name in GENERATED:
            target = folder / name
            if name in files:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(files[name])
            elif target.exists():
                target.unlink()
    expected = {name: (folder / name).read_text() for name in GENERATED if (folder / name).is_file()}
    assert sorted(files) == sorted(expected), f"generated files differ from the golden ones in {folder}"
    for name, text in files.items():
        assert text == expected[name], f"{case}/{name} differs; rerun with --update-golden and read the diff"


def _compose_parsers() -> list[list[str]]:
    found = []
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        found.append([docker, "compose"])
    legacy = shutil.which("docker-compose")
    if legacy:
        found.append([legacy])
    return found


@pytest.mark.compose
@pytest.mark.parametrize("case", CASES)
def test_golden_passes_the_compose_parser(case: str) -> None:
    """Parsed with no key variable in the environment: compose reads it from the case's .env, as
    `docker compose down`, `logs` and `ps` do in a fresh shell."""
    parsers = _compose_parsers()
    if not parsers:
        reason = (
            "no compose parser: install Debian's docker-compose "
            "(apt-get install -y --no-install-recommends docker-compose) or Docker Compose v2"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; .ci/run must install it")
        pytest.skip(reason)
    env = {k: v for k, v in os.environ.items() if k not in KEY_ENV}
    for parser in parsers:
        result = subprocess.run(
            [*parser, "-f", str(GOLDEN / case / "docker-compose.yml"), "config", "-q"],
            capture_output=True,
            text=True,
            env=env,
            cwd=GOLDEN / case,
        )
        assert result.returncode == 0, f"{' '.join(parser)} rejects {case}:\n{result.stdout}{result.stderr}"


EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


@pytest.mark.compose
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_passes_the_compose_parser(example: Path, tmp_path: Path) -> None:
    """The deployment of each example, written as `build` would (into a copy), parses."""
    parsers = _compose_parsers()
    if not parsers:
        if os.environ.get("CI"):
            pytest.fail("no compose parser; .ci/run must install docker-compose")
        pytest.skip("no compose parser (see test_golden_passes_the_compose_parser)")
    spec = load_spec(example)
    repo = spec.repository_path()
    files = compose.render_compose(spec, repo)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    env = {**os.environ, **KEY_ENV, spec.triton.restricted_api_key_env: "test-key"}
    for parser in parsers:
        result = subprocess.run(
            [*parser, "-f", str(tmp_path / compose.COMPOSE_FILE), "config", "-q"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        assert result.returncode == 0, f"{' '.join(parser)} rejects {example.name}:\n{result.stderr}"


@pytest.mark.compose
def test_the_parser_refuses_a_missing_admin_key(tmp_path: Path) -> None:
    """Without the .env and the variable, compose itself refuses to start triton (`${VAR:?...}`): no
    unrestricted server."""
    parsers = _compose_parsers()
    if not parsers:
        pytest.skip("no compose parser (see test_golden_passes_the_compose_parser)")
    shutil.copy(GOLDEN / "default_onnx" / "docker-compose.yml", tmp_path / "docker-compose.yml")
    env = {k: v for k, v in os.environ.items() if k not in KEY_ENV}
    result = subprocess.run(
        [*parsers[-1], "-f", str(tmp_path / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "set TRITON_ADMIN_KEY to the key of the admin APIs (repo-builder compose writes it to .env)" in (
        result.stdout + result.stderr
    )


# --------------------------------------------------------------------------------------------- the guard


def test_tf_backend_model_with_a_release_after_2502_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SpecError) as e:  # a rule of the spec: loading it fails, before anything renders
        _spec(
            tmp_path,
            monkeypatch,
            'image_tag: "25.03"',
            _model("resnet", "savedmodel") + _model("bert", "tftrt") + _model("mlp", "onnx"),
        )
    assert e.value.message == (
        "spec.yaml: 1 problem in the spec\n"
        "spec.yaml:3:14: triton -> image_tag\n"
        "  release 25.03 cannot serve 2 models of this spec: Triton's TensorFlow backend "
        "(targets savedmodel, tftrt) ends with release 25.02.\n"
        "  - resnet (target savedmodel)\n"
        "  - bert (target tftrt)\n"
        "  Either change their target to onnx, tensorrt or python (python runs the SavedModel with "
        "TensorFlow in Triton's python backend),\n"
        "  or set triton.image_tag to 25.02 or earlier "
        "(without image_tag the default is 25.02 for this spec)."
    )


def test_write_compose_writes_nothing_when_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SpecError):
        compose.write_compose(_spec(tmp_path, monkeypatch, 'image_tag: "25.10"', _model("resnet", "savedmodel")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_compose_command_exits_1_with_the_message(tmp_path: Path) -> None:
    spec = _write_spec(
        tmp_path,
        f'triton: {{image_tag: "26.01"}}\nmodels:\n  - name: m\n    source: {MLP}\n    target: savedmodel\n',
    )
    code = (
        "import sys\nfrom repo_builder.cli.deploy import compose_command\nfrom repo_builder.errors import "
        "RepoBuilderError\ntry:\n    compose_command(sys.argv[1])\nexcept RepoBuilderError as e:\n"
        "    print(e.message, file=sys.stderr)\n    sys.exit(1)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(spec)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1
    assert "release 26.01 cannot serve 1 model of this spec" in result.stderr
    assert "  - m (target savedmodel)" in result.stderr
    assert not (tmp_path / "docker-compose.yml").exists()


def test_check_applies_the_release_guard(tmp_path: Path) -> None:
    """`check` reports what `build` and `compose` would refuse, before anything runs."""
    spec = _write_spec(
        tmp_path,
        f'triton: {{image_tag: "25.03"}}\nmodels:\n  - name: m\n    source: {MLP}\n    target: savedmodel\n',
    )
    result = subprocess.run(
        [sys.executable, "-m", "repo_builder", "check", str(spec)], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "release 25.03 cannot serve 1 model of this spec" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("tag", "targets", "expected"),
    [
        (None, ["onnx"], releases.NEWEST_KNOWN_RELEASE),
        (None, ["onnx", "savedmodel"], "25.02"),
        (None, ["tftrt"], "25.02"),
        ("24.05", ["savedmodel"], "24.05"),
        ("25.02", ["savedmodel"], "25.02"),
        ("25.06", ["onnx", "tensorrt", "python"], "25.06"),
    ],
)
def test_image_tag(
    tag: str | None, targets: list[str], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    triton = f'image_tag: "{tag}"' if tag else ""
    models = "".join(_model(f"m{i}", t) for i, t in enumerate(targets))
    spec = _spec(tmp_path, monkeypatch, triton, models)
    assert compose.resolve_image_tag(spec) == expected
    image = _services(compose.render_compose(spec, tmp_path / "model_repository")["docker-compose.yml"])["triton"][
        "image"
    ]
    if "python" in targets:
        assert image.startswith(f"repo-builder/tritonserver:{expected}-py3-python-")
    else:
        assert image == f"nvcr.io/nvidia/tritonserver:{expected}-py3"


# --------------------------------------------------------------------------------------------- GPUs


def _devices(services: dict[str, Any], name: str = "triton") -> list[dict[str, Any]] | None:
    deploy = services[name].get("deploy")
    return None if deploy is None else deploy["resources"]["reservations"]["devices"]


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        ("", [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]),  # default: KIND_AUTO
        (
            "instance_groups: [{kind: KIND_GPU}]",
            [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}],
        ),
        (
            "instance_groups: [{kind: KIND_GPU, gpus: [0, 1]}]",
            [{"driver": "nvidia", "device_ids": ["0", "1"], "capabilities": ["gpu"]}],
        ),
        (  # host GPU 2 stays the container's GPU 2, so the config's gpus: [2] is valid there
            "instance_groups: [{kind: KIND_GPU, gpus: [2]}]",
            [{"driver": "nvidia", "device_ids": ["0", "1", "2"], "capabilities": ["gpu"]}],
        ),
        ("instance_groups: [{kind: KIND_CPU, count: 4}]", None),
    ],
)
def test_gpu_reservation(
    groups: str, expected: list[dict[str, Any]] | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(tmp_path, monkeypatch, "", _model("m", "onnx", groups))
    services = _services(compose.render_compose(spec, tmp_path / "model_repository")["docker-compose.yml"])
    assert _devices(services) == expected


def test_one_model_without_named_gpus_reserves_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = _model("a", "onnx", "instance_groups: [{kind: KIND_GPU, gpus: [1]}]") + _model("b", "onnx")
    spec = _spec(tmp_path, monkeypatch, "", models)
    assert deploy_services.gpu_reservation(spec) == deploy_services.GpuReservation(count="all")


def test_ensembles_reserve_nothing_themselves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tensor = "{name: x, dtype: FP32, dims: [4]}"
    models = _model("a", "onnx", f"instance_groups: [{{kind: KIND_CPU}}]\ninputs: [{tensor}]\noutputs: [{tensor}]")
    models += (
        f"  - name: pipe\n    target: ensemble\n    inputs: [{tensor}]\n    outputs: [{tensor}]\n"
        "    steps: [{model: a, input_map: {x: x}, output_map: {x: x}}]\n"
    )
    spec = _spec(tmp_path, monkeypatch, "", models)
    assert deploy_services.gpu_reservation(spec) is None


# --------------------------------------------------------------------------------------------- ports, APIs


def test_ports_bound_to_localhost_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    services = _services(_render_case("default_onnx", monkeypatch)["docker-compose.yml"])
    assert services["triton"]["ports"] == [
        "127.0.0.1:8000:8000",
        "127.0.0.1:8001:8001",
        "127.0.0.1:8002:8002",
    ]


def test_ports_bound_where_the_spec_says(monkeypatch: pytest.MonkeyPatch) -> None:
    services = _services(_render_case("prometheus_public", monkeypatch)["docker-compose.yml"])
    assert services["triton"]["ports"] == ["0.0.0.0:9000:8000", "0.0.0.0:9001:8001", "0.0.0.0:9002:8002"]
    assert services["prometheus"]["ports"] == ["0.0.0.0:9090:9090"]


def test_ipv6_bind_address_is_bracketed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(tmp_path, monkeypatch, 'bind_address: "::1"', _model("m", "onnx"))
    services = _services(compose.render_compose(spec, tmp_path / "model_repository")["docker-compose.yml"])
    assert services["triton"]["ports"][0] == "[::1]:8000:8000"


def test_bind_address_must_be_an_ip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SpecError) as e:
        _spec(tmp_path, monkeypatch, "bind_address: localhost", _model("m", "onnx"))
    assert e.value.message == (
        "spec.yaml: 1 problem in the spec\n"
        "spec.yaml:3:17: triton -> bind_address\n"
        "  'localhost' is not an IP address; use 127.0.0.1 (this host only, the default), 0.0.0.0 "
        "(every interface) or one of this host's addresses"
    )


def test_command_restricts_the_admin_apis(monkeypatch: pytest.MonkeyPatch) -> None:
    command = _services(_render_case("tf_backend_2502", monkeypatch)["docker-compose.yml"])["triton"]["command"]
    key = (
        "admin-key=${MY_TRITON_KEY:?set MY_TRITON_KEY to the key of the admin APIs "
        "(repo-builder compose writes it to .env)}"
    )
    assert f"--http-restricted-api=model-repository,shared-memory,logging,trace:{key}" in command
    assert f"--grpc-restricted-protocol=model-repository,shared-memory,logging,trace:{key}" in command
    assert command[:6] == [
        "tritonserver",
        "--model-repository=/models",
        "--disable-auto-complete-config",
        "--strict-readiness=true",
        "--exit-on-error=true",
        "--model-control-mode=explicit",
    ]
    assert "--load-model=*" in command


def test_repository_mounted_read_only_and_healthcheck(monkeypatch: pytest.MonkeyPatch) -> None:
    triton = _services(_render_case("default_onnx", monkeypatch)["docker-compose.yml"])["triton"]
    assert triton["volumes"] == ["./model_repository:/models:ro"]
    assert triton["healthcheck"]["test"] == [
        "CMD",
        "python3",
        "-c",
        "import urllib.request; urllib.request.urlopen('http://localhost:8000/v2/health/ready', timeout=2)",
    ]
    assert triton["restart"] == "unless-stopped"
    assert triton["shm_size"] == "1g"
    assert triton["ulimits"] == {"memlock": -1, "stack": 67108864}


def test_cache_config_only_with_a_cached_model(monkeypatch: pytest.MonkeyPatch) -> None:
    with_cache = _services(_render_case("prometheus_public", monkeypatch)["docker-compose.yml"])
    without = _services(_render_case("default_onnx", monkeypatch)["docker-compose.yml"])
    assert "--cache-config=local,size=1048576" in with_cache["triton"]["command"]
    assert not any(a.startswith("--cache-config") for a in without["triton"]["command"])


def test_every_deployment_problem_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    triton = 'image_tag: "25.05"\nbind_address: my-host\nrestricted_api_key_env: "1KEY"'
    with pytest.raises(SpecError) as e:
        _spec(tmp_path, monkeypatch, triton, _model("m", "savedmodel"))
    heads = [line for line in e.value.message.splitlines() if line.startswith("spec.yaml:")]
    assert heads == [
        "spec.yaml: 3 problems in the spec",
        "spec.yaml:3:14: triton -> image_tag",
        "spec.yaml:4:17: triton -> bind_address",
        "spec.yaml:5:27: triton -> restricted_api_key_env",
    ]


def test_bad_key_env_name_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SpecError, match="is not an environment variable name"):
        _spec(tmp_path, monkeypatch, 'restricted_api_key_env: "MY KEY"', _model("m", "onnx"))


# --------------------------------------------------------------------------------------------- engines


def test_engine_builder_runs_before_triton(monkeypatch: pytest.MonkeyPatch) -> None:
    services = _services(_render_case("tensorrt_recipe", monkeypatch)["docker-compose.yml"])
    builder = services["engine-builder"]
    assert builder["image"] == f"nvcr.io/nvidia/tensorrt:{releases.NEWEST_KNOWN_RELEASE}-py3"
    assert services["triton"]["image"] == f"nvcr.io/nvidia/tritonserver:{releases.NEWEST_KNOWN_RELEASE}-py3"
    assert builder["volumes"] == ["./model_repository:/models"]  # read-write: it writes the plans
    assert builder["working_dir"] == "/models"
    assert services["triton"]["depends_on"] == {"engine-builder": {"condition": "service_completed_successfully"}}
    script = builder["command"][-1]
    assert "mlp_plan/1/build_plan.sh" in script
    assert "mlp_plan/2/build_plan.sh" in script
    assert _devices(services, "engine-builder") == _devices(services)


def test_no_engine_builder_without_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    services = _services(_render_case("default_onnx", monkeypatch)["docker-compose.yml"])
    assert "engine-builder" not in services
    assert "depends_on" not in services["triton"]


def _manifest(repo: Path, models: dict[str, Any]) -> None:
    repo.mkdir(parents=True)
    (repo / "repo_builder_manifest.json").write_text(json.dumps({"format": 1, "models": models}))


def test_manifest_removes_plans_built_locally(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = _model("a", "tensorrt") + _model("b", "tensorrt", "versions: [3]")
    spec = _spec(tmp_path, monkeypatch, "", models)
    repo = tmp_path / "model_repository"
    _manifest(
        repo,
        {
            "a": {"status": "built"},
            "b": {"status": "recipe", "recipe": "b/3/build_plan.sh"},
        },
    )
    assert deploy_services.engine_recipes(spec, repo) == [
        deploy_services.Recipe("b", 3, "b/3/build_plan.sh", "b/3/model.plan", "plan", ("b/3/model.onnx",))
    ]
    all_built = {"a": {"status": "built"}, "b": {"status": "built"}}
    (repo / "repo_builder_manifest.json").write_text(json.dumps({"format": 1, "models": all_built}))
    services = _services(compose.render_compose(spec, repo)["docker-compose.yml"])
    assert "engine-builder" not in services


def test_engine_script_checks_each_recipe_and_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    services = _services(_render_case("tensorrt_recipe", monkeypatch)["docker-compose.yml"])
    assert services["engine-builder"]["command"][:4] == ["bash", "-euo", "pipefail", "-c"]
    script = services["engine-builder"]["command"][-1]
    assert 'if [ ! -e "$$file" ]; then' in script  # compose turns $$ into $
    assert "build bash mlp_plan/1/build_plan.sh mlp_plan/1/model.plan mlp_plan/1/model.onnx\n" in script
    assert script.rstrip().endswith("ls -ld mlp_plan/1/model.plan mlp_plan/2/model.plan")


# --------------------------------------------------------------------------------------------- python


def test_python_target_builds_an_image(monkeypatch: pytest.MonkeyPatch) -> None:
    files = _render_case("python_target", monkeypatch)
    dockerfile = files[compose.DOCKERFILE]
    assert f"FROM nvcr.io/nvidia/tritonserver:{releases.NEWEST_KNOWN_RELEASE}-py3\n" in dockerfile
    for pin in ("numpy==1.26.4", "onnxruntime-gpu==1.31.1", "tensorflow[and-cuda]==2.21.0"):
        assert pin in dockerfile
    triton = _services(files["docker-compose.yml"])["triton"]
    assert triton["build"] == {"context": "./triton-image"}


def test_python_pins_follow_the_container_python(monkeypatch: pytest.MonkeyPatch) -> None:
    dockerfile = _render_case("pinned_tag", monkeypatch)[compose.DOCKERFILE]
    assert "Python 3.10" in dockerfile
    assert "onnxruntime-gpu==1.23.2" in dockerfile  # 24.10: CUDA 12, Python 3.10
    assert "tensorflow" not in dockerfile.split("FROM")[1]


def test_python_runtime_is_its_gpu_build_for_gpu_instances() -> None:
    """A python-target model that may run on a GPU gets the runtime's GPU build for the release's CUDA (one
    build per runtime: onnxruntime and onnxruntime-gpu shadow each other); KIND_CPU models the CPU build."""
    from repo_builder.deploy.services import python_runtime_packages
    from repo_builder.spec.models import Spec

    def spec(*models: dict) -> Spec:
        return Spec.model_validate({"models": [{"source": {"python": "m:f"}, "target": "python", **m} for m in models]})

    cpu = {"instance_groups": [{"kind": "cpu"}]}
    assert python_runtime_packages(spec({"name": "a", **cpu}), "25.11") == ["numpy==1.26.4", "onnxruntime==1.31.1"]
    assert python_runtime_packages(spec({"name": "a", **cpu}, {"name": "b"}), "25.11") == [
        "numpy==1.26.4",
        "onnxruntime-gpu==1.31.1",  # 25.08 and later: CUDA 13
    ]
    assert python_runtime_packages(spec({"name": "b", "instance_groups": [{"kind": "gpu"}]}), "25.06") == [
        "numpy==1.26.4",
        "onnxruntime-gpu==1.26.0",  # CUDA 12: the last CUDA 12 build on PyPI
    ]
    tf = {"python_runtime": "tensorflow"}
    assert python_runtime_packages(spec({"name": "t", **tf}), "25.11")[-1] == "tensorflow[and-cuda]==2.21.0"
    assert python_runtime_packages(spec({"name": "t", **tf, **cpu}), "25.11")[-1] == "tensorflow==2.21.0"


# --------------------------------------------------------------------------------------------- writing


def test_write_compose_next_to_the_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "examples").mkdir()
    monkeypatch.chdir(tmp_path)
    spec_path = tmp_path / "examples" / "models.yaml"
    spec_path.write_text(
        f"repository: ../model_repository\ntriton: {{prometheus: true}}\nmodels:\n"
        f"  - name: m\n    source: {MLP}\n    target: python\n"
    )
    spec = load_spec(spec_path)
    written = compose.write_compose(spec)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        ".env",
        "docker-compose.yml",
        "prometheus/prometheus.yml",
        "triton-image/Dockerfile",
    ]
    text = (tmp_path / "docker-compose.yml").read_text()
    assert text.startswith(
        "# Generated by repo-builder from ./examples/models.yaml; "
        "`repo-builder compose ./examples/models.yaml` rewrites it."
    )
    assert '"./model_repository:/models:ro"' in text
    assert str(tmp_path) not in text  # portable: relative paths only
    # a spec that no longer needs the Dockerfile and Prometheus: they go
    spec_path.write_text(
        f"repository: ../model_repository\nmodels:\n  - name: m\n    source: {MLP}\n    target: onnx\n"
    )
    written = compose.write_compose(load_spec(spec_path))
    assert [p.name for p in written] == ["docker-compose.yml"]  # the .env is there already: kept
    assert not (tmp_path / "triton-image").exists()
    assert not (tmp_path / "prometheus").exists()
    assert not list(tmp_path.glob(".*tmp*"))


def test_output_override_moves_the_deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(tmp_path, monkeypatch, "", _model("m", "onnx"))
    written = compose.write_compose(spec, tmp_path / "deploy" / "repo")
    assert written == [tmp_path / "deploy" / "docker-compose.yml", tmp_path / "deploy" / ".env"]
    assert '"./repo:/models:ro"' in written[0].read_text()


def test_a_foreign_compose_file_is_not_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(tmp_path, monkeypatch, "", _model("m", "onnx"))
    mine = tmp_path / "docker-compose.yml"
    mine.write_text("services: {db: {image: postgres}}\n")
    with pytest.raises(RepoBuilderError, match="not written by repo-builder"):
        compose.write_compose(spec)
    assert mine.read_text() == "services: {db: {image: postgres}}\n"
    compose.write_compose(spec, force=True)
    assert mine.read_text().startswith(compose.MARKER)


def test_another_specs_compose_file_is_not_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two specs whose repositories sit in one folder share the place of docker-compose.yml: the second
    does not silently replace the first one's deployment."""
    first = _spec(tmp_path, monkeypatch, "", _model("m", "onnx"))
    compose.write_compose(first)
    written = (tmp_path / "docker-compose.yml").read_text()
    other = tmp_path / "other.yaml"
    other.write_text((tmp_path / "spec.yaml").read_text().replace("model_repository", "other_repository"))
    second = load_spec(other)
    with pytest.raises(RepoBuilderError) as e:
        compose.write_compose(second)
    assert e.value.message == (
        f"{tmp_path / 'docker-compose.yml'} was written for another spec (./spec.yaml); it would be replaced. "
        "Choose another output with -o, or pass --force to replace it."
    )
    assert (tmp_path / "docker-compose.yml").read_text() == written
    compose.write_compose(first)  # its own spec rewrites it
    compose.write_compose(second, force=True)
    assert "other_repository" in (tmp_path / "docker-compose.yml").read_text()


def test_the_plan_names_what_rendering_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build plans its deployment before converting and renders it once after: the plan's files and
    header line are those of the rendered files, so the early ownership check needs no rendering."""
    spec = _spec(tmp_path, monkeypatch, "prometheus: true", _model("m", "python") + _model("t", "tensorrt"))
    plan = compose.plan_deployment(spec)
    assert plan.tag == releases.NEWEST_KNOWN_RELEASE
    assert plan.folder == tmp_path
    files = compose.render_deployment(plan)
    assert tuple(files) == plan.names == (compose.COMPOSE_FILE, compose.PROMETHEUS_CONFIG, compose.DOCKERFILE)
    assert {text.split("\n", 1)[0] for text in files.values()} == {plan.header}
    (tmp_path / compose.COMPOSE_FILE).write_text("services: {}\n")
    with pytest.raises(RepoBuilderError, match="not written by repo-builder"):
        compose.check_deployment(plan)
    compose.check_deployment(plan, force=True)
    assert compose.write_deployment(plan, force=True) == [*plan.paths(), tmp_path / compose.ENV_FILE]


def test_compose_command_prints_the_written_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`repo-builder compose`: the written files are the result, on stdout (through cli/app.py's console)."""
    from tests.unit.cli_runner import run_cli

    _spec(tmp_path, monkeypatch, "prometheus: true", _model("m", "onnx"))
    result = run_cli(capsys, "compose", "spec.yaml")
    assert result.code == 0, result.stderr
    assert result.stdout.splitlines() == ["docker-compose.yml", "prometheus/prometheus.yml", ".env"]


# --------------------------------------------------------------------------------------------- up


def test_up_without_docker_points_to_serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine has no Docker engine (the docker client may exist): up says so and writes nothing."""
    _spec(tmp_path, monkeypatch, "", _model("m", "onnx"))
    status = docker.docker_status()
    if status.compose is not None:
        pytest.skip("a Docker engine with Compose v2 is reachable here")
    with pytest.raises(DeploymentError) as e:
        deploy_cli.up_command("spec.yaml")
    assert e.value.message.startswith(f"cannot start the deployment: {status.problem}.\n")
    assert "`repo-builder serve model_repository` serves the repository on this machine's CPU" in e.value.message
    assert not (tmp_path / "docker-compose.yml").exists()


def test_docker_status_without_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert docker.docker_status() == docker.DockerStatus(None, "the docker command is not installed")


# --------------------------------------------------------------------------------------------- TF-TRT


def test_tftrt_builder_runs_before_triton(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tftrt model without TF-TRT at build time: its recipe runs in NVIDIA's TensorFlow container of the
    server's release, which writes model.savedmodel where triton reads it, before triton starts."""
    services = _services(_render_case("tftrt_recipe", monkeypatch)["docker-compose.yml"])
    assert set(services) == {"tftrt-builder", "triton"}
    builder = services["tftrt-builder"]
    assert builder["image"] == "nvcr.io/nvidia/tensorflow:25.02-tf2-py3"
    assert services["triton"]["image"] == "nvcr.io/nvidia/tritonserver:25.02-py3"
    assert builder["volumes"] == ["./model_repository:/models"]
    assert builder["working_dir"] == "/models"
    assert services["triton"]["depends_on"] == {"tftrt-builder": {"condition": "service_completed_successfully"}}
    script = builder["command"][-1]
    for v in (1, 2):
        assert (
            f"build python3 mlp_tftrt/{v}/build_tftrt.py mlp_tftrt/{v}/model.savedmodel "
            f"mlp_tftrt/{v}/tftrt_source.savedmodel mlp_tftrt/{v}/calibration.npz\n"
        ) in script
    assert _devices(services, "tftrt-builder") == _devices(services)


def test_mixed_engines_two_builders(monkeypatch: pytest.MonkeyPatch) -> None:
    services = _services(_render_case("mixed_engines", monkeypatch)["docker-compose.yml"])
    assert set(services) == {"engine-builder", "tftrt-builder", "triton"}
    assert services["engine-builder"]["image"] == "nvcr.io/nvidia/tensorrt:25.02-py3"
    assert services["tftrt-builder"]["image"] == "nvcr.io/nvidia/tensorflow:25.02-tf2-py3"
    assert services["triton"]["depends_on"] == {
        "engine-builder": {"condition": "service_completed_successfully"},
        "tftrt-builder": {"condition": "service_completed_successfully"},
    }
    assert "mlp_plan/1/build_plan.sh" in services["engine-builder"]["command"][-1]
    assert "build_plan.sh" not in services["tftrt-builder"]["command"][-1]
    assert "mlp_tftrt/1/build_tftrt.py" in services["tftrt-builder"]["command"][-1]


def test_manifest_removes_tftrt_models_converted_locally(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(tmp_path, monkeypatch, "", _model("a", "tftrt") + _model("b", "tensorrt"))
    repo = tmp_path / "model_repository"
    _manifest(repo, {"a": {"status": "built"}, "b": {"status": "recipe"}})
    services = _services(compose.render_compose(spec, repo)["docker-compose.yml"])
    assert set(services) == {"engine-builder", "triton"}
    assert services["triton"]["depends_on"] == {"engine-builder": {"condition": "service_completed_successfully"}}


def test_tensorflow_container_release_guard() -> None:
    """Every release that serves a tftrt model has a TensorFlow container to convert it in."""
    assert releases.has_tensorflow_container(releases.LAST_TENSORFLOW_BACKEND_RELEASE)
    assert releases.tensorflow_image("25.02") == "nvcr.io/nvidia/tensorflow:25.02-tf2-py3"
    assert releases.tensorflow_image("24.10") == "nvcr.io/nvidia/tensorflow:24.10-tf2-py3"
    with pytest.raises(ValueError, match=r"release 25\.03 has no NVIDIA TensorFlow container: the last is 25\.02"):
        releases.tensorflow_image("25.03")


def test_dockerfile_ends_with_an_import_check(monkeypatch: pytest.MonkeyPatch) -> None:
    dockerfile = _render_case("python_target", monkeypatch)[compose.DOCKERFILE]
    assert dockerfile.rstrip().splitlines()[-1] == 'RUN python3 -c "import numpy, onnxruntime, tensorflow"'


# --------------------------------------------------------------------------------------------- .env


def test_env_file_is_written_once_private_and_random(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(tmp_path, monkeypatch, "restricted_api_key_env: MY_ADMIN_KEY", _model("m", "onnx"))
    written = compose.write_compose(spec)
    env = tmp_path / ".env"
    assert env in written
    assert env.stat().st_mode & 0o777 == 0o600
    text = env.read_text()
    key = text.splitlines()[-1].removeprefix("MY_ADMIN_KEY=")
    assert len(key) == 32 and int(key, 16) >= 0
    assert text == compose.env_text("MY_ADMIN_KEY", key)
    assert compose.env_defines(env, "MY_ADMIN_KEY")
    # never replaced, not even forced
    assert env not in compose.write_compose(spec)
    assert env not in compose.write_compose(spec, force=True)
    assert env.read_text() == text
    other = tmp_path / "other"
    other.mkdir()
    other_spec = _spec(other, monkeypatch, "", _model("m", "onnx"))
    compose.write_compose(other_spec)
    assert (other / ".env").read_text() != text  # a new key for each deployment


def test_a_users_env_file_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A .env repo-builder did not write is left as it is; `compose` says when it lacks the key."""
    from tests.unit.cli_runner import run_cli

    _spec(tmp_path, monkeypatch, "", _model("m", "onnx"))
    (tmp_path / ".env").write_text("COMPOSE_PROJECT_NAME=mine\n")
    monkeypatch.delenv("TRITON_ADMIN_KEY", raising=False)
    result = run_cli(capsys, "compose", "spec.yaml")
    assert result.code == 0, result.stderr
    assert result.stdout.splitlines() == ["docker-compose.yml"]
    assert (tmp_path / ".env").read_text() == "COMPOSE_PROJECT_NAME=mine\n"
    assert ".env does not set TRITON_ADMIN_KEY, the key of Triton's admin APIs" in result.stderr
    (tmp_path / ".env").write_text("COMPOSE_PROJECT_NAME=mine\nexport TRITON_ADMIN_KEY=abc\n")
    result = run_cli(capsys, "compose", "spec.yaml")
    assert "does not set" not in result.stderr


@pytest.mark.compose
def test_a_written_deployment_parses_with_only_its_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `compose` writes is complete: with no key variable in the environment (a new shell running
    `docker compose down`, `logs` or `ps`), compose takes the key from the .env beside the file."""
    parsers = _compose_parsers()
    if not parsers:
        if os.environ.get("CI"):
            pytest.fail("no compose parser; .ci/run must install docker-compose")
        pytest.skip("no compose parser (see test_golden_passes_the_compose_parser)")
    spec = _spec(tmp_path, monkeypatch, "", _model("a", "tftrt") + _model("b", "tensorrt"))
    compose.write_compose(spec)
    key = (tmp_path / ".env").read_text().splitlines()[-1].removeprefix("TRITON_ADMIN_KEY=")
    env = {k: v for k, v in os.environ.items() if k not in KEY_ENV}
    for parser in parsers:
        result = subprocess.run(
            [*parser, "-f", str(tmp_path / "docker-compose.yml"), "config"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path.parent,  # elsewhere: compose finds the .env beside the file it reads
        )
        assert result.returncode == 0, f"{' '.join(parser)}:\n{result.stderr}"
        assert f"admin-key={key}" in result.stdout  # the .env's key, interpolated


# --------------------------------------------------------------------------------------------- down, logs


def _recording_compose(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for `docker compose` (no Docker engine here) that records its arguments."""
    record = tmp_path / "argv.json"
    script = tmp_path / "fake_compose.py"
    script.write_text(f"import json, sys\njson.dump(sys.argv[1:], open({str(record)!r}, 'w'))\n")
    monkeypatch.setattr(deploy_cli, "docker_status", lambda: docker.DockerStatus([sys.executable, str(script)], None))
    return record


def test_down_and_logs_wrap_docker_compose(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(tmp_path, monkeypatch, "", _model("m", "onnx"))
    compose.write_compose(spec)
    record = _recording_compose(tmp_path, monkeypatch)
    compose_file = str(tmp_path / "docker-compose.yml")
    assert deploy_cli.down_command("spec.yaml") == 0
    assert json.loads(record.read_text()) == ["-f", compose_file, "down"]
    assert deploy_cli.logs_command("spec.yaml", services=["triton"], follow=True, tail="50") == 0
    assert json.loads(record.read_text()) == ["-f", compose_file, "logs", "--follow", "--tail", "50", "triton"]


def test_down_without_a_compose_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _spec(tmp_path, monkeypatch, "", _model("m", "onnx"))
    with pytest.raises(DeploymentError) as e:
        deploy_cli.down_command("spec.yaml")
    assert e.value.message == (
        "docker-compose.yml does not exist: write it with `repo-builder compose spec.yaml` (or `repo-builder build`)"
    )
