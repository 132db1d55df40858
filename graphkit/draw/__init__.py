"""Pictures of graphs, as the lecture draws them: gates, and wires labelled with their values
(green) and gradients (red). DOT needs nothing installed; SVG and PNG need Graphviz's `dot`.

`labels` writes the text, `dot` the DOT source, `graphviz` runs `dot`, `drawing` runs the
graph and holds the picture (`render`, named like the `graphkit render` command).
"""

from graphkit.draw.dot import GRADIENT_COLOR, VALUE_COLOR, to_dot
from graphkit.draw.drawing import EXTENSIONS, Drawing, every_value, format_for, render
from graphkit.draw.graphviz import DrawError, dot_program, render_dot, require_dot

__all__ = ["EXTENSIONS", "GRADIENT_COLOR", "VALUE_COLOR", "DrawError", "Drawing", "dot_program",
           "every_value", "format_for", "render", "render_dot", "require_dot", "to_dot"]
