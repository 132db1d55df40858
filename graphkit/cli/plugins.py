"""`graphkit plugins`: which plugins loaded, what they contribute, and why any failed."""

from __future__ import annotations

import dataclasses

import click

import graphkit
from graphkit.cli import render


@click.command("plugins", short_help="List the plugins, their ops and load errors.")
@click.option("--json", "as_json", is_flag=True,
              help='Print one JSON object {"plugins": [...]}.')
def plugins_command(as_json: bool) -> None:
    """List every plugin: its distribution and version, the ops it adds, and its load errors.

    A plugin that fails to import or register is skipped with a warning, so graphkit keeps
    working; this is where to see why (set GRAPHKIT_STRICT_PLUGINS=1 to make failures fatal,
    GRAPHKIT_DISABLE_PLUGINS=name,... to skip some).

    \b
    Examples:
      graphkit plugins
      graphkit plugins --json
    """
    registry = graphkit.default_registry()
    infos = list(registry.plugins.values())
    if as_json:
        render.print_json({"plugins": [dataclasses.asdict(info) for info in infos]})
        return
    table = render.table(
        render.count(len(infos), "plugin"), "name", "distribution", "version", "ops", "errors",
        wrap=("ops", "errors"),
    )
    for info in infos:
        table.add_row(
            info.name, info.distribution or "-", info.version or "-",
            f"{len(info.ops)}: {render.joined(info.ops)}" if info.ops else "0",
            "; ".join(info.errors) or "-",
        )
    render.show(table)
