"""Where the command writes: rich tables for people, JSON for programs, errors to stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text


class Output:
    """Human or machine output of one invocation.

    Consoles are created per invocation (not at import) so that they write to whatever
    ``sys.stdout`` and ``sys.stderr`` are at the time, which is what test runners replace.
    """

    def __init__(self, *, json_mode: bool = False) -> None:
        self.json_mode = json_mode
        self.out = Console(file=sys.stdout, highlight=False, soft_wrap=False)
        self.err = Console(file=sys.stderr, highlight=False, soft_wrap=True)

    def render(self, renderable: RenderableType) -> None:
        """Show a table, panel or line to a person (nothing in JSON mode)."""
        if not self.json_mode:
            self.out.print(renderable)

    def line(self, text: str) -> None:
        """A plain line on stdout, shown in either mode (markup is not interpreted)."""
        self.out.print(escape(text), soft_wrap=True)

    def json(self, data: Any) -> None:
        """One JSON document on stdout; ``default=str`` covers dates and UUIDs."""
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        sys.stdout.flush()

    def note(self, text: str) -> None:
        """A remark on stderr, so that stdout stays parseable in JSON mode."""
        self.err.print(escape(text), style="yellow")

    def error(self, text: str) -> None:
        """An error line on stderr."""
        self.err.print(f"[bold red]error:[/] {escape(text)}")

    def progress(self, verb: str) -> Progress:
        """A bar for a bulk operation, on stderr: stdout keeps the result (one JSON document)."""
        return Progress(
            TextColumn(escape(verb)),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            console=self.err,
            transient=True,
        )


_STATUS_STYLES = {
    "SUCCEEDED": "green",
    "FAILED": "red",
    "DEAD_LETTERED": "red",
    "CANCELLED": "magenta",
    "EXPIRED": "dim",
}


def styled_status(status: str) -> Text:
    """A task status coloured by outcome (pending states in yellow)."""
    return Text(status, style=_STATUS_STYLES.get(status, "yellow"))
