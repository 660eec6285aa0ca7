"""Demo output: aligned rows, colour and a spinner on a terminal, plain lines elsewhere."""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

import click

from .._cli._output import Style

__all__ = ["Console"]

_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
LABEL_WIDTH = 9


class Console:
    """Where the demo writes: ``stream`` (stdout by default)."""

    def __init__(self, stream: TextIO | None = None, *, color: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.style = Style(self.stream, color=color)
        self.live = self.style.color  # spinners only where colours are (a real terminal)

    def line(self, text: str = "") -> None:
        click.echo(text, file=self.stream, color=self.style.color)

    def title(self, text: str) -> None:
        self.line()
        self.line(self.style.bold(text))

    def row(self, label: str, text: str) -> None:
        """An indented ``label  text`` row; continuation lines stay aligned."""
        pad = " " * 8
        first, *rest = text.splitlines() or [""]
        self.line(f"{pad}{self.style.dim(label.ljust(LABEL_WIDTH))}{first}")
        for more in rest:
            self.line(f"{pad}{' ' * LABEL_WIDTH}{more}")

    def step(self, index: int, total: int, title: str) -> None:
        self.line()
        number = f"[{index:>2}/{total}]"
        self.line(f"{self.style.accent(number)} {self.style.bold(title)}")

    def verdict(self, ok: bool, text: str) -> None:
        mark = self.style.ok("✓") if ok else self.style.bad("✗")
        self.row("", f"{mark} {text}")

    @contextmanager
    def progress(self, text: str) -> Iterator[None]:
        """A spinner while the block runs (on a terminal), then a check mark or a cross."""
        if not self.live:
            self.line(f"{text} ...")
            yield
            return
        done = threading.Event()

        def spin() -> None:
            for frame in itertools.cycle(_FRAMES):
                self.stream.write(f"\r{self.style.accent(frame)} {text} ")
                self.stream.flush()
                if done.wait(0.08):
                    return

        spinner = threading.Thread(target=spin, daemon=True)
        spinner.start()
        ok = False
        try:
            yield
            ok = True
        finally:
            done.set()
            spinner.join(timeout=1)
            mark = self.style.ok("✓") if ok else self.style.bad("✗")
            self.stream.write(f"\r{mark} {text}   \n")
            self.stream.flush()
