"""How the commands print tables: whole rows off a terminal, so a pipe or a file can be grepped."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

#: wide enough for any table's natural width; only used to measure it
_UNBOUNDED = 100_000


def print_table(console: Console, table: Table) -> None:
    """Print `table` on `console`.

    On a terminal, rich fits the table to the window as usual. Off a terminal (a pipe, a file, a CI
    log) no cell, title or caption is wrapped, folded or cut: the console is widened to the table's
    natural width for this one print, so every model name, path and detail line stays one token.
    """
    if console.is_terminal:
        console.print(table)
        return
    width = console.measure(table, options=console.options.update_width(_UNBOUNDED)).maximum
    for attr in ("title", "caption"):
        value = getattr(table, attr)
        if value is None:
            continue
        text = console.render_str(value) if isinstance(value, str) else value.copy()
        text.no_wrap, text.overflow = True, "ignore"  # a title wider than the table stays one line
        setattr(table, attr, text)
        width = max(width, *(line.cell_len for line in text.split("\n")))
    saved = console.width
    console.width = max(saved, width)
    try:
        console.print(table, crop=False)
    finally:
        console.width = saved
