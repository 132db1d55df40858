"""The benchmarks' workloads at tiny sizes: graphkit and each reference compute the same values.

Nothing here is timed (benchmarks are not tests: `make bench` runs them); this only keeps the
workload builders working and the comparisons honest, so a benchmark never times two different
computations.
"""

from __future__ import annotations

import math

import numpy as np
import onnxruntime as ort
import pytest

import graphkit as gk
from benchmarks import memory, micrograd_ref, run, scalar, scale, startup, workloads
from benchmarks.table import Row, render
from graphkit.io.onnx_export import to_onnx
from graphkit.io.onnx_import import from_onnx


def test_two_layer_step_equals_numpy() -> None:
    graph, inputs, params = workloads.two_layer_net(batch=8, dims=(12, 6, 3), dtype="float64")
    result = workloads.graphkit_two_layer_step(graph, inputs)[1]()
    loss, grads = workloads.numpy_two_layer_step(inputs["X"], inputs["y"], **params)
    assert np.isclose(result.outputs["loss"], loss, rtol=1e-12)
    assert set(result.gradients) == set(grads)
    for name, grad in grads.items():
        np.testing.assert_allclose(result.gradients[name], grad, rtol=1e-9, atol=1e-15)


def test_two_layer_forward_through_onnx_equals_onnxruntime() -> None:
    graph, inputs, params = workloads.two_layer_net(batch=8, dims=(12, 6, 3))
    model = to_onnx(graph)
    imported = from_onnx(model)
    assert imported == graph
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (theirs,) = session.run(["loss"], inputs)
    ours = gk.execute(imported, inputs).outputs["loss"]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    by_hand = workloads.numpy_two_layer_forward(inputs["X"], inputs["y"], **params)
    np.testing.assert_allclose(ours, by_hand, rtol=1e-5)


def test_startup_runs_the_command_it_times() -> None:
    document = startup.run_command()
    assert document["outputs"]["f"] == pytest.approx(startup.EXPECTED_F, abs=1e-12)
    assert set(document["gradients"]) == set(scalar.NEURON_INPUTS)


def test_sigmoid_neuron_equals_micrograd_and_the_lecture() -> None:
    plan = gk.plan_for(scalar.sigmoid_neuron_graph())
    ours = scalar.neuron_gradients(plan)
    np.testing.assert_allclose(ours, micrograd_ref.sigmoid_neuron(**scalar.NEURON_INPUTS),
                               rtol=1e-12)
    np.testing.assert_allclose(ours, [-0.196612, 0.393224, -0.393224, -0.589836, 0.196612],
                               rtol=1e-5)


@pytest.mark.parametrize("n", [1, 2, 3, 30, 300])
def test_scalar_chain_gradient_equals_micrograd(n: int) -> None:
    graph = scalar.chain_graph(n)
    assert len(graph.nodes) == n and [c.name for c in graph.constants] == ["half", "decay"]
    ours = scalar.chain_gradient(gk.plan_for(graph))
    theirs = micrograd_ref.scalar_chain(scalar.CHAIN_X, n)
    assert ours != 0 and math.isclose(ours, theirs, rel_tol=1e-12)


@pytest.mark.parametrize("shape", scale.SHAPES)
def test_scale_graphs_round_trip_and_agree_with_onnxruntime(
    shape: str, tmp_path: pytest.TempPathFactory
) -> None:
    graph = scale.build(shape, 25)
    assert len(graph.nodes) == 25
    if shape == "dag":
        assert all(len(node.inputs) == 3 for node in graph.nodes)
    gk.save(graph, tmp_path / "g.json")
    gk.save(graph, tmp_path / "g.onnx")
    assert gk.load(tmp_path / "g.json") == graph
    assert gk.load(tmp_path / "g.onnx") == graph
    inputs = scale.inputs_for(shape)
    result = gk.execute(graph, inputs, wrt=list(inputs))
    assert all(np.all(grad != 0) for grad in result.gradients.values())
    assert gk.gradcheck(graph, inputs).ok
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    (theirs,) = session.run(None, {k: np.asarray(v) for k, v in inputs.items()})
    np.testing.assert_allclose(result.outputs["y"], theirs, rtol=1e-12)


def test_dag_is_deterministic() -> None:
    assert scale.dag_graph(50) == scale.dag_graph(50)
    assert scale.dag_graph(50) != scale.dag_graph(50, seed=1)


def test_mlp_forward_equals_numpy() -> None:
    graph = memory.mlp_graph(layers=3, width=8)
    inputs = memory.mlp_inputs(batch=4, width=8)
    expected = memory.numpy_mlp(memory.mlp_params(graph), inputs["X"])
    np.testing.assert_allclose(gk.execute(graph, inputs).outputs["out"], expected, rtol=1e-5)


def test_declared_values_follow_the_ops_saves() -> None:
    neg_exp = memory.neg_exp_chain(pairs=3, size=4)
    exp_outputs = [node.outputs[0] for node in neg_exp.nodes if node.op.name == "Exp"]
    assert memory.declared_values(neg_exp) == exp_outputs  # Exp saves its output, Neg nothing
    assert memory.declared_values(memory.add_chain(adds=3, size=4)) == []
    grad = gk.execute(neg_exp, memory.vector_input(4), wrt=["x"]).gradients["x"]
    assert np.all(np.isfinite(grad)) and np.all(grad != 0)


def test_traced_peak_sees_numpy_arrays() -> None:
    assert memory.traced_peak(lambda: np.ones(1 << 20)) >= 8 << 20


def test_table_marks_targets() -> None:
    rows = [
        Row("under", 1.0, 2.0, target=1, strict=True),
        Row("equal, strict", 2.0, 2.0, target=1, strict=True),
        Row("equal", 2.0, 2.0, target=1),
        Row("failed", None, target=1, failed=True, note="timeout"),
        Row("no target", 1e-5),
    ]
    assert [row.met for row in rows] == ["yes", "NO", "yes", "NO", "-"]
    text = render(rows)
    assert "timeout" in text and "10.00 us" in text


def test_groups_parse() -> None:
    assert run._groups([]) == list(run.GROUPS)
    assert run._groups(["memory,net", "scale"]) == ["net", "scale", "memory"]
