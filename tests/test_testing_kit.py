"""graphkit.testing, the conformance kit for gates: graphkit's own ops pass it (graphkit
dogfooding the checks it offers plugins), each kind of broken gate fails exactly the check
that names its fault, and plugins load by every name a user would give."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from pydantic import BaseModel

import graphkit
from graphkit import OpDef, PluginError
from graphkit.cli.main import cli
from graphkit.onnxmap import OnnxMapping
from graphkit.ops import BUILTIN_OPS
from graphkit.testing import CHECKS, GateReport, check_gate, gate_tests, plugin_gates

pytest_plugins = ["pytester"]

OPS = {op.name: op for op in BUILTIN_OPS}
EXAMPLES = 5
"""Points per check: enough to find each broken gate below, few enough to stay fast."""


def statuses(report: GateReport) -> dict[str, str]:
    return {check.name: check.status for check in report.checks}


def failed(report: GateReport) -> list[str]:
    return [check.name for check in report.failed]


def broken(name: str, **changes: Any) -> OpDef:
    """A built-in op, renamed into a domain of its own, with one thing changed."""
    return dataclasses.replace(OPS[name], domain="test.broken", **changes)


# -- graphkit's own ops ---------------------------------------------------------------------


@pytest.mark.parametrize("op", BUILTIN_OPS, ids=lambda op: op.name)
def test_every_builtin_op_passes_every_check(op: OpDef) -> None:
    report = check_gate(op, examples=EXAMPLES)
    assert report.ok, report.summary()
    assert [check.name for check in report.checks] == list(CHECKS)
    expected = dict.fromkeys(CHECKS, "passed")
    if op.vjp is None:
        expected["gradient"] = "skipped"
    assert statuses(report) == expected, report.checks


def test_a_passing_report_says_what_was_checked() -> None:
    report = check_gate(OPS["Elu"], examples=3)
    assert re.fullmatch(r"worst relative error \S+ \(tolerance 1e-06\) over 3 points",
                        report["gradient"].detail)
    assert "float32 and float64" in report["contracts"].detail
    # onnxruntime has no float64 Elu: the reference evaluator stands in, and the detail says so
    assert "onnxruntime has no float64 kernel" in report["onnx"].detail
    assert "ReferenceEvaluator" in report["onnx"].detail
    assert check_gate(OPS["Greater"], examples=2)["gradient"].detail == \
        "not differentiable (vjp=None)"
    assert report.to_dict()["op"] == "Elu@1" and report.to_dict()["ok"] is True


# -- broken gates fail exactly the check that names the fault --------------------------------


def test_a_gradient_off_by_a_factor_fails_the_gradient_check() -> None:
    op = broken("Tanh", vjp=lambda g, y, x: (2 * g * (1 - y * y),))
    report = check_gate(op, examples=EXAMPLES)
    assert failed(report) == ["gradient"]
    detail = report["gradient"].detail
    assert re.search(r"input x0: relative error \S+ > tolerance 1e-06", detail)
    # hypothesis shrinks the failure to the smallest seed, which reproduces it
    seed = int(re.search(r"sample seed (\d+)", detail)[1])
    assert seed == 0
    (x,), attributes = op.sample(np.random.default_rng(seed))
    assert not graphkit.check_op_at(op, [x], attributes).ok


def test_without_hypothesis_numpy_draws_the_seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hypothesis", None)  # import hypothesis now fails
    report = check_gate(broken("Tanh", vjp=lambda g, y, x: (2 * g * (1 - y * y),)), examples=3)
    assert failed(report) == ["gradient"]
    assert "sample seed" in report["gradient"].detail
    assert check_gate(OPS["Tanh"], examples=3).ok


def test_a_gradient_of_the_wrong_shape_fails_the_contracts_check() -> None:
    op = broken("Neg", vjp=lambda g, y, x: (-np.reshape(g, -1),))  # right values, flattened
    report = check_gate(op, examples=EXAMPLES)
    assert failed(report) == ["contracts"]
    assert re.search(r"gradient 0 has shape \(\d+,\) for an input of shape \(\d+, \d+",
                     report["contracts"].detail)
    assert report["gradient"].status == "skipped"
    assert "see the contracts check" in report["gradient"].detail


def test_a_wrong_number_of_gradients_fails_the_contracts_check() -> None:
    op = broken("Add", vjp=lambda g, y, a, b: (g,))
    report = check_gate(op, examples=EXAMPLES)
    assert failed(report) == ["contracts"]
    assert "vjp returned 1 for 2 inputs" in report["contracts"].detail


def test_a_silent_float32_upcast_fails_the_contracts_check() -> None:
    op = broken("Exp", forward=lambda x: np.exp(x.astype(np.float64)))
    report = check_gate(op, examples=EXAMPLES)
    assert failed(report) == ["contracts"]
    assert "output 0 is float64 for float32 inputs" in report["contracts"].detail
    assert "no silent upcast" in report["contracts"].detail


def _negate_and_scribble(x: np.ndarray) -> np.ndarray:
    y = -x
    if isinstance(x, np.ndarray):  # 0-d values arrive as numpy scalars, which cannot be written
        x[...] = 0.0
    return y


def test_writing_into_an_input_fails_the_contracts_check() -> None:
    report = check_gate(broken("Neg", forward=_negate_and_scribble), examples=EXAMPLES)
    assert failed(report) == ["contracts"]
    assert "forward writes into input 0" in report["contracts"].detail


def test_a_vjp_reading_what_saves_leaves_out_fails_the_contracts_check() -> None:
    op = broken("Exp", saves=frozenset({"inputs"}))  # its rule reads the output y
    report = check_gate(op, examples=EXAMPLES)
    assert failed(report) == ["contracts"]
    assert "does it read a value `saves` leaves out?" in report["contracts"].detail


def test_a_forward_saving_that_disagrees_with_forward_fails_the_contracts_check() -> None:
    good = OPS["SoftmaxCrossEntropy"].forward_saving
    assert good is not None

    def doubled(scores: Any, labels: Any) -> Any:
        loss, residual = good(scores, labels)
        return loss * 2, residual

    report = check_gate(broken("SoftmaxCrossEntropy", forward_saving=doubled),
                        examples=EXAMPLES)
    assert failed(report) == ["contracts"]
    assert "forward_saving's output differs from forward's" in report["contracts"].detail


def test_a_forward_saving_without_a_residual_fails_the_contracts_check() -> None:
    op = broken("SoftmaxCrossEntropy", forward_saving=OPS["SoftmaxCrossEntropy"].forward)
    report = check_gate(op, examples=EXAMPLES)
    assert "contracts" in failed(report)
    assert "forward_saving must return a tuple (output, residual)" in report["contracts"].detail


def test_a_shape_infer_disagrees_with_fails_the_contracts_check() -> None:
    report = check_gate(broken("Sum", infer=lambda shape, **_: [()]), examples=EXAMPLES)
    assert failed(report) == ["contracts"]
    assert "but infer says ()" in report["contracts"].detail


class LooseAttributes(BaseModel):
    """No extra="forbid": a misspelt attribute would be silently ignored."""

    alpha: float = 0.01


def test_an_attribute_model_without_extra_forbid_fails_the_attributes_check() -> None:
    report = check_gate(broken("LeakyRelu", attributes=LooseAttributes), examples=EXAMPLES)
    assert failed(report) == ["attributes"]
    assert 'extra="forbid"' in report["attributes"].detail


class UntypedAttributes(graphkit.NoAttributes):
    alpha: Any = 0.01


def test_an_untyped_attribute_fails_the_attributes_check() -> None:
    report = check_gate(broken("LeakyRelu", attributes=UntypedAttributes), examples=EXAMPLES)
    assert failed(report) == ["attributes"]
    assert "field 'alpha' accepts" in report["attributes"].detail


def _swish(x: np.ndarray) -> np.ndarray:
    return x / (1 + np.exp(-x))


def _swish_vjp(g: np.ndarray, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    s = 1 / (1 + np.exp(-x))
    return (g * (s + x * s * (1 - s)),)


def swish(decomposition: Any) -> OpDef:
    return OpDef(
        "Swish", _swish, _swish_vjp, domain="test.broken", infer=lambda s: [s],
        sample=lambda rng: ([rng.uniform(-3, 3, size=(2, 3))], {}),
        onnx=OnnxMapping("Swish", domain="test.broken", decomposition=decomposition),
    )


def test_an_onnx_decomposition_that_disagrees_fails_the_onnx_check() -> None:
    assert check_gate(swish(lambda g, x: x * x.sigmoid()), examples=3).ok
    report = check_gate(swish(lambda g, x: x * x.tanh()), examples=3)
    assert failed(report) == ["onnx"]
    assert re.search(r"output y0: onnx and graphkit differ by up to \S+ \(rtol and atol 1e-05\)"
                     r", with float64 inputs at sample seed 0", report["onnx"].detail)


def test_an_op_without_onnx_mapping_skips_the_onnx_check() -> None:
    report = check_gate(broken("Neg", onnx=None), examples=2)
    assert report.ok
    assert report["onnx"].status == "skipped"
    assert report["onnx"].detail == "no ONNX mapping (export will fail)"


def test_an_exception_inside_a_check_fails_that_check_and_never_escapes() -> None:
    def boom(x: np.ndarray) -> np.ndarray:
        raise RuntimeError("boom")

    report = check_gate(broken("Neg", forward=boom), examples=2)
    assert set(failed(report)) == {"gradient", "contracts", "onnx"}
    assert all("boom" in check.detail for check in report.failed)
    assert "RuntimeError: boom" in report["contracts"].detail


def test_an_op_without_sample_fails_the_sample_check_and_skips_what_needs_one() -> None:
    report = check_gate(broken("Neg", sample=None), examples=2)
    assert failed(report) == ["sample"]
    assert "has no sample(rng)" in report["sample"].detail
    assert statuses(report) == {"sample": "failed", "gradient": "skipped",
                                "contracts": "skipped", "attributes": "passed",
                                "onnx": "skipped"}


def test_a_sample_the_op_cannot_take_fails_the_sample_check() -> None:
    report = check_gate(broken("Add", sample=lambda rng: ([np.ones(3)], {})), examples=2)
    assert failed(report) == ["sample"]
    assert "sample(rng) gave 1 inputs; the op takes 2 inputs" in report["sample"].detail


def test_numpy_attribute_values_in_a_sample_are_taken_as_plain_numbers() -> None:
    def sample(rng: np.random.Generator) -> tuple[list[np.ndarray], dict[str, Any]]:
        return [rng.uniform(-1, 1, size=(2, 3))], {"axis": np.int64(1)}

    assert check_gate(broken("Softmax", sample=sample), examples=2).ok


def test_the_report_summary_lists_the_failed_checks() -> None:
    report = check_gate(broken("Exp", forward=lambda x: np.exp(x.astype(np.float64))),
                        examples=2)
    lines = report.summary().splitlines()
    assert lines[0] == "gate test.broken::Exp@1: 1 of 5 checks failed"
    assert lines[1].startswith("  contracts: output 0 is float64 for float32 inputs")


# -- loading a plugin -----------------------------------------------------------------------

PLUGIN = '''
import numpy as np

import graphkit
from graphkit import OpDef


def sample(rng):
    return [rng.uniform(-2, 2, size=(2, 3))], {{}}


DOUBLE = OpDef("Double", lambda x: 2 * x, lambda g, y, x: (2 * g,), domain="test.kit",
               saves=frozenset(), sample=sample)
TRIPLE = OpDef("Triple", lambda x: 3 * x, lambda g, y, x: ({triple_gradient} * g,),
               domain="test.kit", saves=frozenset(), sample=sample)


@graphkit.hookimpl
def graphkit_register_ops(register):
    register(DOUBLE)
    register(TRIPLE)
'''


def write_plugin(folder: Path, name: str = "kit_plugin", triple_gradient: int = 3) -> Path:
    path = folder / f"{name}.py"
    path.write_text(PLUGIN.format(triple_gradient=triple_gradient))
    return path


def test_plugin_gates_of_a_py_file(tmp_path: Path) -> None:
    gates = plugin_gates(str(write_plugin(tmp_path)))
    assert [op.qualname for op in gates] == ["test.kit::Double@1", "test.kit::Triple@1"]
    assert [op.qualname for op in plugin_gates(write_plugin(tmp_path))] == \
        ["test.kit::Double@1", "test.kit::Triple@1"]  # a Path works too


def test_plugin_gates_of_a_module_name_and_of_a_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_plugin(tmp_path, "kit_plugin_module")
    monkeypatch.syspath_prepend(str(tmp_path))
    gates = plugin_gates("kit_plugin_module")
    assert [op.name for op in gates] == ["Double", "Triple"]
    assert plugin_gates(sys.modules["kit_plugin_module"]) == gates
    monkeypatch.delitem(sys.modules, "kit_plugin_module")


def test_plugin_gates_of_the_builtin_plugin() -> None:
    assert [op.name for op in plugin_gates("graphkit.ops")] == [op.name for op in BUILTIN_OPS]


def test_plugin_gates_of_an_entry_point_or_its_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_plugin(tmp_path, "kit_dist_plugin")
    info = tmp_path / "graphkit_kit_dist-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: graphkit-kit-dist\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text("[graphkit]\nkit = kit_dist_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("kit", "graphkit-kit-dist", "graphkit_kit_dist"):
        assert [op.name for op in plugin_gates(name)] == ["Double", "Triple"], name
    monkeypatch.delitem(sys.modules, "kit_dist_plugin")
    assert importlib.metadata.version("graphkit-kit-dist") == "1.0"


def test_plugin_gates_errors_name_the_plugin(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match=r"plugin 'no_such_plugin_x' not found"):
        plugin_gates("no_such_plugin_x")
    missing = str(tmp_path / "missing.py")
    with pytest.raises(PluginError, match=re.escape(f"plugin {missing!r}: no such file")):
        plugin_gates(missing)
    crashing = tmp_path / "crashing.py"
    crashing.write_text("raise RuntimeError('cannot start')\n")
    with pytest.raises(PluginError, match=r"crashing.py' failed to import: RuntimeError: "
                                          r"cannot start"):
        plugin_gates(str(crashing))
    empty = tmp_path / "empty.py"
    empty.write_text("def graphkit_register_ops(register):\n    pass\n")
    with pytest.raises(PluginError, match=r"empty.py"):
        plugin_gates(str(empty))
    clash = tmp_path / "clash.py"
    clash.write_text("import graphkit\nfrom graphkit.ops import BUILTIN_OPS\n\n\n"
                     "@graphkit.hookimpl\ndef graphkit_register_ops(register):\n"
                     "    register(BUILTIN_OPS[0])\n")
    with pytest.raises(PluginError, match=r"clash.py.*Add@1"):
        plugin_gates(str(clash))


# -- pytest: gate_tests and the marker with the gate fixture ----------------------------------


def pytest_plugin_args() -> list[str]:
    """Load graphkit's pytest plugin by hand unless its pytest11 entry point is installed."""
    installed = any(entry.value == "graphkit.testing.pytest_plugin"
                    for entry in importlib.metadata.entry_points(group="pytest11"))
    return [] if installed else ["-p", "graphkit.testing.pytest_plugin"]


def test_gate_tests_is_a_test_parametrized_by_op(tmp_path: Path) -> None:
    test = gate_tests(str(write_plugin(tmp_path)), examples=2)
    (mark,) = test.pytestmark  # type: ignore[attr-defined]
    argname, gates = mark.args
    assert argname == "gate" and mark.kwargs["ids"] == ["test.kit::Double@1",
                                                         "test.kit::Triple@1"]
    assert gates[0].check().ok and gates[0].check_kwargs == {"examples": 2}


def test_gate_tests_collects_one_test_per_op(pytester: pytest.Pytester) -> None:
    plugin = write_plugin(pytester.path, triple_gradient=4)
    pytester.makepyfile(test_kit=f"""
        from graphkit.testing import gate_tests

        test_gates = gate_tests({str(plugin)!r}, examples=3)
    """)
    result = pytester.runpytest("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*test_gates?test.kit::Double@1? PASSED*",
        "*test_gates?test.kit::Triple@1? FAILED*",
        "*gate test.kit::Triple@1: 1 of 5 checks failed",
        "*gradient: input x0: relative error * > tolerance 1e-06 at sample seed 0*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_the_marker_and_the_gate_fixture(pytester: pytest.Pytester) -> None:
    plugin = write_plugin(pytester.path, triple_gradient=4)
    pytester.makepyfile(test_marked=f"""
        import pytest


        @pytest.mark.graphkit_gates({str(plugin)!r}, examples=3)
        def test_gate(gate):
            gate.check()


        @pytest.mark.graphkit_gates({str(plugin)!r})
        def test_gradient_only(gate):
            assert gate.report(examples=2)["attributes"].ok


        def test_gate_without_marker(gate):
            pass
    """)
    result = pytester.runpytest("-v", "-p", "no:cacheprovider", *pytest_plugin_args())
    result.assert_outcomes(passed=3, failed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*test_gate?test.kit::Double@1? PASSED*",
        "*test_gate?test.kit::Triple@1? FAILED*",
        "*the `gate` fixture needs @pytest.mark.graphkit_gates(plugin) on the test*",
        "*gradient: input x0: relative error*",
    ])
    markers = pytester.runpytest("--markers", *pytest_plugin_args())
    markers.stdout.fnmatch_lines(["@pytest.mark.graphkit_gates(plugin, **check_kwargs):*"])


def test_marker_mistakes_are_collection_errors_naming_the_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_wrong='''
        import pytest


        @pytest.mark.graphkit_gates("no_such_plugin_x")
        def test_unknown(gate):
            gate.check()
    ''')
    result = pytester.runpytest("-p", "no:cacheprovider", *pytest_plugin_args())
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["test_wrong.py::test_unknown: plugin 'no_such_plugin_x' not "
                                 "found*"])


# -- graphkit check-plugin ------------------------------------------------------------------


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), prog_name="graphkit")


def test_check_plugin_on_graphkits_own_ops() -> None:
    result = run("check-plugin", "graphkit.ops", "--examples", "1")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("plugin graphkit.ops: 40 ops, 0 failed checks\n")
    assert re.search(r"^ MatMul@1 +gradient +passed +worst relative error", result.stdout,
                     re.M)
    document = json.loads(run("check-plugin", "graphkit.ops", "--examples", "1",
                              "--json").stdout)
    assert document["ok"] is True and document["failed"] == 0
    assert len(document["ops"]) == 40
    assert [c["name"] for c in document["ops"][0]["checks"]] == list(CHECKS)


def test_check_plugin_on_a_broken_plugin_exits_1(tmp_path: Path) -> None:
    plugin = str(write_plugin(tmp_path, triple_gradient=4))
    result = run("check-plugin", plugin, "--examples", "3")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"error: 1 check failed in plugin {plugin}"]
    assert re.search(r"^ test\.kit::Triple@1 +gradient +FAILED +input x0", result.stdout, re.M)
    result = run("check-plugin", plugin, "--examples", "3", "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False and document["failed"] == 1
    assert [op["ok"] for op in document["ops"]] == [True, False]


def test_check_plugin_of_an_unknown_plugin_is_one_error_line() -> None:
    result = run("check-plugin", "no_such_plugin_x")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: plugin 'no_such_plugin_x' not found")
