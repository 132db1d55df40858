"""Output shared by the commands: rich tables for people, one JSON object for scripts.

Tables go through a rich Console bound to the current stdout, so in a pipe (or under a test
runner) rich writes plain text without ANSI codes.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import click
import numpy as np
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

SHOWN_ELEMENTS = 16
"""Tensors with more elements than this are summarised (min/mean/max) in tables."""

DIGITS = 4
"""Significant digits of numbers in tables (--json gives full precision)."""


PIPE_WIDTH = 120
"""Width of tables written to a pipe or file (COLUMNS overrides); a terminal uses its own."""


def console() -> Console:
    """A console on today's stdout (click's test runner swaps it), no syntax highlighting."""
    out = Console(highlight=False, soft_wrap=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = PIPE_WIDTH
    return out


def table(title: str | None, *columns: str, wrap: Iterable[str] = ("value",)) -> Table:
    """A table with a plain look that reads the same in a terminal and in a pipe.

    Only the `wrap` columns may wrap; names stay whole so they can be copied and grepped.
    """
    wrapping = set(wrap)
    result = Table(
        title=title, box=box.SIMPLE_HEAD, show_edge=False, title_justify="left",
        title_style="bold",
    )
    for column in columns:
        result.add_column(column, overflow="fold", no_wrap=column not in wrapping)
    return result


def count(number: int, noun: str) -> str:
    """`1 node`, `2 nodes`."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def fit(result: Table, width: int) -> Table:
    """Let every column wrap when the unwrapped ones would not fit.

    Rich drops columns that do not fit at all; a folded name is better than a missing column.
    """
    wrapped_min = 10
    need = 0
    for column in result.columns:
        if column.no_wrap:
            cells = [str(column.header), *map(str, column.cells)]
            need += max(cell_len(line) for cell in cells for line in cell.splitlines() or [""])
        else:
            need += wrapped_min
        need += 3  # padding and separator
    if need > width:
        for column in result.columns:
            column.no_wrap = False
    return result


def show(*renderables: Any) -> None:
    """Print tables; in a pipe, without the trailing padding spaces rich adds to each line."""
    out = console()
    renderables = tuple(fit(r, out.width) if isinstance(r, Table) else r for r in renderables)
    if out.is_terminal:
        for renderable in renderables:
            out.print(renderable)
        return
    with out.capture() as captured:
        for renderable in renderables:
            out.print(renderable)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


def print_json(document: Mapping[str, Any]) -> None:
    """Exactly one JSON object on stdout, on one line; NaN and infinities become null."""
    click.echo(json.dumps(_finite(document), allow_nan=False))


def to_jsonable(value: Any) -> Any:
    """A number for a 0-d array, nested lists otherwise."""
    array = np.asarray(value)
    return array.item() if array.ndim == 0 else array.tolist()


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def number(value: Any) -> str:
    """A scalar with DIGITS significant digits: -12, 0.7311, -0.1966, 1.235e+06."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, int | np.integer):
        return str(int(value))
    return f"{float(value):.{DIGITS}g}"


def summary(value: Any) -> str:
    """A value for a table cell: all of it when small, else its size, min, mean and max."""
    array = np.asarray(value)
    if array.ndim == 0:
        return number(array.item())
    if array.size <= SHOWN_ELEMENTS:
        return np.array2string(
            array, separator=", ", max_line_width=10**6,
            formatter={"float_kind": number, "int_kind": number, "bool": number},
        )
    numeric = array.astype(np.float64)
    return (
        f"{array.size} values: min {number(numeric.min())}, mean {number(numeric.mean())}, "
        f"max {number(numeric.max())}"
    )


def shape_text(value: Any) -> str:
    shape = np.shape(value)
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def values_table(title: str, values: Mapping[str, Any]) -> Table:
    """One row per named array: name, shape, dtype, value (or its summary)."""
    result = table(title, "name", "shape", "dtype", "value")
    for name, value in values.items():
        array = np.asarray(value)
        result.add_row(name, shape_text(array), str(array.dtype), summary(array))
    return result


def joined(items: Iterable[str], empty: str = "-") -> str:
    text = ", ".join(items)
    return text or empty
