"""`graphkit export` and `graphkit import`, and the other commands reading .onnx files.

The success paths use the examples (the user-facing contract); the error paths need no ONNX
mapping of the built-in ops, except the missing-shape one (Exp). The library's own ONNX tests
(every op, every opset) are in test_onnx_export.py; here it is the command's contract: its one
output line, exit codes, one-line errors, and that a failed command leaves no file behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from click.testing import CliRunner, Result
from onnx import TensorProto, helper, numpy_helper

import graphkit
from graphkit.cli.main import cli
from graphkit.io.onnx_export import default_opset
from graphkit.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
ADD_MUL = str(EXAMPLES / "add_mul.json")
NEURON = str(EXAMPLES / "sigmoid_neuron.json")
NEURON_INPUTS = str(EXAMPLES / "sigmoid_neuron.inputs.json")
NET = str(EXAMPLES / "two_layer_net.json")
NET_INPUTS = str(EXAMPLES / "two_layer_net.inputs.json")
SHOWCASE = [ADD_MUL, NEURON, NET]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="graphkit")


def run_json(*args: str) -> dict:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def assert_error(result: Result, *fragments: str) -> str:
    """Exit 1 and exactly one stderr line `error: ...` containing every fragment."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert result.stdout == ""
    return lines[0]


def assert_usage_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def export(graph: str, out: Path, *options: str) -> Result:
    result = run("export", graph, "-o", str(out), *options)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    return result


def files(folder: Path) -> list[str]:
    """Every name in the folder, temporaries (.NAME.xxx.tmp) included."""
    return sorted(p.name for p in folder.iterdir())


def write_graph(path: Path, document: dict) -> str:
    path.write_text(json.dumps({"format_version": 1, "name": path.stem, **document}))
    return str(path)


def save_model(path: Path, nodes: list, inputs: list, outputs: list,
               initializers: tuple = (), domains: tuple = ()) -> str:
    """An ONNX model built with onnx.helper, as a tool other than graphkit would write it."""
    model = helper.make_model(
        helper.make_graph(nodes, path.stem, inputs, outputs, list(initializers)),
        opset_imports=[helper.make_opsetid("", default_opset()),
                       *(helper.make_opsetid(d, 1) for d in domains)],
    )
    model.ir_version = min(model.ir_version, onnx.IR_VERSION)
    path.write_bytes(model.SerializeToString())
    return str(path)


def onnxruntime_outputs(path: Path, values: dict) -> dict[str, np.ndarray]:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {}
    for arg in session.get_inputs():
        dtype = {"tensor(double)": np.float64, "tensor(float)": np.float32,
                 "tensor(int64)": np.int64}[arg.type]
        feeds[arg.name] = np.asarray(values[arg.name], dtype=dtype)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds), strict=True))


def inputs_of(graph: str) -> dict:
    return json.loads(Path(graph).with_suffix(".inputs.json").read_text())


# -- export --------------------------------------------------------------------------------


@pytest.mark.parametrize("graph", SHOWCASE, ids=lambda g: Path(g).stem)
def test_export_writes_a_model_onnxruntime_runs(graph: str, tmp_path: Path) -> None:
    out = tmp_path / f"{Path(graph).stem}.onnx"
    result = export(graph, out)
    nodes = len(graphkit.load(graph).nodes)
    assert result.stdout == f"wrote {out} (opset {default_opset()}, {nodes} nodes)\n"
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    assert {o.domain: o.version for o in model.opset_import}[""] == default_opset()
    values = inputs_of(graph)
    expected = run_json("execute", graph)["outputs"]
    got = onnxruntime_outputs(out, values)
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-10, atol=1e-12)
    assert files(tmp_path) == [out.name]  # no temporary left beside it


def test_export_opset(tmp_path: Path) -> None:
    out = tmp_path / "net.onnx"
    assert export(NET, out, "--opset", "17").stdout == f"wrote {out} (opset 17, 6 nodes)\n"
    assert {o.domain: o.version for o in onnx.load(out).opset_import}[""] == 17
    loss = onnxruntime_outputs(out, inputs_of(NET))["loss"]
    assert loss == pytest.approx(run_json("execute", NET)["outputs"]["loss"], rel=1e-10)


def test_export_replaces_an_existing_file_and_reads_onnx_too(tmp_path: Path) -> None:
    out = tmp_path / "add_mul.onnx"
    out.write_bytes(b"an old file")
    export(ADD_MUL, out)
    first = out.read_bytes()
    onnx.checker.check_model(onnx.load(out))
    export(str(out), out, "--opset", "13")  # GRAPH may be an .onnx file, even OUT itself
    assert {o.domain: o.version for o in onnx.load(out).opset_import}[""] == 13
    export(str(out), tmp_path / "again.onnx")
    assert (tmp_path / "again.onnx").read_bytes() == first
    assert files(tmp_path) == ["add_mul.onnx", "again.onnx"]


def test_export_output_extension_is_case_insensitive(tmp_path: Path) -> None:
    export(ADD_MUL, tmp_path / "ADD_MUL.ONNX")
    assert files(tmp_path) == ["ADD_MUL.ONNX"]


# -- export: errors are one line and leave no file behind -----------------------------------


def _lab_plugin() -> object:
    class LabOps:
        @graphkit.hookimpl
        def graphkit_register_ops(self, register) -> None:
            register(graphkit.OpDef("Frob", lambda x: x + 1, lambda g, y, x: (g,),
                                    domain="lab", doc="x + 1, with no ONNX mapping"))

    return LabOps()


@pytest.fixture
def lab_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's registry gets a plugin `lab-ops` whose op lab::Frob has no ONNX mapping."""

    def registry() -> Registry:
        reg = graphkit.builtin_registry(strict=True)
        reg.register_plugin(_lab_plugin(), name="lab-ops")
        return reg

    monkeypatch.setattr(graphkit, "default_registry", registry)


@pytest.mark.usefixtures("lab_registry")
def test_export_op_without_mapping_names_op_and_plugin(tmp_path: Path) -> None:
    graph = write_graph(tmp_path / "frob.json", {
        "inputs": [{"name": "x", "shape": []}], "outputs": ["f"],
        "nodes": [{"op": "lab::Frob", "inputs": ["x"], "outputs": ["f"]}],
    })
    assert run_json("execute", graph, "-i", "x=1")["outputs"] == {"f": 2.0}  # it runs
    out = tmp_path / "frob.onnx"
    assert_error(run("export", graph, "-o", str(out)), f"{graph}: graph 'frob' cannot be "
                 "exported: op lab::Frob (plugin lab-ops) has no ONNX mapping")
    assert files(tmp_path) == ["frob.json"]
    out.write_bytes(b"keep me")
    assert_error(run("export", graph, "-o", str(out)), "lab::Frob")
    assert out.read_bytes() == b"keep me"
    assert files(tmp_path) == ["frob.json", "frob.onnx"]


@pytest.mark.parametrize("opset", ["6", "1", "10000"])
def test_export_opset_out_of_range(tmp_path: Path, opset: str) -> None:
    out = tmp_path / "a.onnx"
    assert_error(run("export", ADD_MUL, "-o", str(out), "--opset", opset),
                 "add_mul.json", f"opset {opset} is outside what this exporter")
    assert files(tmp_path) == []


def test_export_input_without_shape(tmp_path: Path) -> None:
    graph = write_graph(tmp_path / "g.json", {
        "inputs": ["x", {"name": "y", "shape": [2]}], "outputs": ["f"],
        "nodes": [{"op": "Exp", "inputs": ["x"], "outputs": ["f"]}],
    })
    assert_error(run("export", graph, "-o", str(tmp_path / "g.onnx")),
                 f"{graph}: graph 'g': input 'x' has no declared shape", '"shape": ["N", 3]')
    assert files(tmp_path) == ["g.json"]


def test_export_bad_graph_files(tmp_path: Path) -> None:
    out = str(tmp_path / "out.onnx")
    assert_error(run("export", str(tmp_path / "nope.json"), "-o", out), "nope.json",
                 "no such file")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format_version": 1, "name": ')
    assert_error(run("export", str(bad), "-o", out), "bad.json", "Invalid JSON")
    broken = write_graph(tmp_path / "broken.json", {
        "inputs": [{"name": "x", "shape": []}], "outputs": ["f"],
        "nodes": [{"op": "Ad", "inputs": ["x", "y"], "outputs": ["f"]}],
    })
    assert_error(run("export", broken, "-o", out), "broken.json", "2 problems",
                 "unknown op Ad", "'y' is not defined")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage")
    assert_error(run("export", str(corrupt), "-o", out), "corrupt.onnx", "ONNX model")
    assert_error(run("export", str(tmp_path / "g.yaml"), "-o", out), "unknown file type .yaml")
    assert files(tmp_path) == ["bad.json", "broken.json", "corrupt.onnx"]


def test_export_to_a_missing_folder_or_a_folder(tmp_path: Path) -> None:
    assert_error(run("export", ADD_MUL, "-o", str(tmp_path / "no" / "a.onnx")),
                 "cannot write", "does not exist")
    (tmp_path / "dir.onnx").mkdir()
    assert_error(run("export", ADD_MUL, "-o", str(tmp_path / "dir.onnx")),
                 "cannot write", "is a folder")
    assert files(tmp_path) == ["dir.onnx"]


# -- import --------------------------------------------------------------------------------


@pytest.mark.parametrize("graph", SHOWCASE, ids=lambda g: Path(g).stem)
def test_import_gives_back_the_exported_graph(graph: str, tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    export(graph, model)
    out = tmp_path / "back.json"
    result = run("import", str(model), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    original = graphkit.load(graph)
    assert result.stdout == (f"wrote {out} ({len(original.nodes)} nodes, "
                             f"{len(original.constants)} constants)\n")
    assert graphkit.load(out) == original
    assert run_json("execute", str(out), "--inputs", str(Path(graph).with_suffix(
        ".inputs.json")), "--grad") == run_json("execute", graph, "--grad")


def test_import_counts_in_the_singular_and_replaces_the_output(tmp_path: Path) -> None:
    model = save_model(
        tmp_path / "one.onnx", [helper.make_node("Exp", ["x"], ["f"], name="e")],
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [2])],
        [helper.make_tensor_value_info("f", TensorProto.DOUBLE, [2])],
    )
    out = tmp_path / "one.json"
    out.write_text("old")
    result = run("import", model, "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"wrote {out} (1 node, 0 constants)\n"
    assert graphkit.load(out).nodes[0].op.name == "Exp"


@pytest.fixture
def foreign_model(tmp_path: Path) -> tuple[str, np.ndarray]:
    """f = sigmoid(W x + b), written with onnx.helper (no graphkit metadata); W, b initializers."""
    W = np.array([[0.5, -1.0, 0.25], [1.5, 0.5, -0.75]])
    b = np.array([0.1, -0.2])
    path = save_model(
        tmp_path / "foreign.onnx",
        [helper.make_node("MatMul", ["W", "x"], ["h"], name="matmul"),
         helper.make_node("Add", ["h", "b"], ["z"], name="add"),
         helper.make_node("Sigmoid", ["z"], ["f"], name="sigmoid")],
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [3])],
        [helper.make_tensor_value_info("f", TensorProto.DOUBLE, [2])],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(b, "b")],
    )
    return path, W


def test_execute_grad_on_a_foreign_model_and_its_import(
    foreign_model: tuple[str, np.ndarray], tmp_path: Path
) -> None:
    path, W = foreign_model
    x = np.array([1.0, 2.0, -1.0])
    f = onnxruntime_outputs(Path(path), {"x": x})["f"]
    direct = run_json("execute", path, "-i", f"x={x.tolist()}", "--grad")
    np.testing.assert_allclose(direct["outputs"]["f"], f, rtol=1e-12)
    assert list(direct["gradients"]) == ["x"]  # a foreign model's initializers are fixed
    np.testing.assert_allclose(direct["gradients"]["x"], W.T @ (f * (1 - f)), rtol=1e-12)
    weights = run_json("execute", path, "-i", f"x={x.tolist()}", "--wrt", "W", "--wrt", "b")
    np.testing.assert_allclose(weights["gradients"]["W"], np.outer(f * (1 - f), x), rtol=1e-12)
    np.testing.assert_allclose(weights["gradients"]["b"], f * (1 - f), rtol=1e-12)

    out = tmp_path / "foreign.json"
    assert run("import", path, "-o", str(out)).stdout == f"wrote {out} (3 nodes, 2 constants)\n"
    assert run_json("execute", str(out), "-i", f"x={x.tolist()}", "--grad") == direct
    report = run_json("gradcheck", path, "-i", f"x={x.tolist()}", "--wrt", "x", "--wrt", "W")
    assert report["ok"] is True and set(report["errors"]) == {"x", "W"}


def test_validate_execute_gradcheck_read_onnx_directly(tmp_path: Path) -> None:
    model = tmp_path / "neuron.onnx"
    export(NEURON, model)
    result = run("validate", str(model))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{model}: ok (8 nodes, 5 inputs, 1 output)\n"
    expected = run_json("execute", NEURON, "--grad")
    assert run_json("execute", str(model), "--inputs", NEURON_INPUTS, "--grad") == expected
    report = run_json("gradcheck", str(model), "--inputs", NEURON_INPUTS)
    assert report["ok"] is True and set(report["errors"]) == {"w0", "x0", "w1", "x1", "w2"}
    shutil.copy(NEURON_INPUTS, tmp_path / "neuron.inputs.json")  # the sibling, as for .json
    assert run_json("execute", str(model), "--grad") == expected
    net = tmp_path / "net.onnx"
    export(NET, net)
    assert run_json("gradcheck", str(net), "--inputs", NET_INPUTS)["ok"] is True
    assert run_json("execute", str(net), "--inputs", NET_INPUTS, "--grad") == \
        run_json("execute", NET, "--grad")


# -- import: errors ------------------------------------------------------------------------


def test_import_lists_every_unsupported_op_with_its_node_count(tmp_path: Path) -> None:
    """Ops far from the lecture's (graphkit will not map them soon), and a custom domain's."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4])
    model = save_model(
        tmp_path / "model.onnx",
        [helper.make_node("GRU", ["x", "w", "w"], ["g1"], hidden_size=1, name="gru1"),
         helper.make_node("Relu", ["g1"], ["r"], name="relu"),
         helper.make_node("GRU", ["r", "w", "w"], ["g2"], hidden_size=1, name="gru2"),
         helper.make_node("NonZero", ["g2"], ["n"], name="nonzero"),
         helper.make_node("Frob", ["n"], ["f"], domain="com.example", name="frob")],
        [x], [helper.make_tensor_value_info("f", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.ones((1, 3, 1), np.float32), "w")],
        domains=("com.example",),
    )
    listed = "unsupported ONNX ops: GRU (2 nodes), NonZero (1 node), com.example::Frob (1 node)"
    out = tmp_path / "model.json"
    assert_error(run("import", model, "-o", str(out)), f"{model}: {listed}")
    assert_error(run("execute", model), f"{model}: {listed}")
    assert_error(run("export", model, "-o", str(tmp_path / "again.onnx")), listed)
    assert files(tmp_path) == ["model.onnx"]


def _valid_model_bytes() -> bytes:
    model = helper.make_model(helper.make_graph(
        [helper.make_node("Exp", ["x"], ["f"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [2])],
        [helper.make_tensor_value_info("f", TensorProto.DOUBLE, [2])],
        [numpy_helper.from_array(np.arange(64.0), "unused")],
    ))
    return model.SerializeToString()


@pytest.mark.parametrize(("content", "fragment"), [
    (b"\x08\x07\xff\xff\xff garbage", "not a valid ONNX model"),
    (b"", "not an ONNX model (ir_version 0"),
    (_valid_model_bytes()[:-200], "not a valid ONNX model (malformed or truncated)"),
    (b'{"format_version": 1}', "ONNX model"),
], ids=["garbage", "empty", "truncated", "json"])
def test_import_corrupt_onnx(tmp_path: Path, content: bytes, fragment: str) -> None:
    model = tmp_path / "bad.onnx"
    model.write_bytes(content)
    out = tmp_path / "bad.json"
    assert_error(run("import", str(model), "-o", str(out)), f"{model}: ", fragment)
    assert_error(run("execute", str(model)), f"{model}: ", fragment)
    assert files(tmp_path) == ["bad.onnx"]


def test_import_missing_file_or_folder(tmp_path: Path) -> None:
    out = str(tmp_path / "out.json")
    assert_error(run("import", str(tmp_path / "nope.onnx"), "-o", out), "nope.onnx",
                 "no such file")
    (tmp_path / "dir.onnx").mkdir()
    assert_error(run("import", str(tmp_path / "dir.onnx"), "-o", out), "dir.onnx", "folder")
    assert files(tmp_path) == ["dir.onnx"]


def test_import_refuses_a_graph_that_does_not_validate(tmp_path: Path) -> None:
    model = save_model(
        tmp_path / "shapes.onnx", [helper.make_node("Add", ["x", "y"], ["f"], name="add")],
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [2]),
         helper.make_tensor_value_info("y", TensorProto.DOUBLE, [3])],
        [helper.make_tensor_value_info("f", TensorProto.DOUBLE, [3])],
    )
    assert_error(run("import", model, "-o", str(tmp_path / "shapes.json")),
                 f"{model}: graph 'shapes' has", "'add'")
    assert files(tmp_path) == ["shapes.onnx"]


# -- usage errors exit 2 -------------------------------------------------------------------


@pytest.mark.parametrize(("args", "fragments"), [
    (["export", ADD_MUL], ["Missing option '-o' / '--output'"]),
    (["import", "model.onnx"], ["Missing option '-o' / '--output'"]),
    (["export", "-o", "x.onnx"], ["Missing argument 'GRAPH'"]),
    (["import", "-o", "x.json"], ["Missing argument 'MODEL.onnx'"]),
    (["export", ADD_MUL, "-o", "x.json"], ["'x.json' does not end in .onnx", "graphkit import"]),
    (["export", ADD_MUL, "-o", "x"], ["'x' does not end in .onnx"]),
    (["import", "model.onnx", "-o", "x.onnx"],
     ["'x.onnx' does not end in .json", "graphkit export"]),
    (["export", ADD_MUL, "-o", "x.onnx", "--opset", "0"], ["--opset"]),
    (["export", ADD_MUL, "-o", "x.onnx", "--opset", "newest"], ["--opset"]),
    (["export", ADD_MUL, "-o", "x.onnx", "--bogus"], ["--bogus"]),
])
def test_usage_errors_exit_2(
    args: list[str], fragments: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert_usage_error(run(*args), "Usage: graphkit", *fragments)
    assert files(tmp_path) == []


# -- the real console script ---------------------------------------------------------------


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    installed = Path(sys.executable).with_name("graphkit")
    command = [str(installed)] if installed.is_file() and os.access(installed, os.X_OK) \
        else [sys.executable, "-m", "graphkit.cli.main"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120, check=False)


def test_script_export_import_and_their_errors(tmp_path: Path) -> None:
    model, back = tmp_path / "neuron.onnx", tmp_path / "neuron.json"
    done = run_script("export", "examples/sigmoid_neuron.json", "-o", str(model))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.startswith(f"wrote {model} (opset ")
    done = run_script("import", str(model), "-o", str(back))
    assert (done.returncode, done.stdout, done.stderr) == (
        0, f"wrote {back} (8 nodes, 2 constants)\n", "")
    for args in (["export", "examples/add_mul.json", "-o", str(model), "--opset", "6"],
                 ["import", "examples/add_mul.json", "-o", str(back)]):
        done = run_script(*args)
        assert done.returncode == 1
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
