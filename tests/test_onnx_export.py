"""Exported models pass onnx.checker (full check), run unchanged in onnxruntime with graphkit's
outputs, and import back to an equal graph: for every built-in op and every example."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx.reference import ReferenceEvaluator

import graphkit
from graphkit.gradcheck import single_node_graph
from graphkit.io.onnx_export import ExportError, default_opset, to_onnx
from graphkit.io.onnx_import import from_onnx
from graphkit.onnxmap import mappings
from graphkit.ops import BUILTIN_OPS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.json") if ".inputs" not in p.name)
TOLERANCE = {"float64": 1e-5, "float32": 1e-4}
# (op, dtype, opset) combinations onnxruntime has no kernel for (NOT_IMPLEMENTED): there the
# exported model is run by onnx's reference evaluator instead; docs/onnx.md lists them.
ORT_GAPS = {
    ("Elu", "float64"), ("LeakyRelu", "float64"), ("Clip", "float64", 7), ("Clip", "float64", 11),
}


def ort_has_kernel(op: str, dtype: str, opset: int) -> bool:
    return (op, dtype) not in ORT_GAPS and (op, dtype, opset) not in ORT_GAPS


def run_onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds), strict=True))


def feeds_for(graph: graphkit.Graph, values: dict[str, object]) -> dict[str, np.ndarray]:
    return {i.name: np.asarray(values[i.name], dtype=i.dtype or "float64") for i in graph.inputs}


def opsets_for(op: graphkit.OpDef) -> list[int]:
    """The default opset, and the first opset of each of the op's mappings (standard domain)."""
    newest = default_opset()
    found = {newest}
    for mapping in mappings(op.onnx):
        if mapping.domain in ("", "ai.onnx") and mapping.since <= newest:
            found.add(max(mapping.since, 7))
    return sorted(found)


def cases() -> list[tuple[graphkit.OpDef, int, str, int]]:
    found = []
    for op in BUILTIN_OPS:
        for opset in opsets_for(op):
            for dtype in ("float64", "float32"):
                for seed in range(3):
                    found.append((op, opset, dtype, seed))
    return found


@pytest.mark.parametrize(("op", "opset", "dtype", "seed"), cases(),
                         ids=lambda v: v.name if isinstance(v, graphkit.OpDef) else str(v))
def test_every_builtin_op_exports_and_runs_in_onnxruntime(
    op: graphkit.OpDef, opset: int, dtype: str, seed: int
) -> None:
    assert op.sample is not None
    arrays, attributes = op.sample(np.random.default_rng(seed))
    arrays = [np.asarray(a, dtype=dtype) if np.asarray(a).dtype.kind == "f" else np.asarray(a)
              for a in arrays]
    graph, inputs = single_node_graph(op, arrays, attributes)
    graph = graph.model_copy(update={"inputs": [
        i.model_copy(update={"dtype": str(np.asarray(inputs[i.name]).dtype)})
        for i in graph.inputs
    ]})
    model = to_onnx(graph, opset=opset)
    onnx.checker.check_model(model, full_check=True)
    ours = graphkit.execute(graph, inputs).outputs
    if ort_has_kernel(op.name, dtype, opset):
        theirs = run_onnxruntime(model, inputs)
    else:
        with pytest.raises(onnxruntime.capi.onnxruntime_pybind11_state.NotImplemented):
            run_onnxruntime(model, inputs)  # when it gains the kernel, drop the gap
        evaluator = ReferenceEvaluator(model)
        theirs = dict(zip(evaluator.output_names, evaluator.run(None, inputs), strict=True))
    for name, value in ours.items():
        assert theirs[name].shape == value.shape
        assert theirs[name].dtype == value.dtype
        np.testing.assert_allclose(theirs[name], value, rtol=TOLERANCE[dtype],
                                   atol=TOLERANCE[dtype])
    assert from_onnx(model) == graph


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_exports_runs_and_round_trips(path: Path, tmp_path: Path) -> None:
    graph = graphkit.load(path)
    values = json.loads(path.with_name(path.stem + ".inputs.json").read_text())
    target = tmp_path / (path.stem + ".onnx")
    graphkit.save(graph, target)
    model = onnx.load(str(target))
    onnx.checker.check_model(model, full_check=True)
    ours = graphkit.execute(graph, values).outputs
    theirs = run_onnxruntime(model, feeds_for(graph, values))
    for name, value in ours.items():
        np.testing.assert_allclose(theirs[name], value, rtol=1e-5, atol=1e-7)
    back = graphkit.load(target)
    assert back == graph
    assert graphkit.loads(graphkit.dumps(back)) == graph


def test_imported_examples_are_differentiable(tmp_path: Path) -> None:
    path = ROOT / "examples" / "sigmoid_neuron.json"
    graphkit.save(graphkit.load(path), tmp_path / "n.onnx")
    imported = graphkit.load(tmp_path / "n.onnx")
    values = json.loads((ROOT / "examples" / "sigmoid_neuron.inputs.json").read_text())
    result = graphkit.execute(imported, values, wrt=["w0", "x0", "w1", "x1", "w2"])
    assert {k: round(float(v), 2) for k, v in result.gradients.items()} == {
        "w0": -0.2, "x0": 0.39, "w1": -0.39, "x1": -0.59, "w2": 0.2}


def test_an_op_without_mapping_is_named_with_its_plugin() -> None:
    op = graphkit.OpDef("Twice", lambda x: 2 * x, lambda g, y, x: (2 * g,), domain="ex")

    class Plugin:
        @graphkit.hookimpl
        def graphkit_register_ops(self, register):  # noqa: ANN001, ANN201
            register(op)

    registry = graphkit.builtin_registry()
    registry.register_plugin(Plugin(), name="twice-plugin")
    g = graphkit.GraphBuilder("t")
    x = g.input("x", shape=[2])
    g.output(g.op("ex::Twice", x), "y")
    with pytest.raises(ExportError, match=r"op ex::Twice \(plugin twice-plugin\) has no ONNX"):
        to_onnx(g.build(), registry=registry)


def test_an_opset_outside_a_mapping_is_refused_with_the_range() -> None:
    g = graphkit.GraphBuilder("s")
    x = g.input("x", shape=[2, 3])
    y = g.input("y", shape=[2], dtype="int64")
    g.output(g.softmax_cross_entropy(x, y), "loss")
    with pytest.raises(ExportError, match=r"SoftmaxCrossEntropy .* no ONNX mapping for opset 11"):
        to_onnx(g.build(), opset=11)


def test_inputs_without_shape_are_refused_on_export() -> None:
    g = graphkit.GraphBuilder("u")
    x = g.input("x")
    g.output(x * x, "y")
    with pytest.raises(ExportError, match=r"input 'x' has no declared shape"):
        to_onnx(g.build())


def test_default_opset_runs_in_the_installed_onnxruntime() -> None:
    opset = default_opset()
    assert 13 <= opset <= onnx.defs.onnx_opset_version()


class SwishAttributes(graphkit.NoAttributes):
    beta: float = 1.0


def _swish_function(opset: int) -> onnx.FunctionProto:
    """x * sigmoid(beta x) from standard ops, beta passed by the caller (float32 x)."""
    from onnx import helper

    beta = helper.make_node("Constant", [], ["beta"], value_float=0.0)
    beta.attribute[0].ref_attr_name = "beta"
    nodes = [
        beta,
        helper.make_node("Mul", ["x", "beta"], ["bx"]),
        helper.make_node("Sigmoid", ["bx"], ["s"]),
        helper.make_node("Mul", ["x", "s"], ["y"]),
    ]
    return helper.make_function("com.example", "Swish", ["x"], ["y"], nodes,
                                [helper.make_opsetid("", opset)], attributes=["beta"])


def swish_registry() -> graphkit.Registry:
    from graphkit.onnxmap import OnnxMapping

    def forward(x: np.ndarray, beta: float) -> np.ndarray:
        return x / (1 + np.exp(-beta * x))

    def vjp(g: np.ndarray, y: np.ndarray, x: np.ndarray, beta: float) -> tuple[np.ndarray]:
        s = 1 / (1 + np.exp(-beta * x))
        return (g * (s + beta * x * s * (1 - s)),)

    swish = graphkit.OpDef(
        "Swish", forward, vjp, domain="com.example", attributes=SwishAttributes,
        onnx=OnnxMapping("Swish", domain="com.example", function=_swish_function),
    )

    class Plugin:
        @graphkit.hookimpl
        def graphkit_register_ops(self, register):  # noqa: ANN001, ANN201
            register(swish)

    registry = graphkit.builtin_registry()
    registry.register_plugin(Plugin(), name="swish-plugin")
    return registry


def test_a_plugin_op_exports_as_a_model_local_function_onnxruntime_runs() -> None:
    registry = swish_registry()
    g = graphkit.GraphBuilder("swishy", dtype="float32")
    x = g.input("x", shape=["N", 3])
    g.output(g.op("com.example::Swish", x) + g.op("com.example::Swish", x, beta=2.0), "y")
    graph = g.build()
    model = to_onnx(graph, registry=registry)
    onnx.checker.check_model(model, full_check=True)
    assert {(o.domain, o.version) for o in model.opset_import} >= {("com.example", 1)}
    assert [(f.domain, f.name) for f in model.functions] == [("com.example", "Swish")]
    calls = [n for n in model.graph.node if n.op_type == "Swish"]
    assert [onnx.helper.get_attribute_value(n.attribute[0]) for n in calls] == [1.0, 2.0]
    values = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    theirs = run_onnxruntime(model, {"x": values})["y"]  # no graphkit involved
    ours = graphkit.execute(graph, {"x": values}, registry=registry).outputs["y"]
    np.testing.assert_allclose(theirs, ours, rtol=1e-4)
    assert from_onnx(model, registry) == graph
    # without the plugin, graphkit inlines the function and still runs the model
    inlined = from_onnx(model, graphkit.builtin_registry())
    assert "Swish" not in {n.op.name for n in inlined.nodes}
    np.testing.assert_allclose(graphkit.execute(inlined, {"x": values}).outputs["y"], ours,
                               rtol=1e-6)
