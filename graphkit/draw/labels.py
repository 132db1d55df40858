"""The text on a drawing: numbers as the lecture writes them, tensor summaries, safe markup.

Graphviz's HTML-like labels are XML: every name goes through `markup`, so a value called
`<a & "b">` (or one holding a control character) is shown as written and never breaks the DOT.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

SHOWN_ELEMENTS = 4
"""Tensors with up to this many elements are written out (`f64[2] [0.22, 0.26]`); bigger ones
are summarised by norm, min and max."""


def number(x: Any) -> str:
    """A number as on the lecture's slides: `-12`, `0.73`, `-0.20`, `0.012`, `1.235e+04`.

    Whole numbers show no decimals; others keep 2 to 4 significant digits, enough to follow
    the chain rule by hand without drowning the wire in digits.
    """
    if isinstance(x, bool | np.bool_):
        return "true" if x else "false"
    value = float(x)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"  # also -0.0
    magnitude = abs(value)
    if value == round(value) and magnitude < 1e6:
        return str(int(value))
    if magnitude < 0.1:
        return f"{value:.2g}"
    if magnitude < 100:
        return f"{value:.2f}"
    return f"{value:.4g}"


def dtype_name(dtype: Any) -> str:
    """`f64`, `f32`, `i64`, `bool`: short enough to sit on a wire."""
    kind = np.dtype(dtype)
    if kind.kind in "fiu":
        return f"{kind.kind}{kind.itemsize * 8}"
    return "bool" if kind.kind == "b" else str(kind)


def shape_text(shape: Sequence[Any]) -> str:
    """`[256,10]`, `[N,4]`, `[]` for a scalar."""
    return "[" + ",".join(str(size) for size in shape) + "]"


def declared(dtype: str | None, shape: Sequence[Any] | None) -> str:
    """What a graph declares of a value before it runs: `f64[N,4]`, `f64`, `scalar`, or ``."""
    kind = dtype_name(dtype) if dtype is not None else ""
    if shape is None:
        return kind
    if len(shape) == 0:
        return f"{kind} scalar".strip()
    return kind + shape_text(shape)


def value_text(value: Any) -> str:
    """A forward value: the number itself when it is a scalar, else `f32[256,10] |x|=... min
    ... max ...` (or its few elements, when there are at most SHOWN_ELEMENTS)."""
    array = np.asarray(value)
    if array.ndim == 0:
        return number(array[()])
    return f"{dtype_name(array.dtype)}{shape_text(array.shape)} {_summary(array, 'x')}"


def gradient_text(gradient: Any) -> str:
    """A gradient: the number, or the same summary as its value without the type it shares."""
    array = np.asarray(gradient)
    if array.ndim == 0:
        return number(array[()])
    return _summary(array, "g")


def _summary(array: np.ndarray, symbol: str) -> str:
    if array.size == 0:
        return "empty"
    if array.size <= SHOWN_ELEMENTS:
        return _nested(array.tolist())
    if array.dtype.kind == "b":
        return f"{int(np.count_nonzero(array))} true"
    low, high = number(array.min()), number(array.max())
    if array.dtype.kind != "f":
        return f"min {low} max {high}"
    with np.errstate(all="ignore"):
        norm = float(np.linalg.norm(array.ravel().astype(np.float64)))
    return f"|{symbol}|={number(norm)} min {low} max {high}"


def _nested(items: Any) -> str:
    if isinstance(items, list):
        return "[" + ", ".join(_nested(item) for item in items) + "]"
    return number(items)


def markup(text: str) -> str:
    """Text safe inside a Graphviz HTML-like label: XML-escaped, every character XML cannot
    hold (control characters, lone surrogates) written as a visible `\\xNN` escape, each
    backslash doubled (Graphviz reads `\\N` or `\\G` even there, as the node or graph name),
    and `]` as a character reference (Graphviz 2.43 rejects a `]` that directly follows a tag)."""
    shown = "".join(c if _printable(c) else c.encode("unicode_escape").decode("ascii")
                    for c in text)
    return html.escape(shown, quote=True).replace("\\", "\\\\").replace("]", "&#93;")


def _printable(char: str) -> bool:
    code = ord(char)
    return char.isprintable() and not 0xD800 <= code <= 0xDFFF and code not in (0xFFFE, 0xFFFF)
