"""`graphkit new-plugin`: write a plugin package with one example gate, ready to pip-install."""

from __future__ import annotations

import click

from graphkit.scaffold import module_name, write_plugin


@click.command("new-plugin", short_help="Write a new plugin package with one example gate.")
@click.argument("name")
@click.option("--dir", "directory", default=".", show_default=True, metavar="DIR",
              help="The folder to write NAME/ in.")
@click.option("--domain", metavar="DOMAIN",
              help="The domain of the plugin's ops, as graphs name them (DOMAIN::Swish). "
              "Default: the module name, NAME with '-' turned to '_'.")
def new_plugin_command(name: str, directory: str, domain: str | None) -> None:
    """Write DIR/NAME/: a plugin package with one gate, ready to pip-install and test.

    It holds pyproject.toml (distribution NAME, entry point in the group `graphkit`), the
    package (NAME with '-' turned to '_') with one gate, Swish, that has a gradient rule,
    sample inputs and an ONNX decomposition, tests/test_gates.py (graphkit.testing's checks
    and a graph run with gradients, passing as written), swish.json (a graph using the gate)
    and README.md. A folder that exists and is not empty is left alone (exit 1).
    docs/plugins.md explains every file.

    \b
    Examples:
      graphkit new-plugin graphkit-my-gates
      graphkit new-plugin my-gates --dir plugins --domain com.example.gates
    """
    folder = write_plugin(name, directory, domain)
    module = module_name(name)
    click.echo(f"wrote {folder}/ (plugin {module}, one gate: Swish)")
    click.echo(f"next: cd {folder} && pip install -e '.[test]' && graphkit check-plugin "
               f"{module} && pytest")
