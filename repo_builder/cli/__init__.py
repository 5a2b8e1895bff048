"""The command line: the only layer that parses argv or prints. app.py is the typer app and the one error
handler; one module per command (or pair of commands) does the talking."""

from repo_builder.cli.app import app, main, state

__all__ = ["app", "main", "state"]
