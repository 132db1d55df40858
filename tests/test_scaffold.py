"""`graphkit new-plugin` and graphkit.scaffold: what is written, what is refused, and how.

That a generated package installs and its own tests pass is checked, in a throwaway venv, by
tests/test_plugin_walkthrough.py.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import graphkit
from graphkit.cli.main import cli
from graphkit.scaffold import ScaffoldError, check_domain, check_name, plugin_files, write_plugin


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="graphkit")


def assert_one_error(result: Result, *fragments: str) -> None:
    """Exit 1 and exactly one stderr line `error: ...` with every fragment, nothing written."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def test_the_files_of_a_plugin() -> None:
    files = plugin_files("graphkit-my-gates")
    assert sorted(files) == ["README.md", "graphkit_my_gates/__init__.py", "pyproject.toml",
                             "swish.json", "tests/test_gates.py"]
    pyproject = files["pyproject.toml"]
    assert 'name = "graphkit-my-gates"' in pyproject
    assert 'dependencies = ["graphkit-backprop"]' in pyproject
    assert 'build-backend = "setuptools.build_meta"' in pyproject
    assert '[project.entry-points.graphkit]\ngraphkit_my_gates = "graphkit_my_gates"' in pyproject
    assert 'test = ["pytest", "hypothesis", "onnxruntime"]' in pyproject
    tests = files["tests/test_gates.py"]
    assert ('from graphkit.testing import gate_tests' in tests
            and 'test_gates = gate_tests("graphkit_my_gates")' in tests)
    assert 'DOMAIN = "graphkit_my_gates"' in files["graphkit_my_gates/__init__.py"]
    assert json.loads(files["swish.json"])["nodes"][0]["op"] == "graphkit_my_gates::Swish"


def test_the_domain_option_reaches_every_file() -> None:
    files = plugin_files("my-gates", domain="com.example.gates")
    assert 'DOMAIN = "com.example.gates"' in files["my_gates/__init__.py"]
    assert '"com.example.gates::Swish"' in files["tests/test_gates.py"]
    assert "`com.example.gates::Swish`" in files["README.md"]
    graph = graphkit.loads(files["swish.json"], "swish.json")
    assert str(graph.nodes[0].op) == "com.example.gates::Swish"


def test_the_example_gate_is_correct_and_checked(tmp_path: Path) -> None:
    """The generated module, imported as it is: a valid OpDef whose gradient checks."""
    namespace: dict[str, object] = {"__name__": "generated_gate"}
    exec(plugin_files("gen-gate")["gen_gate/__init__.py"], namespace)  # noqa: S102
    swish = namespace["swish"]
    assert isinstance(swish, graphkit.OpDef) and swish.problems() == []
    assert graphkit.check_op(swish).ok
    registry = graphkit.builtin_registry(strict=True)
    registry.register_plugin(type("Plugin", (), {
        "graphkit_register_ops": staticmethod(namespace["graphkit_register_ops"])})(),
        name="gen")
    assert registry.plugins["gen"].ops == ["gen_gate::Swish@1"]


@pytest.mark.parametrize("name", ["", "my gates", "1gates", "gates-", "gates_", "my.gates",
                                  "gätes", "-gates", "class", "graphkit", "graphkit-backprop",
                                  "Graphkit_Backprop"])
def test_invalid_names_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match="is not a valid plugin name"):
        check_name(name)
    assert_one_error(run("new-plugin", "--dir", str(tmp_path), "--", name),
                     "not a valid plugin name")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["g", "graphkit-my-gates", "My_Gates2", "a-b_c"])
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("domain", ["", "ai.onnx", "ai.onnx.ml", "my gates", ".hidden", "a::b"])
def test_invalid_domains_are_refused(domain: str, tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError):
        check_domain(domain)
    assert_one_error(run("new-plugin", "my-gates", "--dir", str(tmp_path), "--domain", domain),
                     "domain")
    assert list(tmp_path.iterdir()) == []


def test_new_plugin_writes_the_folder(tmp_path: Path) -> None:
    result = run("new-plugin", "graphkit-my-gates", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"wrote {tmp_path / 'graphkit-my-gates'}/")
    folder = tmp_path / "graphkit-my-gates"
    written = {p.relative_to(folder).as_posix(): p.read_text()
               for p in folder.rglob("*") if p.is_file()}
    assert written == plugin_files("graphkit-my-gates")
    assert [p.name for p in tmp_path.iterdir()] == ["graphkit-my-gates"]  # no staging left


def test_new_plugin_into_an_empty_existing_folder(tmp_path: Path) -> None:
    (tmp_path / "gates").mkdir()
    assert write_plugin("gates", tmp_path) == tmp_path / "gates"
    assert (tmp_path / "gates" / "gates" / "__init__.py").is_file()


def test_a_folder_that_is_not_empty_is_left_alone(tmp_path: Path) -> None:
    folder = tmp_path / "my-gates"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    assert_one_error(run("new-plugin", "my-gates", "--dir", str(tmp_path)),
                     "already exists and is not an empty folder")
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    assert (folder / "notes.txt").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["my-gates"]


def test_a_file_in_the_way_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "my-gates").write_text("a file")
    assert_one_error(run("new-plugin", "my-gates", "--dir", str(tmp_path)), "already exists")
    assert (tmp_path / "my-gates").read_text() == "a file"


def test_a_missing_dir_is_an_error(tmp_path: Path) -> None:
    assert_one_error(run("new-plugin", "my-gates", "--dir", str(tmp_path / "nowhere")),
                     "does not exist")
    assert not (tmp_path / "nowhere").exists()


def test_help_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plugins").mkdir()
    result = run("new-plugin", "--help")
    assert result.exit_code == 0
    examples = [line.strip() for line in result.stdout.splitlines()
                if line.strip().startswith("graphkit new-plugin ")]
    assert len(examples) == 2
    for example in examples:
        outcome = run(*shlex.split(example)[1:])
        assert outcome.exit_code == 0, (example, outcome.stderr)
    assert (tmp_path / "graphkit-my-gates" / "graphkit_my_gates").is_dir()
    assert (tmp_path / "plugins" / "my-gates" / "my_gates").is_dir()
