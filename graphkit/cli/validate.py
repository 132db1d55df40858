"""`graphkit validate`: check a graph file without running it."""

from __future__ import annotations

import click

import graphkit
from graphkit.cli.inputs import blaming, graph_argument, load_graph
from graphkit.cli.output import count


@click.command("validate", short_help="Check a graph file without running it.")
@graph_argument
def validate_command(graph: str) -> None:
    """Check that GRAPH loads and obeys every rule, listing every problem at once.

    Checks the file format, that every op is registered and its attributes are valid, that
    every value is defined once and used after it is defined, that there is no cycle, and that
    shapes agree. Exits 1 with one `error:` line naming every problem.

    \b
    Example:
      graphkit validate examples/sigmoid_neuron.json
    """
    model = load_graph(graph)
    with blaming(graph):
        graphkit.validate(model, graphkit.default_registry())
    click.echo(
        f"{graph}: ok ({count(len(model.nodes), 'node')}, {count(len(model.inputs), 'input')}, "
        f"{count(len(model.outputs), 'output')})"
    )
