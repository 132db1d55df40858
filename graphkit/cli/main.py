"""The `graphkit` command group and `main()`, the console-script entry point.

The library never prints or exits; here any GraphkitError becomes one `error: ...` line on
stderr with exit code 1, and Python warnings become one `warning: ...` line each, so scripts
and people see the message without tracebacks or file/line noise. Usage errors exit 2 (click).
"""

from __future__ import annotations

import importlib.metadata
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

import click

from graphkit.cli.check_plugin import check_plugin_command
from graphkit.cli.client import pull_command, push_command
from graphkit.cli.db import db_group
from graphkit.cli.execute import execute_command
from graphkit.cli.export import export_command
from graphkit.cli.gradcheck import gradcheck_command
from graphkit.cli.import_ import import_command
from graphkit.cli.new_plugin import new_plugin_command
from graphkit.cli.ops import ops_command
from graphkit.cli.plugins import plugin_option, plugins_command, use_plugins
from graphkit.cli.render import render_command
from graphkit.cli.serve import serve_command
from graphkit.cli.train import train_command
from graphkit.cli.validate import validate_command
from graphkit.errors import GraphkitError

DISTRIBUTION = "graphkit-backprop"


def version() -> str:
    """The installed distribution's version ("unknown" when run from a bare source tree)."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def one_line(text: str) -> str:
    """A message squeezed onto one line, so `error:`/`warning:` lines stay greppable."""
    return " ".join(text.split()) or "(no message)"


def fail(exc: GraphkitError) -> NoReturn:
    """Report a GraphkitError as `error: <message>` on stderr and exit 1."""
    message = str(exc) or type(exc).__name__
    click.echo(f"error: {one_line(message)}", err=True)
    sys.exit(1)


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int,
    file: TextIO | None = None, line: str | None = None,
) -> None:
    """warnings.showwarning for the CLI: `warning: <message>`, without file, line or source."""
    click.echo(f"warning: {one_line(str(message))}", err=True)


class GraphkitGroup(click.Group):
    """A group whose commands report GraphkitError and warnings as one line each."""

    def invoke(self, ctx: click.Context) -> Any:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            try:
                return super().invoke(ctx)
            except GraphkitError as exc:
                fail(exc)


@click.group(cls=GraphkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version(), "--version", "-V", prog_name="graphkit",
                      message="%(prog)s %(version)s")
@plugin_option
def cli(plugin: tuple[str, ...]) -> None:
    """graphkit: computational graphs as data, ops as plugins, backpropagation on numpy.

    A graph is a file (the extension chooses the format: .json or .onnx) of nodes that apply
    ops to named values. Run it forward and backward, check it, check its gradients against
    finite differences, or convert it to and from ONNX. Errors are one `error: ...` line on
    stderr and exit code 1; usage errors exit 2.

    \b
    Examples:
      graphkit validate examples/add_mul.json
      graphkit execute examples/add_mul.json --inputs examples/add_mul.inputs.json --grad
      graphkit gradcheck examples/sigmoid_neuron.json
      graphkit -p examples/plugins/twice.py ops
    """
    use_plugins(plugin)


cli.add_command(execute_command)
cli.add_command(validate_command)
cli.add_command(gradcheck_command)
cli.add_command(export_command)
cli.add_command(import_command)
cli.add_command(ops_command)
cli.add_command(plugins_command)
cli.add_command(check_plugin_command)
cli.add_command(new_plugin_command)
cli.add_command(render_command)
cli.add_command(train_command)
cli.add_command(db_group)
cli.add_command(serve_command)
cli.add_command(push_command)
cli.add_command(pull_command)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: run the group; no GraphkitError escapes as a traceback."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="graphkit")
    except GraphkitError as exc:  # raised outside a command, e.g. while importing plugins
        fail(exc)


if __name__ == "__main__":
    main()
