"""What a deployment needs besides Triton: the GPUs it reserves, the TensorRT engines built on the target GPU
before Triton starts (one recipe per TensorRT plan or TF-TRT SavedModel the build left to deployment), and
the packages a python-target model needs in the Triton image."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from repo_builder.spec.models import ModelSpec, Spec
from repo_builder.triton import releases
from repo_builder.triton.platforms import PLATFORMS

# --------------------------------------------------------------------------------------------- GPUs


@dataclass(frozen=True)
class GpuReservation:
    """`deploy.resources.reservations.devices[0]`: either a count ("all") or explicit device ids."""

    count: str | None = None
    device_ids: tuple[str, ...] | None = None


def gpu_reservation(spec: Spec) -> GpuReservation | None:
    """The GPUs the triton service reserves, from the models' instance groups.

    - No instance group can use a GPU (every group is KIND_CPU): no reservation; Triton runs on CPU.
    - Some group uses a GPU without naming one (KIND_GPU without gpus, KIND_AUTO, KIND_MODEL, or
      the default group): every GPU (`count: all`), as Triton places one instance per visible GPU.
    - Every GPU group names its GPUs: device ids 0..max. The container numbers its GPUs from 0 in the
      order given, so reserving exactly {2} would make host GPU 2 the container's GPU 0 and the
      config's `gpus: [2]` invalid; reserving 0..max keeps the config's ids meaning the host's.
    """
    from repo_builder.render.config import default_instance_groups

    needs_any = False
    named: set[int] = set()
    for m in spec.models:
        if m.target == "ensemble":
            continue
        groups = m.instance_groups
        kinds: list[tuple[str, list[int] | None]]
        if groups is None:
            kinds = [(g["kind"], None) for g in default_instance_groups(m)]
        else:
            kinds = [(g.kind, g.gpus) for g in groups]
        for kind, gpus in kinds:
            if kind == "KIND_CPU":
                continue
            if kind == "KIND_GPU" and gpus:
                named.update(gpus)
            else:
                needs_any = True
    if needs_any:
        return GpuReservation(count="all")
    if named:
        return GpuReservation(device_ids=tuple(str(i) for i in range(max(named) + 1)))
    return None


# --------------------------------------------------------------------------------------------- engines

#: what runs a recipe in its builder: trtexec recipes are shell scripts, TF-TRT recipes Python scripts
RUNNERS = {"plan": "bash", "tftrt": "python3"}


@dataclass(frozen=True)
class Recipe:
    """A recipe that builds one model file at deployment: a TensorRT plan (trtexec, `kind` "plan") or a
    TF-TRT SavedModel (TrtGraphConverterV2, `kind` "tftrt"). Paths are relative to the repository root
    (posix)."""

    model: str
    version: int
    #: the script
    script: str
    #: what it writes: model.plan or model.savedmodel
    output: str
    kind: str = "plan"
    #: what it reads besides itself; with the script, what the builder's stamp hashes
    inputs: tuple[str, ...] = ()


def _default_recipe(model: ModelSpec, version: int) -> Recipe:
    from repo_builder.repository.layout import (
        CALIBRATION_DATA_NAME,
        ONNX_NAME,
        RECIPE_NAME,
        TFTRT_RECIPE_NAME,
        TFTRT_SOURCE_NAME,
    )

    folder = PurePosixPath(model.name) / str(version)
    output = str(folder / (PLATFORMS[model.target].model_file or "model.plan"))
    if model.target == "tftrt":
        inputs = [str(folder / TFTRT_SOURCE_NAME)]
        if model.precision == "int8" and model.calibration is not None:
            inputs.append(str(folder / CALIBRATION_DATA_NAME))
        return Recipe(model.name, version, str(folder / TFTRT_RECIPE_NAME), output, "tftrt", tuple(inputs))
    return Recipe(model.name, version, str(folder / RECIPE_NAME), output, "plan", (str(folder / ONNX_NAME),))


def engine_recipes(spec: Spec, repo: Path) -> list[Recipe]:
    """Model files to build at deployment: every tensorrt- and tftrt-target version, less what the build
    made (TensorRT, TF-TRT available at build time).

    Decided from the spec; the manifest (when the repository was built) removes versions whose model
    file was built locally (`status: built`) and gives the recorded recipe path of the others.
    """
    from repo_builder.repository.manifest import ManifestEntry, ModelStatus, read_manifest

    manifest = read_manifest(repo)
    entries = (manifest.models if manifest is not None else None) or {}
    found: list[Recipe] = []
    for m in spec.models:
        if m.target not in ("tensorrt", "tftrt"):
            continue
        entry = entries.get(m.name) or ManifestEntry()
        if entry.status == ModelStatus.BUILT:
            continue
        recorded = entry.recipe
        for v in m.versions:
            recipe = _default_recipe(m, v)
            script = _recorded_script(recorded, v)
            if script is not None and m.target == "tensorrt":
                recipe = Recipe(m.name, v, script, recipe.output, recipe.kind, recipe.inputs)
            found.append(recipe)
    return found


def _recorded_script(recorded: Any, version: int) -> str | None:
    """The manifest's `recipe`: one path, a list of paths, or {version: path}."""
    if isinstance(recorded, str):
        return recorded if f"/{version}/" in recorded else None
    if isinstance(recorded, list):
        return next((r for r in recorded if isinstance(r, str) and f"/{version}/" in r), None)
    if isinstance(recorded, dict):
        value = recorded.get(str(version), recorded.get(version))
        return value if isinstance(value, str) else None
    return None


def builder_script(recipes: list[Recipe]) -> str:
    """A builder service's shell program (compose escapes: `$$` is a literal `$`).

    Each recipe runs unless its output exists next to a stamp (`<output>.stamp`) that holds the hash
    of the recipe and of every file it reads: an unchanged model is not built again on every `up`.
    The builder runs as the image's root; what it wrote is then given to the owner of the repository
    folder (`chown --reference=.`), whoever that is, so the user's repository holds no root-owned files.
    """
    from repo_builder.repository.layout import STAMP_SUFFIX

    stamp = f'"$$output{STAMP_SUFFIX}"'
    lines = [
        "nvidia-smi --query-gpu=index,name,compute_cap --format=csv,noheader || true",
        "# build RUNNER RECIPE OUTPUT INPUT...: run RECIPE with RUNNER unless OUTPUT is there with a stamp that",
        "# matches the hash of RECIPE and its INPUTs; then give the version folder to the repository's owner",
        "build() {",
        '  runner="$$1" recipe="$$2" output="$$3"',
        "  shift 3",
        '  for file in "$$recipe" "$$@"; do',
        '    if [ ! -e "$$file" ]; then',
        '      echo "missing $$file: run repo-builder build first; it writes the recipes" >&2',
        "      exit 1",
        "    fi",
        "  done",
        '  hash="$$(find "$$recipe" "$$@" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum'
        + ' | sha256sum | cut -d" " -f1)"',
        f'  if [ -e "$$output" ] && [ "$$(cat {stamp} 2>/dev/null || true)" = "$$hash" ]; then',
        '    echo "== $$output is up to date: its recipe and inputs are unchanged"',
        "    return 0",
        "  fi",
        '  echo "== $$recipe"',
        f"  rm -f {stamp}",
        '  "$$runner" "$$recipe"',
        f'  echo "$$hash" > {stamp}',
        '  folder="$$(dirname "$$recipe")"',
        '  chown -R --reference=. "$$folder" || echo "warning: $$folder stays owned by $$(id -u)" >&2',
        "}",
    ]
    for r in recipes:
        lines.append(" ".join(["build", RUNNERS[r.kind], r.script, r.output, *r.inputs]))
    lines.append("ls -ld " + " ".join(r.output for r in recipes))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- python


def gpu_instances(model: ModelSpec) -> bool:
    """Whether Triton may place an instance of `model` on a GPU: any group but KIND_CPU (KIND_AUTO, and no
    groups at all, become KIND_GPU on a GPU host)."""
    groups = model.instance_groups or []
    return not groups or any(g.kind != "KIND_CPU" for g in groups)


def python_runtimes(spec: Spec) -> dict[str, tuple[str, bool]]:
    """Each python-target model's runtime, and whether it may compute on a GPU."""
    return {m.name: (m.python_runtime or "onnxruntime", gpu_instances(m)) for m in spec.models if m.target == "python"}


def python_runtime_packages(spec: Spec, tag: str) -> list[str]:
    """Pinned packages the python-target models import, for the container's Python; [] if none. A runtime
    that some model runs on GPU instances is its GPU build (which also runs on the CPU): onnxruntime-gpu for
    the container's CUDA, tensorflow[and-cuda]."""
    runtimes = python_runtimes(spec)
    if not runtimes:
        return []
    python = releases.container_python(tag)
    pins = releases.RUNTIME_PINS[python]
    on_gpu = {runtime for runtime, gpu in runtimes.values() if gpu}
    packages = [f"numpy=={pins['numpy']}"]
    for runtime in sorted({runtime for runtime, _ in runtimes.values()}):
        if runtime == "onnxruntime" and runtime in on_gpu:
            packages.append(f"onnxruntime-gpu=={releases.GPU_ONNXRUNTIME[python, releases.cuda_major(tag)]}")
        elif runtime == "tensorflow" and runtime in on_gpu:
            packages.append(f"tensorflow[and-cuda]=={pins['tensorflow']}")
        else:
            packages.append(f"{runtime}=={pins[runtime]}")
    return packages


#: distributions whose module has another name
_MODULES = {"onnxruntime-gpu": "onnxruntime"}


def import_names(packages: list[str] | tuple[str, ...]) -> list[str]:
    """The modules the pinned `packages` install (`onnxruntime-gpu==1.31.1` -> `onnxruntime`,
    `tensorflow[and-cuda]==2.21.0` -> `tensorflow`): what the Dockerfile imports once they are installed, so
    an image whose packages do not load is not built."""
    names = [re.split(r"[\[=<>~!]", p, maxsplit=1)[0] for p in packages]
    return [_MODULES.get(n, n).replace("-", "_") for n in names]
