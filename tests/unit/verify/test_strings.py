"""String tensors for onnxruntime (verify/strings.py): one source for the build's check and for generated
model.py files, which include the module's text as the template _strings.py.j2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from repo_builder.errors import GeneratorBug
from repo_builder.render import config
from repo_builder.render.config import environment, render_template
from repo_builder.verify import strings
from tests.unit.serve.test_device import model_py_context

NAME = "_strings.py.j2"


def included_code() -> dict[str, Any]:
    """The functions as a generated model.py gets them: the rendered template, run with numpy as its only name."""
    namespace: dict[str, Any] = {"np": np}
    exec(compile(render_template(NAME), NAME, "exec"), namespace)
    return namespace


def module_text_after_marker() -> str:
    text = Path(strings.__file__).read_text(encoding="utf-8")
    return text.split(config.MODULE_TEMPLATE_MARKER.format(name=NAME), 1)[1]


def test_the_template_is_the_modules_text_after_the_marker() -> None:
    rendered = render_template(NAME)
    assert rendered == module_text_after_marker()
    assert rendered.startswith("def to_onnxruntime(") and "import" not in rendered
    assert config.template_path(NAME) == Path(strings.__file__).resolve()
    assert not (config.templates_dir() / NAME).exists()  # no second copy to drift


@pytest.mark.parametrize("template", ["python_model.py.j2", "preview_model.py.j2"])
def test_generated_model_py_files_include_the_modules_functions(template: str) -> None:
    assert module_text_after_marker() in render_template(template, **model_py_context("object"))


@pytest.mark.parametrize(
    "value",
    [
        np.array([b"abc", "d\u00e9f".encode(), b""], dtype=object),
        np.array([["x", b"y"], [b"\xc3\xa9", "z"]], dtype=object),  # mixed, two dims
        np.array([], dtype=object).reshape(0, 3),
    ],
    ids=["bytes", "mixed-2d", "empty"],
)
def test_the_included_functions_convert_as_the_module_does(value: np.ndarray) -> None:
    code = included_code()
    as_str = strings.to_onnxruntime(value)
    assert as_str.dtype == object and as_str.shape == value.shape
    assert all(isinstance(x, str) for x in as_str.reshape(-1))
    assert [x.decode() if isinstance(x, bytes) else x for x in value.reshape(-1)] == list(as_str.reshape(-1))
    back = strings.from_onnxruntime(as_str)
    assert back.shape == value.shape and all(isinstance(x, bytes) for x in back.reshape(-1))
    assert [x.encode() if isinstance(x, str) else x for x in value.reshape(-1)] == list(back.reshape(-1))
    included = code["to_onnxruntime"](value)
    assert included.dtype == object and included.shape == value.shape and included.tolist() == as_str.tolist()
    assert code["from_onnxruntime"](as_str).tolist() == back.tolist()


@pytest.mark.parametrize("value", [np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2], dtype=np.int64)])
def test_other_dtypes_pass_through_unchanged(value: np.ndarray) -> None:
    code = included_code()
    for convert in (
        strings.to_onnxruntime,
        strings.from_onnxruntime,
        code["to_onnxruntime"],
        code["from_onnxruntime"],
    ):
        assert convert(value) is value


def test_the_modules_text_is_served_literally(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "m.py"
    marker = config.MODULE_TEMPLATE_MARKER.format(name="_m.py.j2")
    module.write_text(f"import numpy as np\n\n\n{marker}def f(x):\n    return {{{{x: 1}}}} or f'{{x}}'\n")
    monkeypatch.setitem(config.MODULE_TEMPLATES, "_m.py.j2", module)
    source = config.module_template("_m.py.j2")
    assert source is not None
    assert environment().from_string(source).render() == "def f(x):\n    return {{x: 1}} or f'{x}'\n"
    assert config.module_template("python_model.py.j2") is None  # other templates come from templates/


def test_a_module_without_its_marker_is_a_bug(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f(x):\n    return x\n")
    monkeypatch.setitem(config.MODULE_TEMPLATES, "_m.py.j2", module)
    with pytest.raises(GeneratorBug, match=r"m\.py lacks the line '# _m\.py\.j2 is this file below this line'"):
        config.module_template("_m.py.j2")
