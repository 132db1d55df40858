"""`graphkit import`: read an ONNX model into a graphkit JSON graph."""

from __future__ import annotations

import click

import graphkit
from graphkit.cli.inputs import blaming, output_option
from graphkit.cli.output import count


@click.command("import", short_help="Turn an ONNX model into a graphkit JSON graph.")
@click.argument("model", metavar="MODEL.onnx")
@output_option(".json", "graphkit JSON", "graphkit export turns a graph into ONNX")
def import_command(model: str, output: str) -> None:
    """Read the ONNX model MODEL.onnx and write it as the graphkit JSON graph OUT.json.

    Each ONNX node becomes the registered op whose ONNX mapping claims it; initializers and
    Constant nodes become constants. A model using ONNX ops no op claims is refused with one
    error listing each of them and how many nodes use it. The graph is validated before it
    is written (atomically), so OUT.json is either a graph graphkit can run or left as it was.
    Commands such as `execute` also read .onnx files directly; import gives an editable copy.

    \b
    Examples:
      graphkit export examples/add_mul.json -o add_mul.onnx
      graphkit import add_mul.onnx -o add_mul.json
    """
    from graphkit.io.onnx_import import load_onnx  # onnx is imported only when needed

    registry = graphkit.default_registry()
    graph = load_onnx(model, registry)
    with blaming(model):
        graphkit.validate(graph, registry)
    graphkit.save(graph, output)
    click.echo(
        f"wrote {output} ({count(len(graph.nodes), 'node')}, "
        f"{count(len(graph.constants), 'constant')})"
    )
