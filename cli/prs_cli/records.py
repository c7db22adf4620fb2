"""Rows shown as a table when it fits the terminal, as a list of records when it does not.

Ids are never cut: every cell keeps its full text. A table that would need more columns than the
terminal has (80 is the narrowest we design for) becomes one block per row — the first column as
the block's heading, the others as ``name: value`` lines — which any width can show.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

Cell = str | Text


def render_records(
    console: Console,
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    empty: str = "nothing to show",
    right: Collection[int] = (),
) -> RenderableType:
    """A table of ``rows`` if it fits ``console``'s width, else the same rows as records;
    ``right`` are the indexes of columns of numbers (right-aligned in the table)."""
    if not rows:
        return Text(f"{title}: {empty}", style="dim")
    table = Table(title=title, title_justify="left")
    for index, name in enumerate(columns):
        table.add_column(name, no_wrap=True, justify="right" if index in right else "left")
    for row in rows:
        table.add_row(*row)
    # Measured without the terminal's limit, which would clamp the answer to what fits.
    unbounded = console.options.update(max_width=100_000)
    width = Measurement.get(console, unbounded, table).maximum
    if width <= console.width:
        return table
    return as_list(title, columns, rows)


def as_list(title: str, columns: Sequence[str], rows: Sequence[Sequence[Cell]]) -> Group:
    """One block per row: the first cell in bold, then each other non-empty cell on its line."""
    parts: list[RenderableType] = [Text(title, style="bold underline")]
    for row in rows:
        block = Text()
        block.append_text(_text(row[0], "bold"))
        for name, cell in zip(columns[1:], row[1:], strict=True):
            value = _text(cell)
            if not value.plain or value.plain == "-":
                continue
            block.append(f"\n  {name}: ", style="dim")
            block.append_text(value)
        parts.append(block)
    return Group(*parts)


def _text(cell: Cell, style: str = "") -> Text:
    if isinstance(cell, Text):
        return cell
    return Text(cell, style=style)
