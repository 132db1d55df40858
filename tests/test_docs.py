"""The examples in README.md and docs/ run as written, so the docs stay true."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import graphkit

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks(path: Path, language: str) -> list[str]:
    """The page's `language` blocks, except those of a walkthrough (marked `<!-- file: ... -->`
    or `<!-- run: ... -->`), which its own test runs in a folder of its own."""
    found = re.findall(rf"(<!-- (?:file|run): [^\n]*-->\n)?```{language}\n(.*?)```",
                       path.read_text(), re.S)
    return [block for marker, block in found if not marker]


@pytest.mark.parametrize("path", [p for p in DOCS if _blocks(p, "python")], ids=lambda p: p.name)
def test_python_examples_run(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}
    for block in _blocks(path, "python"):
        exec(compile(block, str(path), "exec"), namespace)  # noqa: S102 - our own docs


def test_json_graph_examples_are_valid_graphs() -> None:
    found = 0
    for path in DOCS:
        for block in _blocks(path, "json"):
            document = json.loads(block)
            if "nodes" in document:
                graphkit.validate(graphkit.loads(block, str(path)))
                found += 1
    assert found >= 1


def test_every_doc_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for path in (ROOT / "docs").glob("*.md"):
        assert f"docs/{path.name}" in readme, f"README.md does not link docs/{path.name}"


def test_readme_example_command_is_the_makefile_one() -> None:
    makefile = (ROOT / "Makefile").read_text()
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"^example:.*\n\t\$\(BIN\)/(.*)$", makefile, re.M)
    assert command is not None
    assert command.group(1) in readme
    assert re.search(r"^test:.*\n\t\$\(BIN\)/python -m pytest$", makefile, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "make test" in readme


def test_every_link_in_the_readme_resolves() -> None:
    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        if "://" not in target:
            assert (ROOT / target).exists(), f"README.md links {target}, which does not exist"


def test_the_onnx_mapping_table_matches_the_registry() -> None:
    from graphkit.onnxmap import mappings
    from graphkit.ops import BUILTIN_OPS

    text = (ROOT / "docs" / "onnx.md").read_text()
    rows = set(re.findall(r"^\| `(\w+)` \| `([\w.:]+)` \| [^|]+ \| (yes|no) \|$", text, re.M))
    expected = set()
    for op in BUILTIN_OPS:
        for mapping in mappings(op.onnx):
            prefix = f"{mapping.domain}::" if mapping.domain else ""
            expected.add((op.name, prefix + mapping.op_type, "yes" if op.vjp else "no"))
    assert rows == expected


def test_every_builtin_op_is_in_the_ops_table() -> None:
    from graphkit.ops import BUILTIN_OPS

    text = (ROOT / "docs" / "ops.md").read_text()
    listed = set(re.findall(r"^\| `(\w+)` \|", text, re.M))
    assert listed == {op.name for op in BUILTIN_OPS}
