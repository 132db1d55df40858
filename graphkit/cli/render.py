"""`graphkit render`: draw a graph as the lecture does, values in green and gradients in red."""

from __future__ import annotations

from pathlib import Path

import click

import graphkit
from graphkit.cli.inputs import blaming, collect_inputs, graph_argument, input_options, load_graph
from graphkit.cli.output import count
from graphkit.draw import EXTENSIONS, DrawError, format_for, require_dot
from graphkit.errors import InputError
from graphkit.io.atomic import write_atomic

STDOUT = "-"


def _check_output(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """-o's extension chooses the format; anything else is a usage error (exit 2)."""
    if value != STDOUT and Path(value).suffix.lower() not in EXTENSIONS:
        raise click.BadParameter(
            f"{value!r} does not end in .svg, .png or .dot (or .gv): the extension chooses "
            "the format; - writes DOT to stdout", ctx=ctx, param=param,
        )
    return value


@click.command("render", short_help="Draw a graph, with its values and gradients (SVG, PNG, DOT).")
@graph_argument
@input_options
@click.option("--grad", is_flag=True,
              help="Also label every wire with its gradient (red), under its value (green).")
@click.option("--of", metavar="OUTPUT",
              help="The output to differentiate (needed with --grad when the graph has several).")
@click.option("-o", "--output", required=True, metavar="OUT.{svg,png,dot}", callback=_check_output,
              help="The file to write, replaced atomically; its extension chooses the format. "
              "SVG and PNG need Graphviz's dot program; - writes DOT to stdout.")
def render_command(
    graph: str, pairs: tuple[str, ...], inputs_file: str | None, grad: bool, of: str | None,
    output: str,
) -> None:
    """Draw GRAPH: each gate labelled with its op, each wire with its value.

    With input values (--input, --inputs, or GRAPH's sibling NAME.inputs.json) every wire
    shows its forward value in green, a number or, for a tensor, its dtype, shape, norm, min
    and max; --grad adds the gradient of the output in red under it. Without any, the drawing
    shows the structure: ops, value names, declared dtypes and shapes, and the constants.
    Inputs are ellipses, constants grey boxes (bold when trainable), outputs double
    ellipses; a plugin's gate shows its domain. DOT needs nothing installed; SVG and PNG are
    laid out by Graphviz's dot (Debian/Ubuntu: apt-get install graphviz).

    \b
    Examples:
      graphkit render examples/sigmoid_neuron.json --grad -o sigmoid_neuron.svg
      graphkit render examples/wx_norm.json --grad -o wx_norm.dot
      graphkit render examples/add_mul.json --input x=1 -o -
    """
    if of is not None and not grad:
        raise click.UsageError("--of chooses the output to differentiate: add --grad")
    format = "dot" if output == STDOUT else format_for(output)
    if format != "dot":
        try:
            require_dot(format)  # before running the graph
        except DrawError as exc:
            raise DrawError(f"cannot write {output}: {exc}") from None
    values = collect_inputs(graph, pairs, inputs_file)
    model = load_graph(graph)
    if grad and not values and model.inputs:
        names = ", ".join(info.name for info in model.inputs)
        raise InputError(f"{graph}: --grad needs input values: give --input NAME=VALUE or "
                         f"--inputs FILE (inputs: {names})")
    with blaming(graph):
        drawing = graphkit.render(model, values or None, grad=grad, of=of)
    if output == STDOUT:
        click.echo(drawing.dot, nl=False)
        return
    write_atomic(output, drawing.to_bytes(format))
    shown = "structure only: no input values" if drawing.result is None else "values"
    if drawing.result is not None and grad:
        shown += f" and gradients of {of or model.outputs[0].name}"
    click.echo(f"wrote {output} ({format.upper()}, {count(len(model.nodes), 'gate')}; {shown})")
