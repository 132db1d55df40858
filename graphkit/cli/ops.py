"""`graphkit ops`: every op the registry knows, and which plugin provides it."""

from __future__ import annotations

from typing import Any

import click

import graphkit
from graphkit.cli import output
from graphkit.model import OpRef
from graphkit.opdef import OpDef

DOC_WIDTH = 60


def _short(doc: str) -> str:
    """The first line of a doc, cut to DOC_WIDTH characters so the table stays readable."""
    lines = doc.strip().splitlines()
    line = lines[0].strip() if lines else ""
    return line if len(line) <= DOC_WIDTH else line[: DOC_WIDTH - 1].rstrip() + "…"


def describe(op: OpDef, plugin: str) -> dict[str, Any]:
    """One op as data: `op` is how a graph file names it (domain and @1 left out by default)."""
    return {
        "op": str(OpRef(domain=op.domain, name=op.name, version=op.version)),
        "domain": op.domain,
        "name": op.name,
        "version": op.version,
        "inputs": op.num_inputs,
        "variadic": op.variadic,
        "outputs": op.num_outputs,
        "plugin": plugin,
        "doc": op.doc,
    }


@click.command("ops", short_help="List the registered ops.")
@click.option("--json", "as_json", is_flag=True, help='Print one JSON object {"ops": [...]}.')
def ops_command(as_json: bool) -> None:
    """List every registered op: how graphs name it, its arity, its plugin and what it does.

    The op column is what a node's "op" field says: `Name` in the built-in (empty, "-")
    domain, `domain::Name@version` otherwise (@1 may be left out); in and out count the op's
    inputs and outputs.

    \b
    Examples:
      graphkit ops
      graphkit ops --json
    """
    registry = graphkit.default_registry()
    ops = sorted(registry.ops(), key=lambda op: op.key)
    rows = [describe(op, registry.owner(op)) for op in ops]
    if as_json:
        output.print_json({"ops": rows})
        return
    table = output.table(
        output.count(len(rows), "op"), "op", "domain", "version", "in", "out", "plugin", "doc",
        wrap=("doc",),
    )
    for row in rows:
        table.add_row(
            row["op"], row["domain"] or "-", str(row["version"]), str(row["inputs"]),
            str(row["outputs"]), row["plugin"], _short(row["doc"]),
        )
    output.show(table)
