"""triton/releases.py: the NGC release table, the container Pythons and the runtime pins."""

from __future__ import annotations

from pathlib import Path

import pytest

from repo_builder.triton import releases

ROOT = Path(__file__).resolve().parents[3]


def test_newest_known_release_is_after_the_tensorflow_backend() -> None:
    assert releases.NEWEST_KNOWN_RELEASE == "25.11"
    assert list(releases.KNOWN_RELEASES) == sorted(releases.KNOWN_RELEASES)
    assert "25.02" in releases.KNOWN_RELEASES


def test_runtime_pins_match_the_convert_extra() -> None:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["convert"]
    pins = dict(item.split("==") for item in extra)
    newest = releases.RUNTIME_PINS["3.12"]
    assert newest["tensorflow"] == pins["tensorflow"]
    assert newest["onnxruntime"] == pins["onnxruntime"]


@pytest.mark.parametrize(
    ("tag", "python"), [("24.10", "3.10"), ("24.11", "3.10"), ("24.12", "3.12"), ("25.11", "3.12")]
)
def test_container_python(tag: str, python: str) -> None:
    assert releases.container_python(tag) == python


def test_default_release_serves_every_model() -> None:
    assert releases.default_release(tensorflow_backend=True) == releases.LAST_TENSORFLOW_BACKEND_RELEASE == "25.02"
    assert releases.default_release(tensorflow_backend=False) == releases.NEWEST_KNOWN_RELEASE
    assert releases.has_tensorflow_backend("25.02") and releases.has_tensorflow_backend("24.10")
    assert not releases.has_tensorflow_backend("25.03")
