"""The executor: forward, backpropagation, what `wrt`, `of` and `seed` mean, errors, dtypes,
which rules run, and what a run keeps in memory."""

from __future__ import annotations

import gc
import importlib
import tracemalloc
import weakref
from typing import Any

import numpy as np
import pytest
from plugin_helpers import with_ops

import graphkit
from graphkit import ExecutionError, Graph, GraphBuilder, InputError, OpDef, execute


@pytest.fixture(autouse=True, params=["interpreted", "compiled"])
def _both_executors(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here runs on the interpreter and on compiled plans (codegen.py)."""
    mode = "never" if request.param == "interpreted" else "always"
    monkeypatch.setattr(importlib.import_module("graphkit.execute"), "COMPILE", mode)


def run(graph: Graph, inputs: dict[str, Any], registry: graphkit.Registry, **kwargs: Any):
    return execute(graph, inputs, registry=registry, **kwargs)


# -- how gradients flow ----------------------------------------------------------------------


def test_fan_out_gradients_add(registry) -> None:
    b = GraphBuilder("fan")
    x, a = b.inputs("x", "a")
    y = x * a  # x used three times, by three different nodes
    z = x + 1.0
    b.output(y * z + x.exp(), "f")
    result = run(b.build(), {"x": 0.5, "a": 3.0}, registry, wrt=["x", "a"])
    x_, a_ = 0.5, 3.0
    assert result.gradients["x"] == pytest.approx(a_ * (x_ + 1) + a_ * x_ + np.exp(x_), abs=1e-12)
    assert result.gradients["a"] == pytest.approx(x_ * (x_ + 1), abs=1e-12)


def test_x_times_x(registry) -> None:
    b = GraphBuilder("square")
    x = b.input("x")
    b.output(x * x, "y")
    result = run(b.build(), {"x": [1.0, -2.0, 3.0]}, registry, wrt="all")
    np.testing.assert_array_equal(result.outputs["y"], [1.0, 4.0, 9.0])
    np.testing.assert_array_equal(result.gradients["x"], [2.0, -4.0, 6.0])


@pytest.mark.parametrize(("op", "value", "grad"), [
    ("Add", 4.0, 2.0), ("Sub", 0.0, 0.0), ("Mul", 4.0, 4.0), ("Div", 1.0, 0.0),
    ("Max", 2.0, 1.0), ("Min", 2.0, 1.0),
])
def test_the_same_value_feeding_both_inputs_of_a_node(op, value, grad, registry) -> None:
    """Both input positions of one node carry the same value; their gradients add."""
    graph = Graph.model_validate({
        "name": "twice", "inputs": ["x"], "outputs": ["y"],
        "nodes": [{"op": op, "inputs": ["x", "x"], "outputs": ["y"]}],
    })
    result = run(graph, {"x": 2.0}, registry, wrt=["x"])
    assert result.outputs["y"] == value
    assert result.gradients["x"] == grad


def test_repeated_backward_gives_identical_answers(registry, rng) -> None:
    b = GraphBuilder("net")
    x = b.input("x", shape=[4, 3])
    w = b.parameter("w", rng.standard_normal((3, 2)))
    b.output(((x @ w).tanh() * 2.0).sum(), "f")
    graph = b.build()
    data = rng.standard_normal((4, 3))
    copy = data.copy()
    first = run(graph, {"x": data}, registry, wrt="all")
    other = run(graph, {"x": data}, registry, wrt=["w"])  # a different backward plan between
    again = run(graph, {"x": data}, registry, wrt="all")
    np.testing.assert_array_equal(data, copy)  # inputs are never written to
    assert first.outputs["f"] == again.outputs["f"]
    assert set(first.gradients) == set(again.gradients) == {"x", "w", "c1"}
    for name in first.gradients:
        np.testing.assert_array_equal(first.gradients[name], again.gradients[name])
    np.testing.assert_array_equal(other.gradients["w"], first.gradients["w"])


def test_forward_only_returns_no_gradients(registry) -> None:
    b = GraphBuilder("f")
    x = b.input("x")
    b.output(x.exp(), "y")
    result = run(b.build(), {"x": 0.0}, registry)
    assert result.outputs == {"y": 1.0}
    assert result.gradients == {}


# -- what wrt selects ------------------------------------------------------------------------


def labelled_graph() -> Graph:
    b = GraphBuilder("loss")
    x = b.input("x", shape=["N", 3])
    labels = b.input("labels", shape=["N"], dtype="int64")
    w = b.parameter("w", np.eye(3))
    b.constant("offset", np.array(2, dtype=np.int64))  # an integer constant
    hidden = b.op("MatMul", x, w, name="hidden")
    b.output(b.softmax_cross_entropy(hidden * 2.0, labels), "loss")
    return b.build()


LABELLED = {"x": np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 1.0]]), "labels": np.array([2, 0])}


def test_wrt_all_means_every_float_input_and_constant(registry) -> None:
    result = run(labelled_graph(), LABELLED, registry, wrt="all")
    assert list(result.gradients) == ["x", "w", "c1"]  # labels and offset are integers
    for name, value in {"x": LABELLED["x"], "w": np.eye(3), "c1": np.float64(2.0)}.items():
        assert result.gradients[name].shape == np.shape(value)


def test_wrt_list_gives_exactly_those_names(registry) -> None:
    everything = run(labelled_graph(), LABELLED, registry, wrt="all").gradients
    result = run(labelled_graph(), LABELLED, registry, wrt=["w", "x", "w"])
    assert list(result.gradients) == ["w", "x"]
    np.testing.assert_array_equal(result.gradients["w"], everything["w"])
    np.testing.assert_array_equal(result.gradients["x"], everything["x"])
    single = run(labelled_graph(), LABELLED, registry, wrt="w")
    assert list(single.gradients) == ["w"]


def test_wrt_an_intermediate_is_the_upstream_gradient_there(registry) -> None:
    result = run(labelled_graph(), LABELLED, registry, wrt=["hidden", "x"])
    hidden = LABELLED["x"] @ np.eye(3)
    scores = 2 * hidden
    softmax = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    expected = 2 * (softmax - np.eye(3)[LABELLED["labels"]]) / 2
    np.testing.assert_allclose(result.gradients["hidden"], expected, atol=1e-15)
    np.testing.assert_allclose(result.gradients["x"], expected @ np.eye(3).T, atol=1e-15)


def test_wrt_an_integer_value_is_an_input_error(registry) -> None:
    with pytest.raises(InputError, match="labels"):
        run(labelled_graph(), LABELLED, registry, wrt=["labels"])
    with pytest.raises(InputError, match="offset"):
        run(labelled_graph(), LABELLED, registry, wrt=["x", "offset"])


def test_wrt_an_unknown_value_is_an_input_error(registry) -> None:
    with pytest.raises(InputError, match="nope"):
        run(labelled_graph(), LABELLED, registry, wrt=["x", "nope"])


def test_integer_labels_get_no_gradient_and_are_not_changed(registry) -> None:
    labels = LABELLED["labels"].copy()
    result = run(labelled_graph(), {"x": LABELLED["x"], "labels": labels}, registry, wrt="all")
    assert "labels" not in result.gradients
    np.testing.assert_array_equal(labels, LABELLED["labels"])


def test_values_not_reaching_the_output_get_zeros(registry) -> None:
    b = GraphBuilder("partial")
    x, unused, side = b.inputs("x", "unused", "side")
    c = b.constant("c", np.ones(2))
    off_path = b.op("Exp", side, name="off_path")
    b.output(x * 3.0, "main")
    b.output(off_path * c, "other")
    inputs = {"x": 1.0, "unused": np.ones((2, 3)), "side": np.array([1.0, 2.0])}
    result = run(b.build(), inputs, registry, wrt=["x", "unused", "side", "off_path", "c"],
                 of="main")
    assert result.gradients["x"] == 3.0
    for name, shape in {"unused": (2, 3), "side": (2,), "off_path": (2,), "c": (2,)}.items():
        grad = result.gradients[name]
        assert grad.shape == shape, name
        assert grad.dtype == np.float64, name
        assert not grad.any(), name


def test_of_selects_the_output_and_is_required_when_there_are_several(registry) -> None:
    b = GraphBuilder("two")
    x = b.input("x")
    b.output(x * 2.0, "double")
    b.output(x * x, "square")
    graph = b.build()
    with pytest.raises(InputError, match="of="):
        run(graph, {"x": 3.0}, registry, wrt=["x"])
    assert run(graph, {"x": 3.0}, registry, wrt=["x"], of="double").gradients["x"] == 2.0
    result = run(graph, {"x": 3.0}, registry, wrt=["x"], of="square")
    assert result.gradients["x"] == 6.0
    assert result.outputs == {"double": 6.0, "square": 9.0}  # both outputs still computed
    with pytest.raises(InputError, match="nope"):
        run(graph, {"x": 3.0}, registry, wrt=["x"], of="nope")
    assert run(graph, {"x": 3.0}, registry).outputs == {"double": 6.0, "square": 9.0}


def test_of_may_be_an_intermediate_value(registry) -> None:
    b = GraphBuilder("f")
    x, y, z = b.inputs("x", "y", "z")
    q = b.op("Add", x, y, name="q")
    b.output(q * z, "f")
    result = run(b.build(), {"x": -2.0, "y": 5.0, "z": -4.0}, registry, wrt="all", of="q")
    assert result.gradients == {"x": 1.0, "y": 1.0, "z": 0.0}
    assert result.outputs == {"f": -12.0}


def test_only_float_values_can_be_differentiated(registry) -> None:
    b = GraphBuilder("ints")
    x = b.input("x")
    labels = b.input("labels", dtype="int64")
    b.output(x * 2.0, "f")
    b.output(labels.identity(), "copy")
    with pytest.raises(InputError, match="float"):
        run(b.build(), {"x": 1.0, "labels": [1, 2]}, registry, wrt=["x"], of="copy")


# -- seeds -----------------------------------------------------------------------------------


def vector_graph() -> Graph:
    b = GraphBuilder("vec")
    x = b.input("x", shape=[3])
    b.output(x * b.constant("w", np.array([1.0, 2.0, 3.0])), "y")
    return b.build()


def test_non_scalar_output_is_seeded_with_ones(registry) -> None:
    result = run(vector_graph(), {"x": [1.0, 1.0, 1.0]}, registry, wrt=["x"])
    np.testing.assert_array_equal(result.gradients["x"], [1.0, 2.0, 3.0])


def test_explicit_seed_weights_the_output(registry) -> None:
    result = run(vector_graph(), {"x": [1.0, 1.0, 1.0]}, registry, wrt=["x"],
                 seed=[10.0, 0.0, -1.0])
    np.testing.assert_array_equal(result.gradients["x"], [10.0, 0.0, -3.0])


def test_seed_of_a_scalar_output_scales_the_gradient(registry) -> None:
    b = GraphBuilder("s")
    x = b.input("x")
    b.output(x * x, "y")
    assert run(b.build(), {"x": 3.0}, registry, wrt=["x"], seed=0.5).gradients["x"] == 3.0


@pytest.mark.parametrize("seed", [[1.0, 2.0], np.ones((3, 1)), 1.0])
def test_seed_of_the_wrong_shape_is_an_input_error(seed, registry) -> None:
    with pytest.raises(InputError, match="seed"):
        run(vector_graph(), {"x": [1.0, 1.0, 1.0]}, registry, wrt=["x"], seed=seed)


# -- tie policy ------------------------------------------------------------------------------


def binary_graph(op: str) -> Graph:
    b = GraphBuilder(op)
    a, c = b.inputs("a", "b")
    b.output(b.op(op, a, c), "y")
    return b.build()


@pytest.mark.parametrize("op", ["Max", "Min"])
def test_ties_route_the_whole_gradient_to_the_first_argument(op, registry) -> None:
    a = np.array([1.0, 2.0, 3.0, -1.0])
    b = np.array([1.0, 0.0, 5.0, -1.0])
    seed = np.array([10.0, 20.0, 30.0, 40.0])
    result = run(binary_graph(op), {"a": a, "b": b}, registry, wrt="all", seed=seed)
    a_wins = (a >= b) if op == "Max" else (a <= b)
    np.testing.assert_array_equal(result.gradients["a"], np.where(a_wins, seed, 0.0))
    np.testing.assert_array_equal(result.gradients["b"], np.where(a_wins, 0.0, seed))
    # the ties: positions 0 and 3
    assert result.gradients["a"][0] == 10.0 and result.gradients["b"][0] == 0.0
    assert result.gradients["a"][3] == 40.0 and result.gradients["b"][3] == 0.0


@pytest.mark.parametrize("op", ["Max", "Min"])
def test_ties_with_a_broadcast_second_argument(op, registry) -> None:
    result = run(binary_graph(op), {"a": [1.0, 2.0, 3.0], "b": 2.0}, registry, wrt="all")
    if op == "Max":
        np.testing.assert_array_equal(result.gradients["a"], [0.0, 1.0, 1.0])
        assert result.gradients["b"] == 1.0
    else:
        np.testing.assert_array_equal(result.gradients["a"], [1.0, 1.0, 0.0])
        assert result.gradients["b"] == 1.0
    assert result.gradients["b"].shape == ()


def test_relu_passes_no_gradient_at_zero_like_max_zero_x(registry) -> None:
    x = np.array([-1.0, 0.0, 0.0, 2.0])
    b = GraphBuilder("relu")
    b.output(b.input("x").relu(), "y")
    relu = run(b.build(), {"x": x}, registry, wrt=["x"])
    np.testing.assert_array_equal(relu.outputs["y"], [0.0, 0.0, 0.0, 2.0])
    np.testing.assert_array_equal(relu.gradients["x"], [0.0, 0.0, 0.0, 1.0])
    b = GraphBuilder("max0")
    b.output(b.max(b.constant("zero", 0.0), b.input("x")), "y")
    as_max = run(b.build(), {"x": x}, registry, wrt=["x"])
    np.testing.assert_array_equal(as_max.outputs["y"], relu.outputs["y"])
    np.testing.assert_array_equal(as_max.gradients["x"], relu.gradients["x"])


# -- inputs ----------------------------------------------------------------------------------


def test_missing_inputs_are_named(registry) -> None:
    b = GraphBuilder("g")
    x, y, z = b.inputs("x", "y", "z")
    b.output(x + y + z, "f")
    with pytest.raises(InputError) as info:
        run(b.build(), {"y": 1.0}, registry)
    assert "'x'" in str(info.value) and "'z'" in str(info.value)
    assert "'y'" not in str(info.value)


def test_unknown_inputs_are_named(registry) -> None:
    b = GraphBuilder("g")
    b.output(b.input("x") * 2.0, "f")
    with pytest.raises(InputError) as info:
        run(b.build(), {"x": 1.0, "X": 2.0, "bias": 0.0}, registry)
    assert "'X'" in str(info.value) and "'bias'" in str(info.value)


def batch_graph() -> Graph:
    b = GraphBuilder("batch")
    scores = b.input("scores", shape=["N", 3])
    labels = b.input("labels", shape=["N"], dtype="int64")
    b.output(b.softmax_cross_entropy(scores, labels), "loss")
    return b.build()


def test_symbolic_dim_binds_consistently_within_a_run(registry) -> None:
    with pytest.raises(InputError, match="N"):
        run(batch_graph(), {"scores": np.zeros((2, 3)), "labels": [0, 1, 2]}, registry)


def test_symbolic_dim_may_differ_between_runs(registry) -> None:
    graph = batch_graph()
    for n in (1, 2, 5):
        result = run(graph, {"scores": np.zeros((n, 3)), "labels": np.zeros(n, int)}, registry,
                     wrt="all")
        assert result.outputs["loss"] == pytest.approx(np.log(3), abs=1e-12)
        assert result.gradients["scores"].shape == (n, 3)


@pytest.mark.parametrize("scores", [np.zeros((2, 4)), np.zeros(3), np.zeros((1, 2, 3))])
def test_declared_shapes_are_enforced(scores, registry) -> None:
    with pytest.raises(InputError, match="scores"):
        run(batch_graph(), {"scores": scores, "labels": [0] * len(scores)}, registry)


def typed_batch_graph() -> Graph:
    b = GraphBuilder("typed", dtype="float32")
    scores = b.input("scores", shape=["N", 3])
    labels = b.input("labels", shape=["N"], dtype="int64")
    b.output(b.softmax_cross_entropy(scores, labels), "loss")
    return b.build()


@pytest.mark.parametrize("scores", [np.zeros((2, 4), np.float32), np.zeros(2, np.float32),
                                    np.zeros((3, 3), np.float32)])
def test_arrays_of_the_declared_dtype_are_checked_as_any_other(scores, registry) -> None:
    with pytest.raises(InputError, match="scores|N"):
        run(typed_batch_graph(), {"scores": scores, "labels": np.zeros(2, np.int64)}, registry)


def test_arrays_of_the_declared_dtype_are_used_as_they_are(registry) -> None:
    scores = np.zeros((2, 3), np.float32)
    result = run(typed_batch_graph(), {"scores": scores, "labels": np.zeros(2, np.int64)},
                 registry, wrt=["scores"])
    assert result.gradients["scores"].dtype == np.float32
    as_float64 = run(typed_batch_graph(), {"scores": scores.astype(np.float64),
                                           "labels": np.zeros(2, np.int32)}, registry,
                     wrt=["scores"])  # coerced to the declared dtypes
    np.testing.assert_array_equal(result.gradients["scores"], as_float64.gradients["scores"])


def test_integer_input_rejects_fractional_values(registry) -> None:
    with pytest.raises(InputError, match="labels"):
        run(batch_graph(), {"scores": np.zeros((2, 3)), "labels": [0.0, 1.5]}, registry)


# -- failures at run time --------------------------------------------------------------------


def test_runtime_failure_names_node_op_and_shapes(registry) -> None:
    b = GraphBuilder("mm")
    x, w = b.inputs("x", "w")  # shapes unknown: validation cannot see the mismatch
    scores = b.op("MatMul", x, w, name="scores")
    b.output(scores.sum(), "total")
    graph = b.build()
    with pytest.raises(ExecutionError) as info:
        run(graph, {"x": np.ones((2, 3)), "w": np.ones((4, 5))}, registry)
    message = str(info.value)
    assert '"scores"' in message
    assert "MatMul" in message
    assert "(2, 3)" in message and "(4, 5)" in message
    assert "forward" in message
    # the same graph runs when the shapes agree
    ok = run(graph, {"x": np.ones((2, 3)), "w": np.ones((3, 5))}, registry, wrt="all")
    assert ok.outputs["total"] == 30.0


def failing_rule(g, y, x):
    raise RuntimeError("the rule failed")


@pytest.mark.parametrize("saves", [frozenset(), frozenset({"inputs"})])
def test_backward_failure_names_node_op_and_shapes(saves) -> None:
    registry = with_ops(OpDef("Fragile", lambda x: x * 1.0, failing_rule, domain="test",
                              saves=saves))
    b = GraphBuilder("g")
    b.output(b.op("test::Fragile", b.input("x"), name="fragile").sum(), "f")
    with pytest.raises(ExecutionError) as info:
        run(b.build(), {"x": np.ones((2, 3))}, registry, wrt=["x"])
    message = str(info.value)
    assert '"fragile"' in message and "test::Fragile" in message and "test-ops" in message
    assert "(2, 3)" in message and "backward" in message and "the rule failed" in message


@pytest.mark.parametrize(("rule", "problem"), [
    (lambda g, y, x: (g, g), "returned 2"),
    (lambda g, y, x: (np.ones(7),), "shape (7,)"),
    (lambda g, y, x: (np.ones(np.shape(x), dtype=np.int64),), "dtype int64"),
])
def test_a_rule_returning_the_wrong_gradients_is_reported(rule, problem) -> None:
    registry = with_ops(OpDef("Odd", lambda x: x * 1.0, rule, domain="test"))
    b = GraphBuilder("g")
    b.output(b.op("test::Odd", b.input("x"), name="odd").sum(), "f")
    with pytest.raises(ExecutionError, match="odd") as info:
        run(b.build(), {"x": np.ones((2, 3))}, registry, wrt=["x"])
    assert problem in str(info.value)


# -- dtypes ----------------------------------------------------------------------------------


def test_float32_graph_keeps_float32(rng) -> None:
    registry = graphkit.builtin_registry(strict=True)
    b = GraphBuilder("net32", dtype="float32")
    x = b.input("x", shape=["N", 4])
    labels = b.input("labels", shape=["N"], dtype="int64")
    w1 = b.parameter("w1", rng.standard_normal((4, 5)).astype(np.float32))
    w2 = b.parameter("w2", rng.standard_normal((5, 3)).astype(np.float32))
    hidden = ((x @ w1) * 0.5).relu()
    b.output(b.softmax_cross_entropy(hidden @ w2, labels), "loss")
    graph = b.build()
    data = rng.standard_normal((6, 4))  # float64 in: coerced to the declared float32
    result = run(graph, {"x": data, "labels": rng.integers(0, 3, 6)}, registry, wrt="all")
    assert result.outputs["loss"].dtype == np.float32
    assert set(result.gradients) == {"x", "w1", "w2", "c1"}
    for name, grad in result.gradients.items():
        assert grad.dtype == np.float32, name
    assert result.gradients["x"].shape == (6, 4)
    assert result.gradients["w1"].shape == (4, 5)
    report = graphkit.gradcheck(graph, {"x": data, "labels": rng.integers(0, 3, 6)},
                                registry=registry)
    assert report.ok, report.errors


@pytest.mark.parametrize(("bias_shape", "dtype"), [
    ((3,), "float32"), ((3,), "float64"), ((1, 3), "float32"), ((4, 1, 3), "float64")])
def test_a_broadcast_bias_gets_its_gradient_summed_in_its_shape_and_dtype(
    bias_shape, dtype, registry, rng
) -> None:
    """Broadcasting undone by the executor: over the batch axis (the common case, taken
    without the general path) and over size-1 and leading axes."""
    b = GraphBuilder("bias", dtype=dtype)
    x = b.input("x", shape=[5, 3])
    bias = b.parameter("bias", rng.standard_normal(bias_shape).astype(dtype))
    b.output((x + bias) * (x + bias), "y")
    graph = b.build()
    data = rng.standard_normal((5, 3)).astype(dtype)
    result = run(graph, {"x": data}, registry, wrt=["bias"])
    total = 2 * (data + graph.constant("bias").to_numpy())  # dy/d(x + bias), seeded with ones
    total = total.sum(axis=tuple(range(total.ndim - len(bias_shape))))  # the leading axes
    want = total.sum(axis=tuple(i for i, n in enumerate(bias_shape) if n == 1), keepdims=True)
    grad = result.gradients["bias"]
    assert grad.shape == bias_shape and grad.dtype == np.dtype(dtype)
    np.testing.assert_allclose(grad, want, rtol=1e-5)


# -- which rules run -------------------------------------------------------------------------


def test_only_nodes_between_wrt_and_output_run_backward() -> None:
    calls: list[str] = []

    def forbidden(g, y, x):
        calls.append("called")
        raise AssertionError("this gradient rule is off the path and must not run")

    registry = with_ops(
        OpDef("Guarded", lambda x: x * 1.0, forbidden, domain="test", saves=frozenset()),
    )
    b = GraphBuilder("paths")
    x, y = b.inputs("x", "y")
    before = b.op("test::Guarded", x, name="before")  # upstream of the intermediate q
    q = b.op("Add", before, 1.0, name="q")
    branch = b.op("test::Guarded", y, name="branch")  # feeds f, but does not depend on q
    dead = b.op("test::Guarded", q, name="dead")  # depends on q, does not reach f
    b.output(q * branch, "f")
    b.output(dead, "g")
    graph = b.build()
    result = run(graph, {"x": 2.0, "y": 3.0}, registry, wrt=["q"], of="f")
    assert result.gradients["q"] == 3.0
    assert calls == []
    # the rule does run (and fail) as soon as it is on the path: the check above can fail
    with pytest.raises(ExecutionError, match="before"):
        run(graph, {"x": 2.0, "y": 3.0}, registry, wrt=["x"], of="f")
    assert calls == ["called"]


def test_per_input_rules_run_only_for_wanted_inputs() -> None:
    calls: list[str] = []

    def grad_a(g, y, a, b):
        calls.append("a")
        return g * b

    def grad_b(g, y, a, b):
        calls.append("b")
        return g * a

    registry = with_ops(OpDef("Times", lambda a, b: a * b, (grad_a, grad_b), domain="test",
                              num_inputs=2))
    b = GraphBuilder("times")
    a, c = b.inputs("a", "b")
    b.output(b.op("test::Times", a, c), "y")
    graph = b.build()
    assert run(graph, {"a": 2.0, "b": 5.0}, registry, wrt=["b"]).gradients == {"b": 2.0}
    assert calls == ["b"]
    assert run(graph, {"a": 2.0, "b": 5.0}, registry, wrt="all").gradients == {"a": 5.0, "b": 2.0}
    assert sorted(calls) == ["a", "b", "b"]


def test_multi_output_op_gradients() -> None:
    registry = with_ops(OpDef(
        "Split", lambda x: (2 * x, 3 * x), lambda g, y, x: (2 * g[0] + 3 * g[1],),
        domain="test", num_outputs=2, saves=frozenset(),
    ))
    b = GraphBuilder("split")
    x = b.input("x")
    double, triple = b.op("test::Split", x, outputs=2)
    b.output(double, "first")
    b.output(double * triple, "both")
    graph = b.build()
    result = run(graph, {"x": 2.0}, registry, wrt=["x"], of="first")
    assert result.gradients["x"] == 2.0  # the unused output's gradient counts as zero
    result = run(graph, {"x": 2.0}, registry, wrt=["x"], of="both")
    assert result.outputs["both"] == 24.0
    assert result.gradients["x"] == pytest.approx(12.0 * 2.0)  # d(6 x^2)/dx = 12 x


# -- residuals: forward_saving hands the vjp what the forward computed ------------------------


class Residual:
    """A residual the tests can hold a weak reference to."""

    def __init__(self, exps: np.ndarray) -> None:
        self.exps = exps


def softplus(calls: list[str], made: list[weakref.ref] | None = None) -> OpDef:
    """log(1 + e^x), whose gradient e^x / (1 + e^x) reuses the forward's e^x."""

    def forward(x):
        calls.append("forward")
        return np.log1p(np.exp(x))

    def saving(x):
        calls.append("saving")
        residual = Residual(np.exp(x))
        if made is not None:
            made.append(weakref.ref(residual))
        return np.log1p(residual.exps), residual

    def vjp(g, y, x, *, residual):
        calls.append("vjp")
        return (g * residual.exps / (1 + residual.exps),)

    return OpDef("Softplus", forward, vjp, domain="test", saves=frozenset(),
                 forward_saving=saving)


def test_a_residual_reaches_the_vjp_and_only_backprop_runs_compute_it() -> None:
    calls: list[str] = []
    registry = with_ops(softplus(calls))
    b = GraphBuilder("softplus")
    b.output(b.op("test::Softplus", b.input("x", shape=[3])).sum(), "f")
    graph = b.build()
    x = np.array([-2.0, 0.0, 3.0])
    assert run(graph, {"x": x}, registry).outputs["f"] == pytest.approx(np.log1p(np.exp(x)).sum())
    assert calls == ["forward"]
    calls.clear()
    result = run(graph, {"x": x}, registry, wrt=["x"])
    assert calls == ["saving", "vjp"]
    np.testing.assert_allclose(result.gradients["x"], 1 / (1 + np.exp(-x)))
    assert result.outputs["f"] == pytest.approx(np.log1p(np.exp(x)).sum())


def test_a_residual_is_let_go_once_its_backward_step_ran() -> None:
    made: list[weakref.ref] = []
    registry = with_ops(softplus([], made))
    b = GraphBuilder("softplus")
    b.output(b.op("test::Softplus", b.input("x", shape=[1000])).sum(), "f")
    result = run(b.build(), {"x": np.zeros(1000)}, registry, wrt=["x"])
    gc.collect()
    assert len(made) == 1 and made[0]() is None
    np.testing.assert_allclose(result.gradients["x"], 0.5)


def test_a_residual_reaches_each_per_input_rule_that_runs() -> None:
    seen: list[tuple[str, Any]] = []

    def saving(a, b):
        return a * b, "product computed"

    def grad_a(g, y, a, b, *, residual):
        seen.append(("a", residual))
        return g * b

    def grad_b(g, y, a, b, *, residual):
        seen.append(("b", residual))
        return g * a

    registry = with_ops(OpDef("Times", lambda a, b: a * b, (grad_a, grad_b), domain="test",
                              num_inputs=2, forward_saving=saving))
    b = GraphBuilder("times")
    a, c = b.inputs("a", "b")
    b.output(b.op("test::Times", a, c), "y")
    graph = b.build()
    assert run(graph, {"a": 2.0, "b": 5.0}, registry, wrt=["b"]).gradients == {"b": 2.0}
    assert seen == [("b", "product computed")]


def test_a_multi_output_op_with_a_residual() -> None:
    registry = with_ops(OpDef(
        "Split", lambda x: (2 * x, 3 * x),
        lambda g, y, x, *, residual: (residual[0] * g[0] + residual[1] * g[1],),
        domain="test", num_outputs=2, saves=frozenset(),
        forward_saving=lambda x: ((2 * x, 3 * x), (2.0, 3.0)),
    ))
    b = GraphBuilder("split")
    double, triple = b.op("test::Split", b.input("x"), outputs=2)
    b.output(double * triple, "both")
    result = run(b.build(), {"x": 2.0}, registry, wrt=["x"])
    assert result.outputs["both"] == 24.0
    assert result.gradients["x"] == pytest.approx(24.0)  # d(6 x^2)/dx = 12 x


def test_a_forward_saving_that_returns_no_pair_is_an_error_naming_the_node() -> None:
    registry = with_ops(OpDef("Lonely", lambda x: x * 2, lambda g, y, x, *, residual: (2 * g,),
                              domain="test", saves=frozenset(),
                              forward_saving=lambda x: x * 2))
    b = GraphBuilder("lonely")
    b.output(b.op("test::Lonely", b.input("x", shape=[2]), name="lonely").sum(), "f")
    graph = b.build()
    assert run(graph, {"x": np.ones(2)}, registry).outputs["f"] == 4.0  # forward only: fine
    with pytest.raises(ExecutionError) as info:
        run(graph, {"x": np.ones(2)}, registry, wrt=["x"])
    assert str(info.value).startswith('test::Lonely "lonely"')
    assert "forward_saving returned a ndarray, expected a tuple (output, residual)" \
        in str(info.value)


# -- memory ----------------------------------------------------------------------------------


def tracked_chain(length: int, saves: frozenset[str]) -> tuple[Graph, graphkit.Registry, list]:
    """A chain of `length` nodes whose forward rule counts the earlier outputs still alive."""
    refs: list[weakref.ref] = []
    alive: list[int] = []

    def forward(x):
        alive.append(sum(r() is not None for r in refs))
        out = x + 1.0
        refs.append(weakref.ref(out))
        return out

    registry = with_ops(OpDef("Track", forward, lambda g, y, x: (g,), domain="test",
                              saves=saves))
    b = GraphBuilder("chain")
    value = b.input("x")
    for _ in range(length):
        value = b.op("test::Track", value)
    b.output(value, "y")
    return b.build(), registry, alive


def test_forward_only_run_frees_intermediates() -> None:
    graph, registry, alive = tracked_chain(12, frozenset({"inputs", "outputs"}))
    result = run(graph, {"x": np.zeros(10)}, registry)
    np.testing.assert_array_equal(result.outputs["y"], np.full(10, 12.0))
    assert len(alive) == 12
    assert max(alive) <= 2, alive  # only the value being read (and at most one more) survive


def test_backward_run_keeps_only_what_rules_read() -> None:
    graph, registry, alive = tracked_chain(12, frozenset())
    result = run(graph, {"x": np.zeros(10)}, registry, wrt=["x"])
    np.testing.assert_array_equal(result.gradients["x"], np.ones(10))
    assert max(alive) <= 2, alive
    graph, registry, alive = tracked_chain(12, frozenset({"outputs"}))
    run(graph, {"x": np.zeros(10)}, registry, wrt=["x"])
    assert alive[-1] == 11  # a rule that reads its output has it kept: the check is real


def test_peak_memory_of_a_long_chain_stays_small(registry) -> None:
    size, length = 250_000, 30  # 2 MB per value, 60 MB if every intermediate were kept
    b = GraphBuilder("long")
    value = b.input("x", shape=[size])
    for _ in range(length):
        value = value + 1.0
    b.output(value.sum(), "total")
    graph = b.build()
    x = np.zeros(size)
    run(graph, {"x": x}, registry)  # compile outside the measurement
    for wrt in (None, ["x"]):
        gc.collect()
        tracemalloc.start()
        try:
            result = run(graph, {"x": x}, registry, wrt=wrt)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert result.outputs["total"] == size * length
        assert peak < 6 * x.nbytes, (wrt, peak)


def test_the_plan_cache_does_not_keep_graphs_alive(registry) -> None:
    b = GraphBuilder("temp")
    b.output(b.input("x") + b.constant("big", np.zeros(1000)), "y")
    graph = b.build()
    run(graph, {"x": 1.0}, registry, wrt="all")
    ref = weakref.ref(graph)
    del graph, b
    gc.collect()
    assert ref() is None


def test_a_validated_or_planned_graph_can_be_executed(registry) -> None:
    b = GraphBuilder("f")
    x = b.input("x")
    b.output(x * x, "y")
    graph = b.build()
    resolved = graphkit.validate(graph, registry)
    plan = graphkit.plan_for(graph, registry)
    for form in (graph, resolved, plan):
        result = execute(form, {"x": 3.0}, wrt="all", registry=registry)
        assert result.outputs["y"] == 9.0 and result.gradients["x"] == 6.0


def test_gradients_never_alias_each_other_or_the_seed() -> None:
    g = GraphBuilder("alias")
    x, y = g.inputs("x", "y")
    g.output(x + y, "f")
    seed = np.array(1.0)
    result = execute(g.build(), {"x": 1.0, "y": 2.0}, wrt=["x", "y", "f"], seed=seed)
    grads = list(result.gradients.values())
    assert len({id(a) for a in grads}) == 3
    assert not any(np.shares_memory(a, b) for a in grads for b in grads if a is not b)
    assert not any(np.shares_memory(a, seed) for a in grads)
    result.gradients["x"][...] = 99.0
    assert result.gradients["y"] == 1.0 and seed == 1.0


def test_a_plan_compiled_for_one_registry_is_not_reused_for_another() -> None:
    graph = GraphBuilder("twice")
    x = graph.input("x")
    graph.output(x * 3.0, "f")
    model = graph.build()
    first, second = graphkit.builtin_registry(), graphkit.builtin_registry()
    assert graphkit.plan_for(model, first) is graphkit.plan_for(model, first)
    assert graphkit.plan_for(model, second) is not graphkit.plan_for(model, first)
