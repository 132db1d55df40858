"""The `graphkit` command's contract: exit codes, one-line errors, --json output, the docs.

Most tests go through click's CliRunner (stdout and stderr apart, click >= 8.2); a few run the
real console script in a subprocess to prove that no traceback ever reaches stderr.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
from cli_helpers import assert_error, run, run_json

import graphkit
from graphkit.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DOCS = ROOT / "docs" / "cli.md"

ADD_MUL = str(EXAMPLES / "add_mul.json")
ADD_MUL_INPUTS = str(EXAMPLES / "add_mul.inputs.json")
NEURON = str(EXAMPLES / "sigmoid_neuron.json")
NET = str(EXAMPLES / "two_layer_net.json")
WX = str(EXAMPLES / "wx_norm.json")





def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.fixture
def graph_dir(tmp_path: Path) -> Path:
    """Copies of add_mul without its inputs file, plus graphs that fail in various ways."""
    shutil.copy(ADD_MUL, tmp_path / "add_mul.json")
    write(tmp_path / "broken.json", json.dumps({
        "format_version": 1, "name": "broken", "inputs": ["x"], "outputs": ["f"],
        "nodes": [
            {"op": "Ad", "inputs": ["x", "y"], "outputs": ["q"]},
            {"op": "Mul", "inputs": ["q", "zz"], "outputs": ["f"]},
        ],
    }))
    write(tmp_path / "matmul.json", json.dumps({
        "format_version": 1, "name": "matmul", "inputs": ["W", "x"], "outputs": ["f"],
        "nodes": [{"op": "MatMul", "inputs": ["W", "x"], "outputs": ["f"]}],
    }))
    write(tmp_path / "two_out.json", json.dumps({
        "format_version": 1, "name": "two_out", "inputs": ["x"], "outputs": ["a", "b"],
        "nodes": [
            {"op": "Exp", "inputs": ["x"], "outputs": ["a"]},
            {"op": "Neg", "inputs": ["x"], "outputs": ["b"]},
        ],
    }))
    return tmp_path


# -- execute -------------------------------------------------------------------------------


def test_execute_add_mul_json_has_the_lecture_numbers() -> None:
    document = run_json("execute", ADD_MUL, "--inputs", ADD_MUL_INPUTS, "--grad")
    assert document == {"outputs": {"f": -12.0}, "gradients": {"x": -4.0, "y": -4.0, "z": 3.0}}


def test_execute_sigmoid_neuron_gradients() -> None:
    document = run_json("execute", NEURON, "--grad")
    assert document["outputs"]["f"] == pytest.approx(0.7311, abs=1e-4)
    expected = {"w0": -0.1966, "x0": 0.3932, "w1": -0.3932, "x1": -0.5898, "w2": 0.1966}
    assert document["gradients"] == pytest.approx(expected, abs=1e-4)  # fixed constants left out


def test_execute_without_grad_has_empty_gradients() -> None:
    assert run_json("execute", ADD_MUL)["gradients"] == {}


def test_execute_grad_of_matrices_is_nested_lists() -> None:
    document = run_json("execute", WX, "--grad")
    assert document["outputs"]["f"] == pytest.approx(0.116)
    q = np.array([0.22, 0.26])
    x = np.array([0.2, 0.4])
    W = np.array([[0.1, 0.5], [-0.3, 0.8]])
    np.testing.assert_allclose(document["gradients"]["W"], 2 * np.outer(q, x))
    np.testing.assert_allclose(document["gradients"]["x"], 2 * W.T @ q)


def test_execute_never_imports_networkx() -> None:
    """Importing networkx takes about 0.1 s, a third of `graphkit execute`'s wall time:
    loading, validating and running a graph whose nodes are in order do without it."""
    code = (
        "import sys\n"
        "from graphkit.cli.main import main\n"
        "sys.argv = ['graphkit', 'execute', sys.argv[1], '--grad', '--json']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print('networkx' in sys.modules, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, NEURON], capture_output=True,
                          text=True, check=True)
    assert json.loads(done.stdout)["outputs"]["f"] == pytest.approx(0.7311, abs=1e-4)
    assert done.stderr.strip() == "False"


def test_execute_grad_skips_integer_inputs_and_takes_trainable_constants() -> None:
    gradients = run_json("execute", NET, "--grad")["gradients"]
    assert list(gradients) == ["X", "W1", "b1", "W2", "b2"]
    assert np.shape(gradients["W1"]) == (4, 8)


def test_execute_wrt_intermediate() -> None:
    document = run_json("execute", ADD_MUL, "--inputs", ADD_MUL_INPUTS, "--wrt", "q")
    assert document["gradients"] == {"q": -4.0}


def test_execute_input_overrides_inputs_file() -> None:
    document = run_json("execute", ADD_MUL, "--inputs", ADD_MUL_INPUTS, "--input", "x=1",
                        "--grad")
    assert document["outputs"]["f"] == -24.0  # (1 + 5) * -4
    assert document["gradients"]["z"] == 6.0


def test_execute_array_input_on_the_command_line() -> None:
    document = run_json("execute", WX, "-i", "W=[[1,0],[0,1]]", "-i", "x=[3,4]")
    assert document["outputs"]["f"] == 25.0


def test_execute_npz_inputs(tmp_path: Path) -> None:
    path = tmp_path / "in.npz"
    np.savez(path, W=np.array([[0.1, 0.5], [-0.3, 0.8]]), x=np.array([0.2, 0.4]))
    document = run_json("execute", WX, "--inputs", str(path), "--grad")
    assert document["outputs"]["f"] == pytest.approx(0.116)
    np.testing.assert_allclose(document["gradients"]["x"], [-0.112, 0.636])


def test_execute_of_chooses_the_output(graph_dir: Path) -> None:
    graph = str(graph_dir / "two_out.json")
    assert run_json("execute", graph, "-i", "x=0", "--grad", "--of", "b")["gradients"] == {
        "x": -1.0
    }
    assert_error(run("execute", graph, "-i", "x=0", "--grad"), "2 outputs")


def test_execute_table_output() -> None:
    result = run("execute", NEURON, "--grad")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert "\x1b[" not in result.stdout  # no colour codes in a pipe
    for text in ("outputs", "gradients of f", "0.7311", "-0.1966", "0.3932", "-0.5898"):
        assert text in result.stdout
    assert "minus_one" not in result.stdout


def test_execute_table_summarises_big_tensors() -> None:
    result = run("execute", NET, "--grad")
    assert result.exit_code == 0, result.stderr
    assert "32 values: min" in result.stdout  # W1 is 4 x 8
    assert all(line == line.rstrip() for line in result.stdout.splitlines())


def test_execute_non_finite_values_are_null_in_json(tmp_path: Path) -> None:
    graph = write(tmp_path / "log.json", json.dumps({
        "format_version": 1, "name": "log", "inputs": ["x"], "outputs": ["f"],
        "nodes": [{"op": "Log", "inputs": ["x"], "outputs": ["f"]}],
    }))
    result = run("execute", graph, "-i", "x=[0, 1]", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"outputs": {"f": [None, 0.0]}, "gradients": {}}
    assert result.stderr.strip() == "warning: divide by zero encountered in log"


# -- execute: every kind of bad input is one error line ------------------------------------


def test_missing_graph_file(tmp_path: Path) -> None:
    assert_error(run("execute", str(tmp_path / "nope.json")), "nope.json", "no such file")


def test_invalid_graph_json(tmp_path: Path) -> None:
    graph = write(tmp_path / "bad.json", '{"format_version": 1, "name": ')
    assert_error(run("execute", graph), "bad.json", "Invalid JSON")


def test_unknown_graph_extension(tmp_path: Path) -> None:
    assert_error(run("validate", str(tmp_path / "g.yaml")), "g.yaml", "unknown file type")


def test_missing_input(graph_dir: Path) -> None:
    assert_error(run("execute", str(graph_dir / "add_mul.json"), "-i", "x=1"),
                 "add_mul.json", "needs a value for input", "'y'", "'z'")


def test_unknown_input_name() -> None:
    assert_error(run("execute", ADD_MUL, "--input", "w=1"), "add_mul.json", "no input 'w'",
                 "inputs: x, y, z")


@pytest.mark.parametrize(("pair", "fragment"), [
    ("x=abc", "is not a number or a JSON array"),
    ("x", "expected NAME=VALUE"),
    ("=3", "expected NAME=VALUE"),
    ("x=[1,[2]]", "rectangular"),
    ('x="3"', "not str"),
    ("x={}", "not dict"),
    ('x=["a"]', "only numbers"),
])
def test_unparseable_input_value(pair: str, fragment: str) -> None:
    assert_error(run("execute", ADD_MUL, "--input", pair), f"--input {pair!r}", fragment)


def test_input_of_the_wrong_shape() -> None:
    assert_error(run("execute", WX, "-i", "x=[1,2,3]"), "wx_norm.json", "input 'x'", "shape")


@pytest.mark.parametrize(("name", "content", "fragment"), [
    ("in.json", '{"x": 1,', "invalid JSON at line 1"),
    ("in.json", "[1, 2]", "expected a JSON object"),
    ("in.json", '{"x": "a"}', "input 'x'"),
    ("in.txt", "x=1", "unknown inputs file type .txt"),
    ("in.npz", "not a zip", "not an .npz archive"),
])
def test_bad_inputs_file(tmp_path: Path, name: str, content: str, fragment: str) -> None:
    path = write(tmp_path / name, content)
    assert_error(run("execute", ADD_MUL, "--inputs", path), name, fragment)


def test_missing_inputs_file(tmp_path: Path) -> None:
    assert_error(run("execute", ADD_MUL, "--inputs", str(tmp_path / "none.json")),
                 "none.json", "no such file")


def test_npz_with_pickled_objects_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "obj.npz"
    np.savez(path, x=np.array([{}], dtype=object))
    assert_error(run("execute", ADD_MUL, "--inputs", str(path)), "obj.npz")


def test_validation_failure_lists_every_problem(graph_dir: Path) -> None:
    line = assert_error(run("execute", str(graph_dir / "broken.json"), "-i", "x=1"),
                        "broken.json", "3 problems", "unknown op Ad", "did you mean Add?",
                        "'y' is not defined", "'zz' is not defined")
    assert line.count("; ") >= 2


def test_runtime_failure_names_the_node(graph_dir: Path) -> None:
    assert_error(run("execute", str(graph_dir / "matmul.json"), "-i", "W=[[1,2,3]]",
                     "-i", "x=[1,2]"), "matmul.json", 'MatMul "f"', "(1, 3)", "(2,)")


def test_wrt_unknown_value() -> None:
    assert_error(run("execute", ADD_MUL, "--wrt", "nope"), "no value 'nope'")


def test_wrt_integer_input() -> None:
    assert_error(run("execute", NET, "--wrt", "y"), "'y' is int64")


def test_json_error_leaves_stdout_empty() -> None:
    result = run("execute", ADD_MUL, "--input", "w=1", "--json")
    assert_error(result)
    assert result.stdout == ""


# -- usage errors exit 2 -------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["execute"],
    ["execute", ADD_MUL, "--bogus"],
    ["execute", ADD_MUL, "--of", "f"],
    ["gradcheck", ADD_MUL, "--tolerance", "-1"],
    ["frobnicate"],
])
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr


# -- validate ------------------------------------------------------------------------------


def test_validate_ok() -> None:
    result = run("validate", NEURON)
    assert result.exit_code == 0
    assert result.stdout == f"{NEURON}: ok (8 nodes, 5 inputs, 1 output)\n"


def test_validate_failure(graph_dir: Path) -> None:
    assert_error(run("validate", str(graph_dir / "broken.json")), "broken.json", "3 problems")


# -- ops and plugins -----------------------------------------------------------------------


def test_ops_table_and_json() -> None:
    result = run("ops")
    assert result.exit_code == 0
    assert re.search(r"^ Add\s+-\s+1\s+2\s+1\s+graphkit\.ops\s+a \+ b", result.stdout, re.M)
    ops = run_json("ops")["ops"]
    by_name = {op["op"]: op for op in ops}
    assert {"Add", "Mul", "Sigmoid", "MatMul"} <= set(by_name)
    assert by_name["Add"] == {
        "op": "Add", "domain": "", "name": "Add", "version": 1, "inputs": 2, "variadic": False,
        "outputs": 1,
        "plugin": "graphkit.ops", "doc": by_name["Add"]["doc"],
    }
    assert len(ops) == len(list(graphkit.default_registry().ops()))


def test_plugins_table_and_json() -> None:
    result = run("plugins")
    assert result.exit_code == 0
    assert "graphkit.ops" in result.stdout and "graphkit-backprop" in result.stdout
    plugins = {p["name"]: p for p in run_json("plugins")["plugins"]}
    builtin = plugins["graphkit.ops"]
    assert builtin["errors"] == []
    assert "Add@1" in builtin["ops"]


def _broken_plugin() -> object:
    class Broken:
        @graphkit.hookimpl
        def graphkit_register_ops(self, register) -> None:
            raise RuntimeError("cannot find libfoo.so")

    return Broken()


def test_broken_plugin_is_a_one_line_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    def registry() -> Registry:
        reg = graphkit.builtin_registry(strict=False)
        reg.register_plugin(_broken_plugin(), name="broken", distribution="broken-dist")
        return reg

    monkeypatch.setattr(graphkit, "default_registry", registry)
    shown = warnings.showwarning
    result = run("plugins", "--json")
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "warning: plugin 'broken' raised while registering: RuntimeError: cannot find libfoo.so"
    ]
    plugins = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    assert plugins["broken"]["errors"] == [
        "raised while registering: RuntimeError: cannot find libfoo.so"
    ]
    table = run("plugins").stdout
    assert "broken-dist" in table and "cannot find libfoo.so" in table
    assert warnings.showwarning is shown  # the CLI's one-line display does not leak out


def test_strict_plugins_make_a_broken_plugin_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def registry() -> Registry:
        reg = graphkit.builtin_registry(strict=True)
        reg.register_plugin(_broken_plugin(), name="broken")
        return reg

    monkeypatch.setattr(graphkit, "default_registry", registry)
    assert_error(run("ops"), "plugin 'broken'", "libfoo.so")


# -- gradcheck -----------------------------------------------------------------------------


def test_gradcheck_passes() -> None:
    result = run("gradcheck", NEURON)
    assert result.exit_code == 0, result.stderr
    assert "FAIL" not in result.stdout
    assert re.search(r"^ w0\s+\S+e-\d+\s+ok$", result.stdout, re.M)
    document = run_json("gradcheck", NET, "--inputs", str(EXAMPLES / "two_layer_net.inputs.json"))
    assert document["ok"] is True and document["tolerance"] == 1e-6
    assert set(document["errors"]) == {"X", "W1", "b1", "W2", "b2"}
    assert max(document["errors"].values()) < 1e-6


def test_gradcheck_failure_exits_1() -> None:
    result = run("gradcheck", ADD_MUL, "--tolerance", "0")
    assert_error(result, "gradient check failed for x, y, z", "tolerance 0")
    assert result.stdout.count("FAIL") == 3
    result = run("gradcheck", ADD_MUL, "--tolerance", "0", "--json")
    assert_error(result, "gradient check failed")
    assert json.loads(result.stdout)["ok"] is False


def test_gradcheck_wrt_and_intermediates() -> None:
    document = run_json("gradcheck", NEURON, "--wrt", "w0", "--wrt", "c")
    assert list(document["errors"]) == ["w0"]
    assert document["skipped"] == ["c"]


def test_gradcheck_bad_input() -> None:
    assert_error(run("gradcheck", ADD_MUL, "-i", "x=[1,"), "--input 'x=[1,'")
    assert_error(run("gradcheck", ADD_MUL, "-i", "w=1"), "no input 'w'")


# -- version and help ----------------------------------------------------------------------


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert re.fullmatch(r"graphkit \S+\n", result.stdout)


def help_examples(text: str) -> list[str]:
    """The `graphkit ...` lines of the `Example(s):` block of a help text."""
    block = re.search(r"^\s*Examples?:\n((?:[ \t]+graphkit .*\n)+)", text, re.M)
    return [line.strip() for line in block[1].splitlines()] if block else []


@pytest.mark.parametrize("command", [[], ["execute"], ["validate"], ["gradcheck"], ["ops"],
                                     ["plugins"], ["export"], ["import"]])
def test_help_examples_run(
    command: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every help text has examples, and every example runs on the files in examples/.

    They run in order in an empty folder holding only a link to examples/, so the files
    they write (export's -o ...) land there and later examples can read them.
    """
    (tmp_path / "examples").symlink_to(EXAMPLES, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    result = run(*command, "--help")
    assert result.exit_code == 0
    examples = help_examples(result.stdout)
    assert examples, result.stdout
    for example in examples:
        outcome = run(*shlex.split(example)[1:])
        assert outcome.exit_code == 0, (example, outcome.stderr)


# -- docs/cli.md stays true ----------------------------------------------------------------


class DocExample(NamedTuple):
    command: str
    code: int
    shown: list[str]
    """The output lines the docs show under the command (may be abridged, or empty)."""


def doc_examples() -> list[DocExample]:
    """Lines `$ graphkit ...` in fenced blocks of docs/cli.md, `# exit N` (default 0), output."""
    found: list[DocExample] = []
    fenced = False
    current: DocExample | None = None
    for line in DOCS.read_text().splitlines():
        if line.startswith("```"):
            fenced, current = not fenced, None
        elif fenced and line.startswith("$ "):
            current = None
            if line.startswith("$ graphkit"):
                match = re.search(r"#\s*exit\s+(\d+)\s*$", line)
                current = DocExample(line[2:], int(match[1]) if match else 0, [])
                found.append(current)
        elif current is not None:
            current.shown.append(line)
    return found


def test_docs_have_examples_of_every_command() -> None:
    commands = " ".join(example.command for example in doc_examples())
    for name in ("execute", "validate", "gradcheck", "ops", "plugins", "export", "import",
                 "--version", "--json"):
        assert f" {name}" in commands


DOCS_TMP = "/tmp/"
"""docs/cli.md writes its files under /tmp/; the docs test maps that to a folder of its own."""


@pytest.fixture(scope="module")
def docs_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("docs")


def doc_args(example: DocExample, folder: Path) -> list[str]:
    """The example's arguments, with /tmp/NAME moved to FOLDER/NAME."""
    args = shlex.split(example.command, comments=True)[1:]
    return [str(folder / arg[len(DOCS_TMP):]) if arg.startswith(DOCS_TMP) else arg
            for arg in args]


def make_files_read(args: list[str], folder: Path) -> None:
    """Run the doc examples that write (-o) the /tmp/ files these arguments read, when they
    are not there yet, so that every example also runs alone (pytest -k)."""
    writers = {}
    for other in doc_examples():
        other_args = doc_args(other, folder)
        if "-o" in other_args and other.code == 0:
            writers.setdefault(other_args[other_args.index("-o") + 1], other_args)
    written = args[args.index("-o") + 1] if "-o" in args else None
    for arg in args:
        writer = writers.get(arg)
        if writer is not None and arg != written and not Path(arg).exists():
            make_files_read(writer, folder)
            assert run(*writer).exit_code == 0, writer


def opset_free(text: str, args: list[str]) -> str:
    """The default opset is the installed onnx's and onnxruntime's: the docs' may differ."""
    return text if "--opset" in args else re.sub(r"\(opset \d+,", "(opset N,", text)


@pytest.mark.parametrize("example", doc_examples(), ids=lambda e: e.command)
def test_docs_examples_run(
    example: DocExample, monkeypatch: pytest.MonkeyPatch, docs_tmp: Path
) -> None:
    """Each example exits as documented; shown errors, JSON and the output of execute,
    validate, export and import match."""
    monkeypatch.chdir(ROOT)
    args = doc_args(example, docs_tmp)
    make_files_read(args, docs_tmp)
    result = run(*args)
    assert result.exit_code == example.code, (example.command, result.stdout, result.stderr)
    if example.code == 1:
        line = assert_error(result).replace(f"{docs_tmp}/", DOCS_TMP)
        if example.shown:
            assert [line] == example.shown
        return
    compared = ("execute", "validate", "export", "import")
    if not example.shown or args[0] not in compared:
        return  # gradcheck's errors, the op list and the version may change; exit code only
    if example.shown[0].startswith("{"):
        assert close(json.loads(result.stdout), json.loads(example.shown[0]))
    else:
        stdout = opset_free(result.stdout.replace(f"{docs_tmp}/", DOCS_TMP), args)
        assert stdout.splitlines() == [opset_free(line, args) for line in example.shown]


def close(actual: Any, expected: Any) -> bool:
    """Nested JSON equal up to float rounding (pytest.approx does not nest)."""
    if isinstance(expected, dict):
        return (isinstance(actual, dict) and actual.keys() == expected.keys()
                and all(close(actual[k], expected[k]) for k in expected))
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(actual) == len(expected)
                and all(close(a, e) for a, e in zip(actual, expected, strict=True)))
    return actual == pytest.approx(expected, rel=1e-9, abs=1e-12)


# -- the real console script ---------------------------------------------------------------


def script() -> list[str]:
    """The installed `graphkit` next to this interpreter, else `python -m graphkit.cli.main`."""
    installed = Path(sys.executable).with_name("graphkit")
    if installed.is_file() and os.access(installed, os.X_OK):
        return [str(installed)]
    return [sys.executable, "-m", "graphkit.cli.main"]


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    return subprocess.run([*script(), *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120, check=False)


def test_script_json_output() -> None:
    done = run_script("execute", "examples/add_mul.json", "--grad", "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout)["gradients"] == {"x": -4.0, "y": -4.0, "z": 3.0}


@pytest.mark.parametrize("args", [
    ["execute", "examples/missing.json"],
    ["execute", "examples/add_mul.json", "--input", "x=abc"],
    ["execute", "examples/add_mul.json", "--input", "w=1"],
    ["validate", "README.onnx"],
    ["gradcheck", "examples/add_mul.json", "--tolerance", "0"],
])
def test_script_errors_have_no_traceback(args: list[str]) -> None:
    done = run_script(*args)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr


def test_script_usage_error_exits_2() -> None:
    done = run_script("execute", "--no-such-option")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
