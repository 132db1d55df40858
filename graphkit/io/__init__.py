"""Load and save graphs; the file's extension chooses the format."""

from __future__ import annotations

import os
from pathlib import Path

from graphkit.errors import FormatError
from graphkit.io.json import dumps, load_json, loads, save_json
from graphkit.model import Graph

__all__ = ["dumps", "load", "loads", "save"]


def _load_onnx(path: str | os.PathLike[str]) -> Graph:
    from graphkit.io.onnx_import import load_onnx  # onnx is imported only when needed

    return load_onnx(path)


def _save_onnx(graph: Graph, path: str | os.PathLike[str]) -> None:
    from graphkit.io.onnx_export import save_onnx

    save_onnx(graph, path)


FORMATS = {".json": (load_json, save_json), ".onnx": (_load_onnx, _save_onnx)}


def _format(path: str | os.PathLike[str]):
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise FormatError(
            f"{path}: unknown file type {suffix or '(no extension)'}; "
            f"graphkit reads and writes {', '.join(sorted(FORMATS))}"
        )
    return FORMATS[suffix]


def load(path: str | os.PathLike[str]) -> Graph:
    """Read a graph from a file, the format chosen by extension."""
    return _format(path)[0](path)


def save(graph: Graph, path: str | os.PathLike[str]) -> None:
    """Write a graph to a file atomically, the format chosen by extension."""
    _format(path)[1](graph, path)
