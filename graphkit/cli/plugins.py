"""`graphkit plugins`: which plugins loaded, what they contribute, and why any failed."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import click

import graphkit
from graphkit.cli import output
from graphkit.registry import PluginInfo, load_registry, reset_default_registry

plugin_option = click.option(
    "-p", "--plugin", "plugin", multiple=True, metavar="MODULE_OR_FILE",
    help="Load a plugin for this run: a .py file or a module's import name (repeatable; "
         "after those in GRAPHKIT_PLUGINS).",
)


def use_plugins(specs: Sequence[str]) -> None:
    """Give this run a default registry with the -p plugins too; the old one comes back after.

    Their failures are contained like any plugin's (a `warning:` line, or with
    GRAPHKIT_STRICT_PLUGINS=1 the run's `error:` line).
    """
    if not specs:
        return
    previous = reset_default_registry(load_registry(plugins=specs))
    click.get_current_context().call_on_close(lambda: reset_default_registry(previous))


@click.command("plugins", short_help="List the plugins, their ops and load errors.")
@click.option("--json", "as_json", is_flag=True,
              help='Print one JSON object {"plugins": [...]}.')
def plugins_command(as_json: bool) -> None:
    """List every plugin: where it came from, the ops it adds, and its load errors.

    "from" is an installed plugin's distribution and version, or the .py file or "module"
    named with -p or GRAPHKIT_PLUGINS, or "in-process"; --json has both (distribution,
    version, origin). A plugin that fails to import or register is skipped with a warning, so
    graphkit keeps working; this is where to see why (set GRAPHKIT_STRICT_PLUGINS=1 to make
    failures fatal, GRAPHKIT_DISABLE_PLUGINS=name,... to skip installed ones).

    \b
    Examples:
      graphkit plugins
      graphkit plugins --json
      graphkit -p examples/plugins/twice.py plugins
    """
    registry = graphkit.default_registry()
    infos = list(registry.plugins.values())
    if as_json:
        output.print_json({"plugins": [dataclasses.asdict(info) for info in infos]})
        return
    table = output.table(
        output.count(len(infos), "plugin"), "name", "from", "ops", "errors",
        wrap=("from", "ops", "errors"),
    )
    for info in infos:
        table.add_row(
            info.name, source(info),
            f"{len(info.ops)}: {output.joined(info.ops)}" if info.ops else "0",
            "; ".join(info.errors) or "-",
        )
    output.show(table)


def source(info: PluginInfo) -> str:
    """Where a plugin came from, for people: its distribution and version, else its origin (a
    file's path relative to the working folder when it is inside it)."""
    if info.distribution:
        return " ".join(filter(None, (info.distribution, info.version)))
    path = Path(info.origin)
    if path.is_absolute():
        with contextlib.suppress(ValueError):
            return str(path.relative_to(Path.cwd()))
    return info.origin
