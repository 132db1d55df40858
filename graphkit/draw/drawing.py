"""`render`: run a graph keeping every value (and every gradient), and hold the picture.

`execute` returns only a graph's outputs and the gradients asked for; a drawing labels every
wire. So the graph is run as a copy whose outputs are all of its values, and the gradients
are asked for every float value (intermediates included, which `wrt` allows), from the one
output `of` names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graphkit.draw.dot import to_dot
from graphkit.draw.graphviz import DrawError, dot_program, render_dot
from graphkit.errors import InputError
from graphkit.execute import Result, execute
from graphkit.io.atomic import write_atomic
from graphkit.model import Graph, ValueInfo
from graphkit.registry import Registry

EXTENSIONS = {".svg": "svg", ".png": "png", ".dot": "dot", ".gv": "dot"}
"""A file's extension chooses what `Drawing.save` writes."""


@dataclass(frozen=True)
class Drawing:
    """A graph's picture: its DOT source, rendered by Graphviz on demand.

    In a notebook it shows itself as SVG (when Graphviz's `dot` is installed; otherwise the
    notebook falls back to the text, which is the DOT source).
    """

    dot: str
    result: Result | None = None
    """Every value of the run (`.outputs`) and every gradient (`.gradients`), when it ran."""

    def to_bytes(self, format: str) -> bytes:
        """The picture as `format`: "dot" (no program needed), "svg" or "png" (Graphviz)."""
        if format == "dot":
            return self.dot.encode("utf-8")
        return render_dot(self.dot, format)

    def svg(self) -> bytes:
        return self.to_bytes("svg")

    def png(self) -> bytes:
        return self.to_bytes("png")

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the picture atomically; the extension (.svg, .png, .dot) chooses the format,
        which is returned."""
        format = format_for(path)
        write_atomic(path, self.to_bytes(format))
        return format

    def _repr_svg_(self) -> str | None:
        """Jupyter's hook: the SVG, or None (the plain repr) when Graphviz is missing."""
        if dot_program() is None:
            return None
        return self.svg().decode("utf-8")

    def __str__(self) -> str:
        return self.dot


def format_for(path: str | os.PathLike[str]) -> str:
    """"svg", "png" or "dot" from a file name; any other extension is a DrawError."""
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        known = ", ".join(EXTENSIONS)
        raise DrawError(f"cannot draw {os.fspath(path)}: unknown extension "
                        f"{suffix or '(none)'}; use one of {known}")
    return EXTENSIONS[suffix]


def render(
    graph: Graph,
    inputs: Mapping[str, Any] | None = None,
    *,
    grad: bool = False,
    of: str | None = None,
    registry: Registry | None = None,
) -> Drawing:
    """Draw `graph`: with `inputs`, every wire shows its value; with `grad` too, its gradient
    (of the only output, or of the value `of` names; `of` matters only with `grad`). Without
    inputs, the structure only.

    A graph without inputs runs as it is. Running needs the graph to be valid and its ops
    registered (`registry`, default: `graphkit.default_registry()`); drawing the structure
    does not.
    """
    if inputs is None and graph.inputs:
        if grad:
            names = ", ".join(info.name for info in graph.inputs)
            raise InputError(f"graph {graph.name!r} needs input values to draw gradients "
                             f"(inputs: {names})")
        return Drawing(to_dot(graph))
    result = every_value(graph, inputs or {}, grad=grad, of=of, registry=registry)
    return Drawing(to_dot(graph, result), result)


def every_value(
    graph: Graph,
    inputs: Mapping[str, Any],
    *,
    grad: bool = False,
    of: str | None = None,
    registry: Registry | None = None,
) -> Result:
    """Run `graph` and return every value by name (`.outputs`), and with `grad` the gradient
    of the output (or `of`) with respect to every float value (`.gradients`)."""
    names = [info.name for info in graph.inputs] + [c.name for c in graph.constants]
    names += [name for node in graph.nodes for name in node.outputs]
    names = list(dict.fromkeys(names))
    declared = {info.name for info in graph.outputs}
    everything = graph.model_copy(update={
        "outputs": [*graph.outputs, *(ValueInfo(name=n) for n in names if n not in declared)],
    })
    forward = execute(everything, inputs, registry=registry)
    if not grad:
        return Result(dict(forward.outputs))
    target = of if of is not None else _only_output(graph)
    floats = [name for name, value in forward.outputs.items()
              if np.asarray(value).dtype.kind == "f"]
    backward = execute(everything, inputs, wrt=floats, of=target, registry=registry)
    return Result(dict(backward.outputs), dict(backward.gradients))


def _only_output(graph: Graph) -> str:
    """The output to differentiate when none is named: the graph's only one."""
    names = [info.name for info in graph.outputs]
    if len(names) > 1:
        raise InputError(f"graph {graph.name!r} has {len(names)} outputs ({', '.join(names)}); "
                         "say which to differentiate with of=")
    return names[0]
