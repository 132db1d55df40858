"""`graphkit export`: write a graph as an ONNX model."""

from __future__ import annotations

import click

import graphkit
from graphkit.cli.inputs import blaming, graph_argument, load_graph, output_option
from graphkit.cli.output import count
from graphkit.io.atomic import write_atomic


@click.command("export", short_help="Write a graph as an ONNX model.")
@graph_argument
@output_option(".onnx", "ONNX", "graphkit import turns ONNX into JSON")
@click.option("--opset", type=click.IntRange(min=1), metavar="N",
              help="The ONNX opset to target. Default: the newest that both the installed onnx "
              "and onnxruntime support.")
def export_command(graph: str, output: str, opset: int | None) -> None:
    """Write GRAPH (any format graphkit reads) as the ONNX model OUT.onnx.

    Each node becomes one ONNX node through its op's ONNX mapping; constants become
    initializers, and what ONNX has no field for (metadata, trainable flags) travels in
    metadata_props, so `graphkit import` gives the graph back. The model passes onnx.checker
    before anything is written, and it is written atomically: on any error (an op without
    a mapping for the opset, an input without a declared shape) OUT.onnx is left as it was.

    \b
    Examples:
      graphkit export examples/sigmoid_neuron.json -o sigmoid_neuron.onnx
      graphkit export examples/two_layer_net.json -o two_layer_net.onnx --opset 17
    """
    from graphkit.io.onnx_export import to_onnx  # onnx is imported only when needed

    model = load_graph(graph)
    registry = graphkit.default_registry()
    with blaming(graph):
        onnx_model = to_onnx(model, opset, registry=registry)
    write_atomic(output, onnx_model.SerializeToString())
    written = next(o.version for o in onnx_model.opset_import if o.domain in ("", "ai.onnx"))
    click.echo(f"wrote {output} (opset {written}, {count(len(onnx_model.graph.node), 'node')})")
