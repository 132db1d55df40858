"""The worked examples of CS231n lecture 4 ("Backpropagation and Neural Networks"), every value
and every gradient, built both with GraphBuilder and as plain data (Graph.model_validate)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import graphkit
from graphkit import Graph, GraphBuilder, execute, gradcheck


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + np.exp(-x))


# -- f(x, y, z) = (x + y) * z ----------------------------------------------------------------

XYZ = {"x": -2.0, "y": 5.0, "z": -4.0}


def xyz_from_builder() -> Graph:
    b = GraphBuilder("f")
    x, y, z = b.inputs("x", "y", "z")
    q = b.op("Add", x, y, name="q")
    b.output(q * z, "f")
    return b.build()


def xyz_from_dict() -> Graph:
    return Graph.model_validate({
        "name": "f",
        "inputs": [{"name": n, "dtype": "float64"} for n in ("x", "y", "z")],
        "outputs": ["f"],
        "nodes": [
            {"op": "Add", "inputs": ["x", "y"], "outputs": ["q"]},
            {"op": "Mul", "inputs": ["q", "z"], "outputs": ["f"]},
        ],
    })


@pytest.fixture(autouse=True, params=["interpreted", "compiled"])
def _both_executors(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here runs on the interpreter and on compiled plans (codegen.py)."""
    mode = "never" if request.param == "interpreted" else "always"
    monkeypatch.setattr(importlib.import_module("graphkit.execute"), "COMPILE", mode)


def test_builder_and_dict_give_the_same_model() -> None:
    assert xyz_from_builder() == xyz_from_dict()


@pytest.mark.parametrize("make", [xyz_from_builder, xyz_from_dict])
def test_add_mul_example(make, registry) -> None:
    result = execute(make(), XYZ, wrt="all", registry=registry)
    assert result.outputs["f"] == -12.0
    assert result.gradients == {"x": -4.0, "y": -4.0, "z": 3.0}


@pytest.mark.parametrize("make", [xyz_from_builder, xyz_from_dict])
def test_add_mul_gradient_wrt_intermediate_q(make, registry) -> None:
    result = execute(make(), XYZ, wrt=["q", "z"], registry=registry)
    assert set(result.gradients) == {"q", "z"}
    assert result.gradients["q"] == -4.0  # df/dq = z
    assert result.gradients["z"] == 3.0  # df/dz = q


def test_add_mul_forward_only(registry) -> None:
    result = execute(xyz_from_dict(), XYZ, registry=registry)
    assert result.outputs == {"f": -12.0}
    assert result.gradients == {}


# -- the sigmoid neuron ----------------------------------------------------------------------

NEURON = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}
LECTURE_GRADS = {"w0": -0.20, "x0": 0.39, "w1": -0.39, "x1": -0.59, "w2": 0.20}


def neuron_from_gates(intermediates_as_outputs: bool = False) -> Graph:
    """The lecture's picture: *, +, *-1, exp, +1, 1/x, one gate each."""
    b = GraphBuilder("neuron")
    w0, x0, w1, x1, w2 = b.inputs("w0", "x0", "w1", "x1", "w2")
    p0 = b.op("Mul", w0, x0, name="p0")
    p1 = b.op("Mul", w1, x1, name="p1")
    dot = b.op("Add", b.op("Add", p0, p1, name="p01"), w2, name="dot")
    neg = b.op("Mul", dot, b.constant("minus_one", -1.0), name="neg")
    e = b.op("Exp", neg, name="e")
    d = b.op("Add", e, b.constant("one", 1.0), name="d")
    f = b.op("Reciprocal", d, name="f")
    b.output(f)
    if intermediates_as_outputs:
        for value in (p0, p1, dot, neg, e, d):
            b.output(value)
    return b.build()


def neuron_sigmoid_gate() -> Graph:
    b = GraphBuilder("neuron")
    w0, x0, w1, x1, w2 = b.inputs("w0", "x0", "w1", "x1", "w2")
    b.output((w0 * x0 + w1 * x1 + w2).sigmoid(), "f")
    return b.build()


def neuron_sigmoid_gate_from_dict() -> Graph:
    return Graph.model_validate({
        "name": "neuron",
        "inputs": [{"name": n, "dtype": "float64"} for n in NEURON],
        "outputs": [{"name": "f"}],
        "nodes": [
            {"name": "mul1", "op": "Mul", "inputs": ["w0", "x0"], "outputs": ["mul1"]},
            {"name": "mul2", "op": "Mul", "inputs": ["w1", "x1"], "outputs": ["mul2"]},
            {"name": "add1", "op": "Add", "inputs": ["mul1", "mul2"], "outputs": ["add1"]},
            {"name": "add2", "op": "Add", "inputs": ["add1", "w2"], "outputs": ["add2"]},
            {"name": "f", "op": "Sigmoid", "inputs": ["add2"], "outputs": ["f"]},
        ],
    })


def test_neuron_builder_matches_its_json_form() -> None:
    assert neuron_sigmoid_gate() == neuron_sigmoid_gate_from_dict()


def test_neuron_gate_by_gate_has_the_lectures_numbers(registry) -> None:
    result = execute(neuron_from_gates(), NEURON, wrt=list(NEURON), registry=registry)
    assert result.outputs["f"] == pytest.approx(0.73, abs=5e-3)
    assert set(result.gradients) == set(NEURON)
    for name, expected in LECTURE_GRADS.items():
        assert result.gradients[name] == pytest.approx(expected, abs=5e-3), name


def test_neuron_gate_by_gate_is_exact(registry) -> None:
    """Not just the two printed decimals: the exact chain rule, s (1 - s) times the input."""
    result = execute(neuron_from_gates(), NEURON, wrt=list(NEURON), registry=registry)
    s = sigmoid(1.0)
    local = s * (1 - s)
    assert result.outputs["f"] == pytest.approx(s, abs=1e-15)
    expected = {
        "w0": local * NEURON["x0"], "x0": local * NEURON["w0"],
        "w1": local * NEURON["x1"], "x1": local * NEURON["w1"], "w2": local,
    }
    for name, value in expected.items():
        assert result.gradients[name] == pytest.approx(value, abs=1e-12), name


def test_neuron_every_intermediate_value_and_gradient(registry) -> None:
    """The numbers written on the lecture's circuit, forward (above) and backward (below)."""
    graph = neuron_from_gates(intermediates_as_outputs=True)
    inner = ["p0", "p1", "dot", "neg", "e", "d"]
    result = execute(graph, NEURON, wrt=inner, of="f", registry=registry)
    values = {name: float(v) for name, v in result.outputs.items()}
    assert values["p0"] == -2.0
    assert values["p1"] == 6.0
    assert values["dot"] == 1.0
    assert values["neg"] == -1.0
    assert values["e"] == pytest.approx(0.37, abs=5e-3)
    assert values["d"] == pytest.approx(1.37, abs=5e-3)
    assert values["f"] == pytest.approx(0.73, abs=5e-3)
    grads = result.gradients
    assert grads["d"] == pytest.approx(-0.53, abs=5e-3)  # 1/x gate: -1/x^2
    assert grads["e"] == pytest.approx(-0.53, abs=5e-3)  # +1 gate: distributes
    assert grads["neg"] == pytest.approx(-0.20, abs=5e-3)  # exp gate: times e^x
    assert grads["dot"] == pytest.approx(0.20, abs=5e-3)  # *-1 gate
    assert grads["p0"] == pytest.approx(0.20, abs=5e-3)
    assert grads["p1"] == pytest.approx(0.20, abs=5e-3)
    assert grads["dot"] == pytest.approx(sigmoid(1.0) * (1 - sigmoid(1.0)), abs=1e-12)


@pytest.mark.parametrize("sigmoid_graph", [neuron_sigmoid_gate, neuron_sigmoid_gate_from_dict])
def test_one_sigmoid_gate_equals_the_six_gates(sigmoid_graph, registry) -> None:
    many = execute(neuron_from_gates(), NEURON, wrt=list(NEURON), registry=registry)
    one = execute(sigmoid_graph(), NEURON, wrt=list(NEURON), registry=registry)
    assert one.outputs["f"] == pytest.approx(float(many.outputs["f"]), abs=1e-12)
    assert set(one.gradients) == set(many.gradients) == set(NEURON)
    for name in NEURON:
        assert one.gradients[name] == pytest.approx(float(many.gradients[name]), abs=1e-12)
    for name, expected in LECTURE_GRADS.items():
        assert one.gradients[name] == pytest.approx(expected, abs=5e-3), name


def test_one_sigmoid_gate_is_not_fewer_nodes_by_accident() -> None:
    """The two designs really differ: 8 gates versus 5, same function."""
    assert [str(n.op) for n in neuron_from_gates().nodes] == [
        "Mul", "Mul", "Add", "Add", "Mul", "Exp", "Add", "Reciprocal"
    ]
    assert [str(n.op) for n in neuron_sigmoid_gate().nodes][-1] == "Sigmoid"


# -- patterns in backward flow ---------------------------------------------------------------


def test_add_distributes_mul_switches_max_routes(registry) -> None:
    """The lecture's slide: f = 2 * (x*y + max(z, w)) at x=3, y=-4, z=2, w=-1."""
    b = GraphBuilder("patterns")
    x, y, z, w = b.inputs("x", "y", "z", "w")
    b.output((x * y + b.max(z, w)) * 2.0, "f")
    result = execute(b.build(), {"x": 3.0, "y": -4.0, "z": 2.0, "w": -1.0}, wrt="all",
                     registry=registry)
    assert result.outputs["f"] == -20.0
    grads = {k: result.gradients[k] for k in ("x", "y", "z", "w")}
    assert grads == {"x": -8.0, "y": 6.0, "z": 2.0, "w": 0.0}


def test_copy_fan_out_adds(registry) -> None:
    b = GraphBuilder("fanout")
    x = b.input("x")
    b.output(x.exp() + x * 3.0 + x, "f")
    result = execute(b.build(), {"x": 0.5}, wrt=["x"], registry=registry)
    assert result.gradients["x"] == pytest.approx(np.exp(0.5) + 3.0 + 1.0, abs=1e-12)


# -- vectorized: f(x, W) = ||W x||^2 --------------------------------------------------------

W = np.array([[0.1, 0.5], [-0.3, 0.8]])
X = np.array([0.2, 0.4])


def wx_from_builder(square: str) -> Graph:
    b = GraphBuilder("wx")
    w = b.input("W", shape=[2, 2])
    x = b.input("x", shape=[2])
    q = b.op("MatMul", w, x, name="q")
    b.output((q * q if square == "mul" else q**2).sum(), "f")
    return b.build()


def wx_from_dict() -> Graph:
    return Graph.model_validate({
        "name": "wx",
        "inputs": [{"name": "W", "dtype": "float64", "shape": [2, 2]},
                   {"name": "x", "dtype": "float64", "shape": [2]}],
        "outputs": [{"name": "f", "shape": []}],
        "nodes": [
            {"op": "MatMul", "inputs": ["W", "x"], "outputs": ["q"]},
            {"op": "Mul", "inputs": ["q", "q"], "outputs": ["q2"]},
            {"op": "Sum", "inputs": ["q2"], "outputs": ["f"]},
        ],
    })


@pytest.mark.parametrize("graph", [wx_from_builder("mul"), wx_from_builder("pow"), wx_from_dict()],
                         ids=["builder-mul", "builder-pow", "dict"])
def test_norm_of_wx(graph, registry) -> None:
    result = execute(graph, {"W": W, "x": X}, wrt=["W", "x", "q"], registry=registry)
    q = W @ X
    np.testing.assert_allclose(q, [0.22, 0.26], atol=1e-15)
    assert result.outputs["f"] == pytest.approx(0.116, abs=1e-15)
    grads = result.gradients
    assert grads["q"].shape == (2,)
    np.testing.assert_allclose(grads["q"], 2 * q, atol=1e-15)
    assert grads["W"].shape == W.shape  # a gradient has the shape of its variable
    assert grads["x"].shape == X.shape
    np.testing.assert_allclose(grads["W"], 2 * np.outer(q, X), atol=1e-15)
    np.testing.assert_allclose(grads["x"], 2 * W.T @ q, atol=1e-15)
    # the lecture's printed numbers
    np.testing.assert_allclose(grads["W"], [[0.088, 0.176], [0.104, 0.208]], atol=1e-12)
    np.testing.assert_allclose(grads["x"], [-0.112, 0.636], atol=1e-12)


def test_norm_of_wx_passes_gradcheck(registry) -> None:
    report = gradcheck(wx_from_dict(), {"W": W, "x": X}, registry=registry)
    assert set(report.errors) == {"W", "x"}
    assert report.ok, report.errors


# -- a linear classifier's losses and a 2-layer net -------------------------------------------

SVM_SCORES = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])  # cat, car, frog
SVM_LABELS = np.array([0, 1, 2])


def test_multiclass_svm_loss_example(registry) -> None:
    """The cat/car/frog scores: per-image hinge losses 2.9, 0 and 12.9, mean 5.27."""
    b = GraphBuilder("svm")
    scores = b.input("scores", shape=["N", 3])
    labels = b.input("labels", shape=["N"], dtype="int64")
    b.output(b.svm_hinge(scores, labels), "loss")
    result = execute(b.build(), {"scores": SVM_SCORES, "labels": SVM_LABELS}, wrt="all",
                     registry=registry)
    assert result.outputs["loss"] == pytest.approx((2.9 + 0.0 + 12.9) / 3, abs=1e-12)
    assert set(result.gradients) == {"scores"}  # integer labels have no gradient
    expected = np.array([[-1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, -2.0]]) / 3
    np.testing.assert_allclose(result.gradients["scores"], expected, atol=1e-15)


def two_layer_net(d: int, h: int, c: int, rng: np.random.Generator, as_inputs: bool) -> Graph:
    """f = W2 max(0, W1 x) with a softmax cross-entropy loss, batch along the first axis."""
    b = GraphBuilder("two_layer")
    x = b.input("X", shape=["N", d])
    labels = b.input("y", shape=["N"], dtype="int64")
    if as_inputs:
        w1, w2 = b.input("W1", shape=[d, h]), b.input("W2", shape=[h, c])
    else:
        w1 = b.parameter("W1", rng.standard_normal((d, h)) / np.sqrt(d))
        w2 = b.parameter("W2", rng.standard_normal((h, c)) / np.sqrt(h))
    hidden = (x @ w1).relu()
    b.output(b.softmax_cross_entropy(hidden @ w2, labels), "loss")
    return b.build()


def test_two_layer_net_of_the_lecture_passes_gradcheck(registry, rng) -> None:
    """The lecture's sizes: 3072 inputs (a 32x32x3 image), 100 hidden units, 10 classes."""
    graph = two_layer_net(3072, 100, 10, rng, as_inputs=False)
    n = 4
    inputs = {"X": rng.standard_normal((n, 3072)), "y": rng.integers(0, 10, size=n)}
    report = gradcheck(graph, inputs, registry=registry)
    assert set(report.errors) == {"X", "W1", "W2"}
    assert report.ok, report.errors
    result = execute(graph, inputs, wrt="all", registry=registry)
    assert result.gradients["W1"].shape == (3072, 100)
    assert result.gradients["W2"].shape == (100, 10)
    assert result.gradients["X"].shape == (n, 3072)
    assert 0 < float(result.outputs["loss"]) < 10


def test_gradcheck_catches_a_wrong_gradient(registry, rng) -> None:
    """The check the lecture recommends must be able to fail: a deliberately wrong rule."""
    wrong = graphkit.OpDef("WrongRelu", lambda x: np.maximum(x, 0),
                           lambda g, y, x: (g * (x > 0) * 1.01,), domain="test")
    reg = graphkit.builtin_registry(strict=True)
    reg.register_plugin(_OnePlugin(wrong), name="wrong")
    b = GraphBuilder("bad")
    x = b.input("x", shape=[5])
    b.output(b.op("test::WrongRelu", x).sum(), "f")
    report = gradcheck(b.build(), {"x": rng.uniform(0.5, 1.0, 5)}, registry=reg)
    assert not report.ok
    assert report.errors["x"] > 1e-3


def test_gradient_descent_loop_trains_the_net(registry, rng) -> None:
    """The lecture's ~20-line training loop, with graphkit doing forward and backward."""
    d, h, c, n = 20, 16, 3, 60
    graph = two_layer_net(d, h, c, rng, as_inputs=True)
    centers = rng.standard_normal((c, d)) * 2
    labels = rng.integers(0, c, size=n)
    data = centers[labels] + rng.standard_normal((n, d)) * 0.5
    params = {"W1": rng.standard_normal((d, h)) * 0.1, "W2": rng.standard_normal((h, c)) * 0.1}
    losses = []
    for _ in range(60):
        result = execute(graph, {"X": data, "y": labels, **params}, wrt=["W1", "W2"],
                         registry=registry)
        losses.append(float(result.outputs["loss"]))
        for name in params:
            params[name] = params[name] - 0.5 * result.gradients[name]
    assert losses[0] == pytest.approx(np.log(c), abs=0.2)
    assert losses[-1] < 0.25 * losses[0]


class _OnePlugin:
    def __init__(self, op: graphkit.OpDef) -> None:
        self.op = op

    @graphkit.hookimpl
    def graphkit_register_ops(self, register) -> None:
        register(self.op)
