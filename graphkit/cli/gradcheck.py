"""`graphkit gradcheck`: analytic gradients against central differences, per value."""

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
from graphkit.errors import GraphkitError


@click.command("gradcheck", short_help="Check gradients against finite differences.")
@graph_argument
@input_options
@gradient_options
@click.option("--tolerance", type=click.FloatRange(min=0.0), default=1e-6, show_default=True,
              help="The largest relative error that passes.")
@click.option("--json", "as_json", is_flag=True,
              help='Print one JSON object {"ok", "tolerance", "errors", "skipped"}.')
def gradcheck_command(
    graph: str, pairs: tuple[str, ...], inputs_file: str | None, wrt: tuple[str, ...],
    of: str | None, tolerance: float, as_json: bool,
) -> None:
    """Check GRAPH's backpropagated gradients against numerical ones (finite differences).

    Runs in float64 and compares, along random directions, the analytic gradient of each value
    with a central difference; prints the worst relative error per value and exits 1 if any is
    above --tolerance. By default the values of `execute --grad` are checked; intermediates
    given with --wrt are skipped (they cannot be moved from outside).

    \b
    Examples:
      graphkit gradcheck examples/sigmoid_neuron.json
      graphkit gradcheck examples/two_layer_net.json --inputs examples/two_layer_net.inputs.json
    """
    values = collect_inputs(graph, pairs, inputs_file)
    model = load_graph(graph)
    registry = graphkit.default_registry()
    with blaming(graph):
        names = list(wrt) if wrt else parameters(model)
        report = graphkit.gradcheck(
            model, values, wrt=names, of=of, tolerance=tolerance, registry=registry
        )
    skipped = [name for name in dict.fromkeys(names) if name not in report.errors]
    failed = [name for name, error in report.errors.items() if not error <= tolerance]  # NaN fails
    if as_json:
        output.print_json({
            "ok": report.ok, "tolerance": tolerance, "errors": report.errors, "skipped": skipped,
        })
    else:
        table = output.table(
            f"gradient check, tolerance {tolerance:g}", "value", "worst relative error", "result",
            wrap=(),
        )
        for name, error in report.errors.items():
            table.add_row(name, f"{error:.2e}", "FAIL" if name in failed else "ok")
        for name in skipped:
            table.add_row(name, "-", "skipped (intermediate)")
        output.show(table)
    if failed:
        worst = max(report.errors[name] for name in failed)
        raise GraphkitError(
            f"gradient check failed for {', '.join(failed)} "
            f"(worst relative error {worst:.2e} > tolerance {tolerance:g})"
        )
