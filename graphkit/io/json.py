"""Graphs as JSON files: strict, bounded loading and readable saving.

Loading uses pydantic's own JSON parser (no json.loads, nothing evaluated or unpickled), which
also bounds nesting depth (it refuses documents nested deeper than about 200 levels); file size
is checked before any byte is parsed.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from graphkit.errors import FormatError
from graphkit.gcpause import gc_paused
from graphkit.io.atomic import write_atomic
from graphkit.io.reading import max_file_bytes, read_capped
from graphkit.model import FORMAT_VERSION, Graph

MAX_ERRORS_SHOWN = 5
MAX_ERROR_CHARS = 300
"""Each problem's text is cut to this length: messages may quote the (untrusted) input."""


def load_json(path: str | os.PathLike[str]) -> Graph:
    """Read a graph file; any problem is a FormatError naming the file and where in it."""
    return loads(read_capped(path, "a graph file"), str(Path(path)))


def loads(data: bytes | str, source: str = "<string>") -> Graph:
    """Parse a graph document; `source` names it in errors. (pydantic parses and validates it
    in one go; the garbage collector is paused meanwhile: `graphkit.gcpause`.)"""
    if isinstance(data, str):
        data = data.encode("utf-8", errors="surrogatepass")
    if len(data) > max_file_bytes():
        raise FormatError(f"{source}: {len(data)} bytes is over the limit of {max_file_bytes()}")
    with gc_paused():
        try:
            graph = Graph.model_validate_json(data)
        except ValidationError as exc:
            raise FormatError(f"{source}: {_describe(exc)}") from None
        except (ValueError, RecursionError) as exc:
            raise FormatError(f"{source}: {_shorten(str(exc))}") from None
        # The parser reads NaN, Infinity and 1e999 as floats; JSON has no such numbers, and
        # saving them would fail, so free-form values must hold finite numbers only (tensors
        # check theirs).
        values = [("metadata", graph.metadata)]
        values += [(i, n.attributes) for i, n in enumerate(graph.nodes)
                   if n.attributes and not _all_finite(n.attributes.values())]
        for where, value in values:
            found = _non_finite(value, where if isinstance(where, str) else
                                f"nodes[{where}].attributes")
            if found:
                problem = f"{found}: not a finite number (JSON has no NaN, Infinity)"
                raise FormatError(f"{source}: {_shorten(problem)}")
        return graph


def _all_finite(values: Iterable[Any]) -> bool:
    """Whether JSON values hold no NaN or infinity: `_non_finite` without building paths, for
    the values of a node's attributes (flat, mostly: nested ones take a recursion)."""
    for value in values:
        kind = type(value)  # (JSON gives exact types)
        if kind is float:
            if not math.isfinite(value):
                return False
        elif kind is dict:
            if not _all_finite(value.values()):
                return False
        elif kind is list and not _all_finite(value):
            return False
    return True


def _non_finite(value: Any, where: str) -> str | None:
    """Where in a JSON value the first non-finite float is, or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else where
    if isinstance(value, dict):
        items = [(f"{where}.{key}", item) for key, item in value.items()]
    elif isinstance(value, list):
        items = [(f"{where}[{i}]", item) for i, item in enumerate(value)]
    else:
        return None
    for path, item in items:
        found = _non_finite(item, path)
        if found:
            return found
    return None


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    newer = [e for e in errors if e["loc"] == ("format_version",) and "newer" in e["msg"]]
    if newer:
        return _shorten(newer[0]["msg"].removeprefix("Value error, "))
    parts = []
    for error in errors[:MAX_ERRORS_SHOWN]:
        where = _location(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(_shorten(f"{where}: {message}" if where else message))
    more = len(errors) - MAX_ERRORS_SHOWN
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def _shorten(text: str) -> str:
    if len(text) <= MAX_ERROR_CHARS:
        return text
    return f"{text[: MAX_ERROR_CHARS - 30]}... ({len(text)} characters)"


def _location(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in ("function-after[_check_payload(), Tensor]",) or "function-" in str(part):
            continue
        else:
            text += ("." if text else "") + str(part)
    return text


def dumps(graph: Graph) -> str:
    """The graph as JSON: defaults left out, one line per node, input, output and constant.

    NaN or Infinity in metadata or attributes, which JSON cannot hold, is a FormatError.
    """
    try:
        return _dumps(graph)
    except ValueError as exc:
        raise FormatError(f"graph {graph.name!r} cannot be written as JSON: {exc}") from None


def _dumps(graph: Graph) -> str:
    raw = graph.model_dump(mode="json", exclude_defaults=True)
    document: dict[str, Any] = {"format_version": FORMAT_VERSION}
    for key in ("name", "metadata", "inputs", "outputs", "constants", "nodes"):
        if key in raw:
            document[key] = raw[key]
    document["constants"] = [_name_first(c) for c in document.get("constants", [])]
    document["nodes"] = [_shorthand_node(n) for n in document.get("nodes", [])]
    document = {k: v for k, v in document.items() if v != []}
    lines = ["{"]
    items = list(document.items())
    for position, (key, value) in enumerate(items):
        comma = "," if position < len(items) - 1 else ""
        if isinstance(value, list) and value:
            lines.append(f"  {json.dumps(key)}: [")
            for i, item in enumerate(value):
                tail = "," if i < len(value) - 1 else ""
                lines.append(f"    {_compact(item)}{tail}")
            lines.append(f"  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {_compact(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _name_first(item: dict[str, Any]) -> dict[str, Any]:
    return {"name": item["name"], **{k: v for k, v in item.items() if k != "name"}}


def _shorthand_node(node: dict[str, Any]) -> dict[str, Any]:
    """Leave out a node's name where it is its first output's name (the loader's default)."""
    if node["name"] == node["outputs"][0]:
        return {k: v for k, v in node.items() if k != "name"}
    return node


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))


def save_json(graph: Graph, path: str | os.PathLike[str]) -> None:
    text = dumps(graph)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate in a name or string
        raise FormatError(f"{path}: graph {graph.name!r} is not valid UTF-8: {exc}") from None
    write_atomic(path, data)
