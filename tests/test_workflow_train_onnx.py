"""The whole workflow: a graph written as JSON, trained with `graphkit train`, exported with
`graphkit export`, run in onnxruntime, with the same predictions as graphkit's.

Also runs docs/training.md's walkthrough (the section "## The 2-layer net on handwritten
digits, from the shell") as written, in a folder holding a link to examples/:

- ```sh blocks: each `$ COMMAND` line runs and must exit 0 (`pip install` lines are skipped:
  the test environment has the extras). `graphkit` runs in-process through click's CliRunner,
  `python SCRIPT ARGS` runs the script in-process. The lines under a command, up to the next
  `$`, must appear in order among its real stdout lines, run times and the opset aside.
- `<!-- run: python -->` before a ```python block: the snippet runs there (it asserts its own
  results).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import runpy
import shlex
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner

import graphkit
from graphkit.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PAGE = ROOT / "docs" / "training.md"
HEADING = "## The 2-layer net on handwritten digits, from the shell"


def graphkit_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), prog_name="graphkit")
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def digits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The digits .npz files, written by examples/digits_npz.py into tmp_path/digits."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.delitem(sys.modules, "digits_npz", raising=False)
    import digits_npz

    with contextlib.redirect_stdout(io.StringIO()):
        digits_npz.main([str(tmp_path / "digits")])
    return tmp_path / "digits"


def handwritten_json(hidden: int = 32) -> str:
    """A 2-layer net written as a JSON document (the weights as nested lists)."""
    rng = np.random.default_rng(42)
    return json.dumps({
        "format_version": 1,
        "name": "digits_by_hand",
        "inputs": [{"name": "X", "dtype": "float64", "shape": ["N", 64]},
                   {"name": "y", "dtype": "int64", "shape": ["N"]}],
        "outputs": ["scores", "loss"],
        "constants": [
            {"name": "W1", "shape": [64, hidden], "trainable": True,
             "data": (rng.normal(size=(64, hidden)) * np.sqrt(2 / 64)).round(4).tolist()},
            {"name": "b1", "shape": [hidden], "trainable": True, "data": [0.0] * hidden},
            {"name": "W2", "shape": [hidden, 10], "trainable": True,
             "data": (rng.normal(size=(hidden, 10)) * np.sqrt(1 / hidden)).round(4).tolist()},
            {"name": "b2", "shape": [10], "trainable": True, "data": [0.0] * 10},
        ],
        "nodes": [
            {"op": "MatMul", "inputs": ["X", "W1"], "outputs": ["XW1"]},
            {"op": "Add", "inputs": ["XW1", "b1"], "outputs": ["z1"]},
            {"op": "Relu", "inputs": ["z1"], "outputs": ["h"]},
            {"op": "MatMul", "inputs": ["h", "W2"], "outputs": ["hW2"]},
            {"op": "Add", "inputs": ["hW2", "b2"], "outputs": ["scores"]},
            {"op": "SoftmaxCrossEntropy", "inputs": ["scores", "y"], "outputs": ["loss"]},
        ],
    }, indent=1)


def test_json_to_training_to_onnx_to_onnxruntime(tmp_path: Path, digits: Path) -> None:
    graph = tmp_path / "net.json"
    graph.write_text(handwritten_json())
    trained, model = tmp_path / "trained.json", tmp_path / "trained.onnx"

    code, stdout, stderr = graphkit_cli(
        "train", str(graph), "--data", str(digits / "digits_train.npz"), "--loss", "loss",
        "--optimizer", "adam", "--lr", "0.003", "--epochs", "8", "-o", str(trained))
    assert code == 0, stderr
    assert stdout.splitlines()[-1] == f"wrote {trained}"
    code, stdout, stderr = graphkit_cli("export", str(trained), "-o", str(model))
    assert code == 0, stderr

    test = dict(np.load(digits / "digits_test.npz"))
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    theirs_scores, theirs_loss = session.run(["scores", "loss"], test)
    ours = graphkit.execute(graphkit.load(trained), test).outputs
    np.testing.assert_array_equal(ours["scores"].argmax(axis=1), theirs_scores.argmax(axis=1))
    np.testing.assert_allclose(ours["scores"], theirs_scores, rtol=1e-9, atol=1e-9)
    assert float(theirs_loss) == pytest.approx(float(ours["loss"]), rel=1e-9)
    assert np.mean(theirs_scores.argmax(axis=1) == test["y"]) >= 0.95

    # the trained parameters travel as trainable constants: importing gives the graph back
    code, _, stderr = graphkit_cli("import", str(model), "-o", str(tmp_path / "back.json"))
    assert code == 0, stderr
    assert graphkit.load(tmp_path / "back.json") == graphkit.load(trained)


# -- docs/training.md's walkthrough --------------------------------------------------------


def walkthrough() -> list[tuple[str, str, list[str]]]:
    """The section's steps: ("command", line, shown output) or ("python", snippet, [])."""
    text = PAGE.read_text()
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    steps: list[tuple[str, str, list[str]]] = []
    for marker, language, body in re.findall(
        r"(<!-- run: python -->\n)?```(\w*)\n(.*?)```", section, re.S
    ):
        if language == "sh":
            for line in body.splitlines():
                if line.startswith("$ "):
                    steps.append(("command", line[2:], []))
                elif steps:
                    steps[-1][2].append(line)
        elif language == "python" and marker:
            steps.append(("python", body, []))
    return steps


def normalised(line: str) -> str:
    line = re.sub(r" in \d+(\.\d+)? s\b", " in T s", line)
    return re.sub(r"\(opset \d+,", "(opset N,", line).strip()


def run_command(command: str) -> str:
    args = shlex.split(command)
    if args[0] == "graphkit":
        code, stdout, stderr = graphkit_cli(*args[1:])
        assert code == 0, (command, stdout, stderr)
        return stdout
    assert args[0] == "python", command
    output = io.StringIO()
    argv = sys.argv
    sys.argv = args[1:]
    try:
        with contextlib.redirect_stdout(output):
            runpy.run_path(args[1], run_name="__main__")
    finally:
        sys.argv = argv
    return output.getvalue()


def test_the_walkthrough_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = walkthrough()
    kinds = [kind for kind, _, _ in steps]
    assert kinds.count("command") >= 4 and kinds.count("python") >= 1
    (tmp_path / "examples").symlink_to(EXAMPLES, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(EXAMPLES))  # as running the script puts its folder first
    for kind, text, shown in steps:
        if kind == "python":
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(text, str(PAGE), "exec"), {"__name__": "walkthrough"})  # noqa: S102
            continue
        if text.startswith("pip install"):
            continue
        actual = [normalised(line) for line in run_command(text).splitlines()]
        position = 0
        for line in (normalised(s) for s in shown):
            assert line in actual[position:], (text, line, actual)
            position = actual.index(line, position) + 1
    assert (tmp_path / "digits" / "loss.png").read_bytes()[:4] == b"\x89PNG"
