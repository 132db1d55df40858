"""A graph as Graphviz DOT source, drawn the way the lecture draws a computational graph.

Gates are rounded boxes named by their op (a plugin's op with its domain underneath), graph
inputs ellipses, constants grey boxes (bold and marked `trainable` when they are parameters),
outputs double ellipses. Wires run left to right, one per consumer: a value that feeds three
gates is three wires, each labelled with it (and with its total gradient). As on the slides,
the value is written above the wire in green and the gradient below it in red: a labelled
wire is two DOT edges meeting at a small table node (`w0`, `w1`, ...) whose middle row is a
stretch of the wire. A wire between two gates also names its value. Without values, wires
show what the graph declares (dtype and shape) and constants their data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphkit.draw.labels import declared, gradient_text, markup, value_text
from graphkit.model import Graph, Node

VALUE_COLOR = "#008800"
"""Forward values, green as on the lecture's slides."""
GRADIENT_COLOR = "#cc0000"
"""Gradients, red as on the lecture's slides."""
NAME_COLOR = "#404040"
"""Value names and declared types: quieter than the numbers."""
DOMAIN_COLOR = "#606060"
PROBLEM_COLOR = "#cc0000"
CONSTANT_FILL = "#e6e6e6"
WIRE_COLOR = "#333333"
FONT = "Helvetica"

_HEADER = f"""\
digraph graphkit {{
  graph [rankdir=LR, ordering=in, nodesep=0.3, ranksep=0.3, fontname="{FONT}"];
  node [fontname="{FONT}", fontsize=12, margin="0.12,0.06"];
  edge [fontname="{FONT}", fontsize=11, arrowsize=0.6, color="{WIRE_COLOR}"];
"""


def to_dot(graph: Graph, result: Any = None) -> str:
    """The DOT source of `graph`, its wires labelled with what `result` knows.

    `result` is anything with `.outputs` and `.gradients` dicts keyed by value name: an
    `execute` Result labels the wires of the outputs (and of the values it has gradients for);
    `render(graph, inputs).result` knows every value. Without it the drawing shows the structure.
    Needs no registry and no Graphviz: any graph model can be drawn, even one not yet valid.
    """
    values: Mapping[str, Any] = dict(getattr(result, "outputs", None) or {})
    gradients: Mapping[str, Any] = dict(getattr(result, "gradients", None) or {})
    constants = {c.name: c for c in graph.constants}
    infos = {info.name: info for info in graph.inputs}
    for info in graph.outputs:
        infos.setdefault(info.name, info)

    lines = [_HEADER]
    source: dict[str, str] = {}  # value name -> the id of the node its wires start from
    gates: set[str] = set()  # values that come out of a gate (their wires name them)
    for index, info in enumerate(graph.inputs):
        source[info.name] = f"i{index}"
        lines.append(f'  i{index} [shape=ellipse, label=<{markup(info.name)}>];\n')
    for index, constant in enumerate(graph.constants):
        source.setdefault(constant.name, f"c{index}")
        mark = '<br/><font point-size="9">trainable</font>' if constant.trainable else ""
        style = "filled,bold" if constant.trainable else "filled"
        lines.append(f'  c{index} [shape=box, style="{style}", fillcolor="{CONSTANT_FILL}", '
                     f'color="#808080", label=<{markup(constant.name)}{mark}>];\n')
    for index, node in enumerate(graph.nodes):
        lines.append(f'  n{index} [shape=box, style="rounded", label=<{_gate(node)}>];\n')
        for name in node.outputs:
            source.setdefault(name, f"n{index}")
            gates.add(name)
    for index, info in enumerate(graph.outputs):
        lines.append(f'  o{index} [shape=ellipse, peripheries=2, label=<{markup(info.name)}>];\n')

    labels = 0

    def wire(name: str, target: str, named: bool) -> None:
        nonlocal labels
        if name not in source:  # an undefined value (the graph is not valid): draw it anyway
            source[name] = f"u{len(source)}"
            lines.append(f'  {source[name]} [shape=plaintext, fontcolor="{PROBLEM_COLOR}", '
                         f'label=<{markup(name)}<br/>(undefined)>];\n')
        value = values.get(name)
        if value is None and name in constants:
            value = constants[name].to_numpy()
        info = infos.get(name)
        above = [_row(name, NAME_COLOR)] if named else []
        if value is not None:
            above.append(_row(value_text(value), VALUE_COLOR))
        elif info is not None and declared(info.dtype, info.shape):
            above.append(_row(declared(info.dtype, info.shape), NAME_COLOR))
        below = [_row(gradient_text(gradients[name]), GRADIENT_COLOR)] if name in gradients else []
        if not above and not below:
            lines.append(f"  {source[name]} -> {target};\n")
            return
        label, labels = f"w{labels}", labels + 1
        lines.append(f"  {label} [shape=none, margin=0, width=0, height=0, "
                     f"label=<{_wire_label(above, below)}>];\n"
                     f"  {source[name]} -> {label}:wire:w [arrowhead=none];\n"
                     f"  {label}:wire:e -> {target};\n")

    for index, node in enumerate(graph.nodes):
        for name in node.inputs:
            wire(name, f"n{index}", named=name in gates)
    for index, info in enumerate(graph.outputs):
        wire(info.name, f"o{index}", named=False)
    lines.append("}\n")
    return "".join(lines)


def _gate(node: Node) -> str:
    """`Mul`, or `Swish` over `ai.graphkit.activations` for a plugin's op; `@2` for a version."""
    op = node.op
    name = markup(op.name + (f"@{op.version}" if op.version != 1 else ""))
    if not op.domain:
        return name
    return f'{name}<br/><font point-size="9" color="{DOMAIN_COLOR}">{markup(op.domain)}</font>'


def _row(text: str, color: str) -> str:
    return f'<tr><td cellpadding="1"><font color="{color}">{markup(text)}</font></td></tr>'


def _wire_label(above: list[str], below: list[str]) -> str:
    """The lecture's wire: a table whose middle row is a stretch of the wire itself, with the
    name and value (green) over it and the gradient (red) under it; the two edges of the wire
    meet that row at its ends."""
    wire = f'<tr><td port="wire" height="1" bgcolor="{WIRE_COLOR}"></td></tr>'
    return ('<table border="0" cellborder="0" cellspacing="0" cellpadding="0">'
            + "".join(above) + wire + "".join(below) + "</table>")
