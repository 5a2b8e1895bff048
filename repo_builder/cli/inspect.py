"""`repo-builder inspect`: print a model's tensors as spec YAML."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from repo_builder.errors import SpecError
from repo_builder.inspect.sources import inspect_yaml, source_path
from repo_builder.spec.models import Source


def inspect_command(
    source: str,
    signature: str = "serving_default",
    name: str | None = None,
    console_out: Any = None,
    safe_mode: bool = True,
) -> int:
    """`repo-builder inspect SOURCE [--signature S] [--name N] [--no-safe-mode]`: print the model's tensors as
    spec YAML. `safe_mode=False` (a .keras/.h5 file only) is the spec's `safe_mode: false`: Keras then
    EXECUTES the Python code stored in the file (Lambda layers).

    SOURCE is relative to the current folder. Returns the exit code (0). Raises RepoBuilderError subclasses.
    """
    if not safe_mode and not source.endswith((".keras", ".h5")):
        raise SpecError(f"{source}: --no-safe-mode applies to a Keras .keras or .h5 file only")
    try:
        src = Source.from_arg(source, safe_mode=safe_mode)
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
