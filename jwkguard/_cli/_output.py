"""Terminal and JSON output shared by the commands: exit codes, styles, times, tables."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn, TextIO

import click

from .._lazy import install_hint

__all__ = [
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "Style",
    "emit_json",
    "fail",
    "format_time",
    "relative",
    "require_extra",
    "table",
]

EXIT_OK = 0
"""Success: the token is valid, the keys were read, the action was done."""
EXIT_INVALID = 1
"""The token is invalid (or a demo step misbehaved)."""
EXIT_USAGE = 2
"""Bad command line or configuration (Click's own code for usage errors)."""
EXIT_UNAVAILABLE = 3
"""Keys or a store could not be reached: the answer is unknown, not negative."""


class Style:
    """Colours for a terminal, nothing otherwise (``NO_COLOR`` and non-TTYs get plain text)."""

    def __init__(self, stream: TextIO | None = None, *, color: bool | None = None) -> None:
        stream = stream or sys.stdout
        if color is None:
            color = stream.isatty() and not os.environ.get("NO_COLOR")
        self.color = color

    def _paint(self, text: str, **style: Any) -> str:
        return click.style(text, **style) if self.color else text

    def ok(self, text: str) -> str:
        return self._paint(text, fg="green", bold=True)

    def bad(self, text: str) -> str:
        return self._paint(text, fg="red", bold=True)

    def warn(self, text: str) -> str:
        return self._paint(text, fg="yellow", bold=True)

    def dim(self, text: str) -> str:
        return self._paint(text, dim=True)

    def bold(self, text: str) -> str:
        return self._paint(text, bold=True)

    def accent(self, text: str) -> str:
        return self._paint(text, fg="cyan")

    def mark(self, outcome: bool | None) -> str:
        """A check mark for passed, a cross for failed, a dash for not run."""
        if outcome is None:
            return self.dim("-")
        return self.ok("✓") if outcome else self.bad("✗")


def emit_json(document: Any) -> None:
    """Print one JSON document to stdout."""
    click.echo(json.dumps(document, indent=2, sort_keys=False, default=str))


def fail(message: str, code: int, *, as_json: bool = False, **fields: Any) -> NoReturn:
    """Report an error (to stderr, or as a JSON document on stdout) and exit with ``code``."""
    if as_json:
        emit_json({"error": message, "exit_code": code, **fields})
    else:
        click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def require_extra(command: str, extra: str, *modules: str, as_json: bool = False) -> None:
    """Exit with one line naming the extra when a module ``command`` needs is not installed."""
    import importlib.util

    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    if missing:
        fail(
            install_hint(f"`jwkguard {command}`", " and ".join(missing), extra),
            EXIT_USAGE,
            as_json=as_json,
        )


def format_time(value: float | None) -> str:
    """A unix time as ``YYYY-MM-DD HH:MM:SS UTC``."""
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso_time(value: float) -> str:
    """A unix time in ISO 8601 with ``Z``."""
    return datetime.fromtimestamp(value, UTC).isoformat().replace("+00:00", "Z")


def _span(seconds: float) -> str:
    whole = round(abs(seconds))
    if whole < 60:
        return f"{whole}s"
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    parts: list[str] = []
    for name, size in units:
        if whole >= size:
            parts.append(f"{whole // size}{name}")
            whole %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def relative(value: float, reference: float) -> str:
    """``in 4m 10s`` or ``2h 5m ago`` relative to ``reference``."""
    delta = value - reference
    if not math.isfinite(delta):
        return "-"
    if abs(delta) < 1:
        return "now"
    return f"in {_span(delta)}" if delta > 0 else f"{_span(delta)} ago"


def table(rows: Sequence[Sequence[str]], *, indent: int = 2, widths: Sequence[int] = ()) -> str:
    """Rows aligned in columns (ANSI styles do not count towards the width)."""
    if not rows:
        return ""
    columns = max(len(row) for row in rows)
    sizes = [0] * columns
    for row in rows:
        for index, cell in enumerate(row):
            sizes[index] = max(sizes[index], len(click.unstyle(cell)))
    for index, width in enumerate(widths):
        sizes[index] = max(sizes[index], width)
    lines = []
    for row in rows:
        cells = [
            cell + " " * (sizes[index] - len(click.unstyle(cell))) for index, cell in enumerate(row)
        ]
        lines.append((" " * indent + "  ".join(cells)).rstrip())
    return "\n".join(lines)
