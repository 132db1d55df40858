"""`graphkit execute`: run a graph forward and, when asked, backpropagate."""

from __future__ import annotations

import click

import graphkit
from graphkit.cli import output
from graphkit.cli.inputs import (
    blaming,
    collect_inputs,
    gradient_options,
    graph_argument,
    input_options,
    load_graph,
    parameters,
)


@click.command("execute", short_help="Run a graph forward, and backward with --grad.")
@graph_argument
@input_options
@click.option("--grad", is_flag=True, help="Also backpropagate (implied by --wrt).")
@gradient_options
@click.option("--json", "as_json", is_flag=True,
              help='Print one JSON object {"outputs": ..., "gradients": ...} and nothing else.')
def execute_command(
    graph: str, pairs: tuple[str, ...], inputs_file: str | None, grad: bool,
    wrt: tuple[str, ...], of: str | None, as_json: bool,
) -> None:
    """Run GRAPH on the given inputs and print its outputs, and with --grad its gradients.

    Inputs come from --inputs FILE (.json or .npz; by default GRAPH's sibling NAME.inputs.json
    if it exists) and from --input NAME=VALUE, which wins. --grad differentiates the output
    with respect to every float input and every trainable constant; --wrt picks values
    instead (any value: input, constant or intermediate). Tables show 4 significant digits;
    --json prints full precision for scripts.

    \b
    Examples:
      graphkit execute examples/add_mul.json --inputs examples/add_mul.inputs.json --grad
      graphkit execute examples/add_mul.json --input x=-2 --input y=5 --input z=-4 --wrt q
      graphkit execute examples/wx_norm.json --grad --json
    """
    if of is not None and not (grad or wrt):
        raise click.UsageError("--of chooses the output to differentiate: add --grad or --wrt")
    values = collect_inputs(graph, pairs, inputs_file)
    model = load_graph(graph)
    registry = graphkit.default_registry()
    with blaming(graph):
        names = list(wrt) if wrt else parameters(model) if grad else None
        result = graphkit.execute(model, values, wrt=names, of=of, registry=registry)
    if as_json:
        output.print_json({
            "outputs": {k: output.to_jsonable(v) for k, v in result.outputs.items()},
            "gradients": {k: output.to_jsonable(v) for k, v in result.gradients.items()},
        })
        return
    tables = [output.values_table("outputs", result.outputs)]
    if names is not None:
        target = of or next(iter(result.outputs))
        tables.append(output.values_table(f"gradients of {target}", result.gradients))
    output.show(*tables)
