"""`graphkit render`: the drawing the command writes, its options, its errors, and the docs.

What is drawn is read back from the files themselves: the SVG as XML (each text with its
colour), the DOT as the library's `render` makes it. Tests that need Graphviz's `dot` are
skipped without it (CI installs it); the rest run everywhere.
"""

from __future__ import annotations

import html
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from cli_helpers import assert_error, run

import graphkit
from graphkit.draw import GRADIENT_COLOR, VALUE_COLOR

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
NEURON = str(EXAMPLES / "sigmoid_neuron.json")
ADD_MUL = str(EXAMPLES / "add_mul.json")
PAGE = ROOT / "docs" / "render.md"
SVG = "{http://www.w3.org/2000/svg}"

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot is not installed (apt-get install graphviz)")




def texts(svg: Path) -> dict[str, set[str]]:
    """The SVG's texts by colour (black when not set)."""
    found: dict[str, set[str]] = {}
    for text in ET.parse(svg).getroot().iter(f"{SVG}text"):
        found.setdefault(text.get("fill", "black"), set()).add(text.text or "")
    return found


def colored(dot: str, color: str) -> list[str]:
    """The texts the DOT writes in `color`, in order, unescaped."""
    return [html.unescape(t) for t in re.findall(rf'<font color="{color}">(.*?)</font>', dot)]


@pytest.fixture
def add_mul(tmp_path: Path) -> str:
    """add_mul.json without its inputs file beside it."""
    shutil.copy(ADD_MUL, tmp_path / "add_mul.json")
    return str(tmp_path / "add_mul.json")


# -- what is drawn -----------------------------------------------------------------------------


@needs_dot
def test_svg_of_the_sigmoid_neuron_has_the_slides_numbers_in_their_colours(
    tmp_path: Path,
) -> None:
    out = tmp_path / "neuron.svg"
    result = run("render", NEURON, "--grad", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"wrote {out} (SVG, 8 gates; values and gradients of f)\n"
    shown = texts(out)
    assert {"2", "-1", "-3", "-2", "6", "4", "0.37", "1.37", "0.73"} <= shown[VALUE_COLOR]
    assert {"-0.20", "0.39", "-0.39", "-0.59", "0.20", "-0.53", "1"} == shown[GRADIENT_COLOR]
    assert {"Mul", "Add", "Exp", "Reciprocal", "w0", "x1", "minus_one", "f"} <= shown["black"]


@needs_dot
def test_png(tmp_path: Path) -> None:
    out = tmp_path / "neuron.png"
    result = run("render", NEURON, "--grad", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 4 * height > 0   # the gates in a row, left to right


def test_dot_to_stdout_is_the_librarys_and_nothing_else() -> None:
    result = run("render", NEURON, "--grad", "-o", "-")
    assert result.exit_code == 0 and result.stderr == ""
    graph = graphkit.load(NEURON)
    inputs = json.loads((EXAMPLES / "sigmoid_neuron.inputs.json").read_text())
    assert result.stdout == graphkit.render(graph, inputs, grad=True).dot


@pytest.mark.parametrize("suffix", [".dot", ".gv", ".DOT"])
def test_dot_file(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"neuron{suffix}"
    result = run("render", NEURON, "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"wrote {out} (DOT, 8 gates; values)\n"
    dot = out.read_text()
    assert colored(dot, VALUE_COLOR)[-1] == "0.73" and colored(dot, GRADIENT_COLOR) == []


def test_input_options_are_executes(tmp_path: Path, add_mul: str) -> None:
    """--input wins over --inputs, which replaces the sibling NAME.inputs.json; .npz works."""
    shutil.copy(EXAMPLES / "add_mul.inputs.json", tmp_path / "add_mul.inputs.json")
    dot = run("render", add_mul, "--grad", "-o", "-").stdout   # the sibling file
    assert colored(dot, VALUE_COLOR) == ["-2", "5", "3", "-4", "-12"]
    assert colored(dot, GRADIENT_COLOR) == ["-4", "-4", "-4", "3", "1"]
    dot = run("render", add_mul, "--grad", "--input", "x=1", "-o", "-").stdout
    assert colored(dot, VALUE_COLOR) == ["1", "5", "6", "-4", "-24"]
    assert colored(dot, GRADIENT_COLOR)[3] == "6"                 # z's: x + y
    np.savez(tmp_path / "in.npz", x=np.float64(0.5), y=np.float64(0.25), z=np.float64(2.0))
    dot = run("render", add_mul, "--inputs", str(tmp_path / "in.npz"), "-i", "y=1",
              "-o", "-").stdout
    assert colored(dot, VALUE_COLOR) == ["0.50", "1", "1.50", "2", "3"]


def test_without_inputs_the_structure(add_mul: str, tmp_path: Path) -> None:
    out = tmp_path / "add_mul.dot"
    result = run("render", add_mul, "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"wrote {out} (DOT, 2 gates; structure only: no input values)\n"
    dot = out.read_text()
    assert colored(dot, VALUE_COLOR) == [] and colored(dot, GRADIENT_COLOR) == []
    assert "label=<Add>" in dot and "label=<Mul>" in dot and ">q</font>" in dot


def test_structure_of_a_graph_that_cannot_run(tmp_path: Path) -> None:
    """Unknown ops and undefined values are drawn (to look at them); running one is an error."""
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({
        "format_version": 1, "name": "broken", "inputs": ["x"], "outputs": ["f"],
        "nodes": [{"op": "Ad", "inputs": ["x", "y"], "outputs": ["f"]}],
    }))
    result = run("render", str(broken), "-o", "-")
    assert result.exit_code == 0
    assert "label=<Ad>" in result.stdout and "label=<y<br/>(undefined)>" in result.stdout
    assert_error(run("render", str(broken), "-i", "x=1", "-o", "-"),
                 f"{broken}: graph 'broken' has 2 problems")


def test_plugin_gate_shows_its_domain() -> None:
    result = run("-p", str(EXAMPLES / "plugins" / "twice.py"), "render",
                 str(EXAMPLES / "plugins" / "twice.json"), "-i", "x=[1,2,3]", "--grad", "-o", "-")
    assert result.exit_code == 0, result.stderr
    assert 'label=<Twice<br/><font point-size="9" color="#606060">example</font>>' in \
        result.stdout
    assert "f64[3] [2, 4, 6]" in colored(result.stdout, VALUE_COLOR)
    assert "[2, 2, 2]" in colored(result.stdout, GRADIENT_COLOR)   # d sum(2x) / dx


def test_of_chooses_the_output(tmp_path: Path) -> None:
    graph = tmp_path / "two_out.json"
    graph.write_text(json.dumps({
        "format_version": 1, "name": "two_out", "inputs": ["x"], "outputs": ["a", "b"],
        "nodes": [{"op": "Exp", "inputs": ["x"], "outputs": ["a"]},
                  {"op": "Neg", "inputs": ["x"], "outputs": ["b"]}],
    }))
    assert_error(run("render", str(graph), "-i", "x=0", "--grad", "-o", "-"),
                 "has 2 outputs (a, b)")
    result = run("render", str(graph), "-i", "x=0", "--grad", "--of", "b", "-o", "-")
    assert result.exit_code == 0, result.stderr
    assert colored(result.stdout, GRADIENT_COLOR) == ["-1", "-1", "0", "1"]   # x, x, a, b


# -- errors ----------------------------------------------------------------------------------


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    result = run("render", NEURON, "-o", str(tmp_path / "neuron.pdf"))
    assert result.exit_code == 2
    assert "does not end in .svg, .png or .dot" in result.stderr
    assert run("render", NEURON).exit_code == 2                          # -o is required
    result = run("render", NEURON, "--of", "f", "-o", "-")
    assert result.exit_code == 2 and "add --grad" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_grad_without_inputs(add_mul: str) -> None:
    assert_error(run("render", add_mul, "--grad", "-o", "-"),
                 "--grad needs input values", "--input NAME=VALUE", "(inputs: x, y, z)")


def test_bad_inputs_and_files(tmp_path: Path) -> None:
    assert_error(run("render", str(tmp_path / "none.json"), "-o", "-"), "none.json: no such file")
    assert_error(run("render", NEURON, "-i", "w0=abc", "-o", "-"), "--input 'w0=abc'")
    assert_error(run("render", NEURON, "-i", "v=1", "-o", "-"), "has no input 'v'")
    assert_error(run("render", NEURON, "-o", str(tmp_path / "no" / "x.dot")),
                 "folder", "does not exist")


def test_without_graphviz_svg_and_png_fail_before_running_and_dot_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))   # no dot on it
    old = tmp_path / "neuron.svg"
    old.write_text("old")
    for out in (old, tmp_path / "neuron.png"):
        line = assert_error(run("render", NEURON, "-i", "w0=abc", "-o", str(out)))  # not run
        assert line == (f"error: cannot write {out}: {out.suffix[1:].upper()} needs Graphviz's "
                        "dot program, which is not installed (Debian/Ubuntu: apt-get install "
                        "graphviz; macOS: brew install graphviz; writing .dot needs nothing)")
    assert old.read_text() == "old" and not (tmp_path / "neuron.png").exists()
    assert run("render", NEURON, "-o", str(tmp_path / "neuron.dot")).exit_code == 0


@needs_dot
def test_a_file_is_replaced_atomically(tmp_path: Path) -> None:
    out = tmp_path / "neuron.svg"
    out.write_text("old")
    assert run("render", NEURON, "-o", str(out)).exit_code == 0
    assert out.read_text().startswith("<?xml")
    assert [p.name for p in tmp_path.iterdir()] == ["neuron.svg"]


def test_script_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    """The real console script, without dot on PATH."""
    installed = Path(sys.executable).with_name("graphkit")
    command = [str(installed)] if installed.is_file() else [sys.executable, "-m",
                                                             "graphkit.cli.main"]
    env = {**os.environ, "PATH": str(tmp_path), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([*command, "render", NEURON, "-o", str(tmp_path / "x.svg")],
                          capture_output=True, text=True, env=env, check=False, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error: cannot write") and done.stderr.count("\n") == 1


# -- help and docs -------------------------------------------------------------------------


def test_help_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The examples of `render --help`, in an empty folder with a link to examples/."""
    (tmp_path / "examples").symlink_to(EXAMPLES, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    help_text = run("render", "--help").stdout
    block = re.search(r"^\s*Examples:\n((?:[ \t]+graphkit .*\n)+)", help_text, re.M)
    assert block, help_text
    for example in block[1].splitlines():
        args = shlex.split(example.strip())[1:]
        if any(a.endswith((".svg", ".png")) for a in args) and shutil.which("dot") is None:
            continue
        outcome = run(*args)
        assert outcome.exit_code == 0, (example, outcome.stderr)


class PageExample(NamedTuple):
    command: str
    code: int
    shown: list[str]


def page_examples() -> list[PageExample]:
    """`$ graphkit ...` lines of docs/render.md's console blocks, `# exit N`, shown output."""
    found: list[PageExample] = []
    current: PageExample | None = None
    fenced = False
    for line in PAGE.read_text().splitlines():
        if line.startswith("```"):
            fenced, current = line == "```console", None
        elif fenced and line.startswith("$ graphkit"):
            match = re.search(r"#\s*exit\s+(\d+)\s*$", line)
            current = PageExample(line[2:], int(match[1]) if match else 0, [])
            found.append(current)
        elif current is not None:
            current.shown.append(line)
    return found


@pytest.mark.parametrize("example", page_examples(), ids=lambda e: e.command)
def test_page_examples_run(
    example: PageExample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each command of docs/render.md exits and prints as shown, /tmp/ moved to a tmp folder."""
    monkeypatch.chdir(ROOT)
    args = [str(tmp_path / a[5:]) if a.startswith("/tmp/") else a
            for a in shlex.split(example.command, comments=True)[1:]]
    if any(a.endswith((".svg", ".png")) for a in args) and shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed")
    result = run(*args)
    assert result.exit_code == example.code, (result.stdout, result.stderr)
    output = (result.stdout if example.code == 0 else result.stderr).replace(f"{tmp_path}/",
                                                                              "/tmp/")
    if example.shown:
        assert output.splitlines() == example.shown


def test_page_has_examples_of_every_format() -> None:
    commands = " ".join(e.command for e in page_examples())
    for fragment in (".svg", ".png", ".dot", "--grad", "--input", "-p ", "# exit 1"):
        assert fragment in commands


@needs_dot
def test_page_python_examples_that_need_graphviz(monkeypatch: pytest.MonkeyPatch) -> None:
    """The `<!-- run: python -->` blocks (tests/test_docs.py runs the others everywhere)."""
    monkeypatch.chdir(ROOT)
    blocks = re.findall(r"<!-- run: python -->\n```python\n(.*?)```", PAGE.read_text(), re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(PAGE), "exec"), {"__name__": "docs_render"})  # noqa: S102
