"""`repo-builder inspect`: print a model's tensors as spec YAML."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from repo_builder.errors import SpecError
from repo_builder.inspect.sources import inspect_yaml, source_path
from repo_builder.spec.models import Source


def inspect_command(
    source: str, signature: str = "serving_default", name: str | None = None, console_out: Any = None
) -> int:
    """`repo-builder inspect SOURCE [--signature S] [--name N]`: print the model's tensors as spec YAML.

    SOURCE is relative to the current folder. Returns the exit code (0). Raises RepoBuilderError subclasses.
    """
    try:
        src = Source.from_arg(source)
    except ValueError as e:
        raise SpecError(f"{source}: {e}") from None
    path = source_path(src, Path.cwd())
    if path is not None and not path.exists():  # before the seconds TensorFlow's import takes
        raise SpecError(f"{source}: no such file or folder")
    import tempfile

    from repo_builder._process import native_output_to, quiet_tensorflow
    from repo_builder.errors import RepoBuilderError

    quiet_tensorflow()
    # TensorFlow's C++ start-up chatter goes aside; it is shown only when something unexpected fails
    with tempfile.NamedTemporaryFile(prefix="repo-builder-inspect-", suffix=".log") as aside:
        try:
            with native_output_to(Path(aside.name)):
                text = inspect_yaml(src, Path.cwd(), signature, name)
        except RepoBuilderError:
            raise
        except BaseException:
            sys.stderr.write(Path(aside.name).read_text(errors="replace"))
            raise
    if console_out is None:
        sys.stdout.write(text)
    else:
        console_out.print(text, end="", markup=False, highlight=False)
    return 0
