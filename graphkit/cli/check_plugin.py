"""`graphkit check-plugin`: run the checks graphkit runs on its own ops on a plugin's ops."""

from __future__ import annotations

import click

from graphkit.cli import output
from graphkit.errors import GraphkitError


@click.command("check-plugin", short_help="Check a plugin's ops as graphkit checks its own.")
@click.argument("name")
@click.option("--examples", type=click.IntRange(min=1), default=20, show_default=True,
              help="Points (the op's own samples) per check.")
@click.option("--json", "as_json", is_flag=True,
              help='Print one JSON object {"plugin", "ok", "failed", "ops": [...]}.')
def check_plugin_command(name: str, examples: int, as_json: bool) -> None:
    """Check every op of plugin NAME: gradient, contracts, attributes and ONNX export.

    NAME is an entry-point or distribution name of the `graphkit` group, an importable module,
    a .py file, or graphkit.ops (the built-in ops). The plugin is loaded alone beside the
    built-ins; each of its ops gets graphkit.testing.check_gate: its sample, its vjp against
    central differences, its contracts (dtype, shapes, no mutation), its attribute model and
    its ONNX export run in onnxruntime. Exits 1 if any check fails.

    \b
    Examples:
      graphkit check-plugin graphkit.ops --examples 3
      graphkit check-plugin graphkit.ops --examples 2 --json
    """
    from graphkit.testing import check_gate, plugin_gates

    reports = [check_gate(op, examples=examples) for op in plugin_gates(name)]
    failed = sum(len(report.failed) for report in reports)
    if as_json:
        output.print_json({"plugin": name, "ok": failed == 0, "failed": failed,
                           "ops": [report.to_dict() for report in reports]})
    else:
        title = (f"plugin {name}: {output.count(len(reports), 'op')}, "
                 f"{output.count(failed, 'failed check')}")
        table = output.table(title, "op", "check", "status", "detail", wrap=("detail",))
        for report in reports:
            for check in report.checks:
                status = "FAILED" if check.status == "failed" else check.status
                table.add_row(report.op.qualname, check.name, status, check.detail)
        output.show(table)
    if failed:
        raise GraphkitError(f"{output.count(failed, 'check')} failed in plugin {name}")
