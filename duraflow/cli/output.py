"""Printing admin results: aligned ``rich`` tables for people, JSON for scripts.

Tables truncate long values (outputs, errors, event data) so a row stays on one line; JSON
always carries full values under stable keys. Times in tables are UTC; in JSON they stay
milliseconds since the Unix epoch, exactly as the API returns them.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

#: Longest output / error / data text shown in a table cell.
CELL_CHARS = 60


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def print_renderable(renderable: RenderableType) -> None:
    """Print on the *current* ``sys.stdout`` (tests swap it). A terminal gets rich's own
    output; a pipe gets plain text at a generous width with trailing padding stripped, so a
    log, ``grep`` or ``awk`` sees one row per line, not rows wrapped at 80 columns."""
    out = sys.stdout
    if out.isatty():
        Console(file=out, highlight=False).print(renderable)
        return
    width = int(os.environ.get("COLUMNS") or 0) or 240  # the terminal's, not a Duraflow setting
    console = Console(file=io.StringIO(), width=width, no_color=True, highlight=False,
                      color_system=None)
    with console.capture() as captured:
        console.print(renderable)
    for line in captured.get().splitlines():
        out.write(line.rstrip() + "\n")


def table(columns: Sequence[str], rows: Iterable[Sequence[str]], title: str | None = None) -> Table:
    """A plain, aligned table in the style of ``kubectl get``: a header line and one line
    per row, no borders (``awk``-friendly), ids never truncated."""
    result = Table(box=None, title=None if title is None else Text(title),
                   title_justify="left", title_style="bold", pad_edge=False)
    for name in columns:
        result.add_column(name, no_wrap=True, overflow="fold")
    for row in rows:
        result.add_row(*(Text(cell) for cell in row))  # data is never markup
    return result


def print_table(columns: Sequence[str], rows: Iterable[Sequence[str]],
                title: str | None = None) -> None:
    print_renderable(table(columns, rows, title))


def print_fields(pairs: Iterable[tuple[str, str]]) -> None:
    """A two-column key/value table (one record shown in full)."""
    result = Table(box=None, show_header=False, pad_edge=False)
    result.add_column(style="bold", no_wrap=True)
    result.add_column(overflow="fold")
    for key, value in pairs:
        result.add_row(key, Text(value))
    print_renderable(result)


def when(ms: int | None) -> str:
    """Milliseconds since the epoch as ``YYYY-MM-DD HH:MM:SS`` UTC; ``-`` when unknown."""
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def clip(text: str | None, limit: int = CELL_CHARS) -> str:
    """One line, at most ``limit`` characters, for a table cell."""
    if text is None:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def decode(raw: str | None) -> Any:
    """A stored JSON payload as a value; text that is not JSON stays a string."""
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def error_summary(raw: str | None) -> str:
    """The line of a stored error a person needs first.

    Orchestration errors are stored as Python tracebacks, whose last line
    (``ValueError: planned failure``) says what went wrong; serialised error details
    (history events) carry it as ``message``.
    """
    value = decode(raw)
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))  # {"Application": {...}}
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        value = value["message"]
    if not isinstance(value, str):
        return "" if raw is None else raw
    lines = [line.strip() for line in value.splitlines() if line.strip()]
    return lines[-1] if lines and lines[0].startswith("Traceback") else " ".join(lines)
