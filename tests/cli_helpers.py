"""What the CLI tests share: running `graphkit` in-process and checking its one-line errors."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner, Result

from graphkit.cli.main import cli


def run(*args: str) -> Result:
    """`graphkit ARGS...` in this process (stdout and stderr captured apart)."""
    return CliRunner().invoke(cli, list(args), prog_name="graphkit")


def run_json(*args: str) -> Any:
    """The one JSON document a command prints with --json."""
    result = run(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def assert_error(result: Result, *fragments: str) -> str:
    """Exit 1 and exactly one stderr line `error: ...` (no traceback) containing every
    fragment; the line is returned."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]
