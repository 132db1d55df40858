"""Every built-in op's gradient rule against central differences, on hypothesis-drawn shapes
(broadcasting included) and values inside each op's domain, away from kinks and ties; then what
happens exactly at the kinks and ties, and the ops that have no gradient at all."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import graphkit
from graphkit import Graph, check_op, check_op_at, execute
from graphkit.ops import BUILTIN_OPS
from graphkit.ops.prims import sum_to

EXPECTED_OPS = [
    "Add", "Sub", "Mul", "Div", "Max", "Min", "Neg", "Identity", "Reciprocal", "Exp", "Log",
    "Sqrt", "Relu", "Sigmoid", "Tanh", "Pow", "Abs", "Sum", "Mean", "ReduceMax", "MatMul", "Gemm",
    "Reshape", "Transpose", "Flatten", "Concat", "Unsqueeze", "Squeeze", "SoftmaxCrossEntropy",
    "SVMHinge", "LeakyRelu", "Elu", "Clip", "Softmax", "LogSoftmax", "Equal", "Greater", "Less",
    "Where", "Cast",
]
NOT_DIFFERENTIABLE = ["Equal", "Greater", "Less"]
DIFFERENTIABLE = [name for name in EXPECTED_OPS if name not in NOT_DIFFERENTIABLE]
SAME_DTYPE = [name for name in DIFFERENTIABLE if name != "Cast"]
"""Ops whose output has their float inputs' dtype (Cast's is its `to`: tested on its own)."""
OPS = {op.name: op for op in BUILTIN_OPS}
REGISTRY = graphkit.builtin_registry(strict=True)

Case = tuple[list[np.ndarray], dict[str, Any]]


def floats(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def away_from_zero(low: float, high: float) -> st.SearchStrategy[float]:
    """Magnitude in [low, high], either sign: inputs of 1/x and friends."""
    return floats(low, high) | floats(-high, -low)


def lattice(offset: float) -> st.SearchStrategy[float]:
    """k + offset + jitter: two lattices offset by 0.5 stay >= 0.3 apart (no ties, no kinks)."""
    return st.builds(lambda k, u: k + offset + u, st.integers(-3, 3), floats(-0.1, 0.1))


def array(shape: tuple[int, ...], elements: st.SearchStrategy[float]) -> st.SearchStrategy:
    return hnp.arrays(np.float64, shape, elements=elements)


shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


@st.composite
def unary(draw, elements: st.SearchStrategy[float]) -> Case:
    return [draw(array(draw(shapes), elements))], {}


@st.composite
def binary(draw, first: st.SearchStrategy[float], second: st.SearchStrategy[float] | None = None
           ) -> Case:
    """Two inputs whose shapes broadcast against each other (either may be the bigger)."""
    pair = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                  max_side=4))
    a = draw(array(pair.input_shapes[0], first))
    b = draw(array(pair.input_shapes[1], first if second is None else second))
    return [a, b], {}


@st.composite
def tie_free_pair(draw) -> Case:
    (a, b), _ = draw(binary(lattice(0.25), lattice(0.75)))
    return ([b, a] if draw(st.booleans()) else [a, b]), {}


@st.composite
def power(draw) -> Case:
    exponent = draw(st.sampled_from([0.0, 1.0, 2.0, 3.0, -1.0, -2.5, 0.5, 1.5]))
    base = floats(-2.0, 2.0) if exponent >= 0 and exponent.is_integer() else floats(0.5, 2.0)
    return [draw(array(draw(shapes), base))], {"exponent": exponent}


@st.composite
def reduction(draw) -> Case:
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4))
    x = draw(array(shape, floats(-3.0, 3.0)))
    attributes: dict[str, Any] = {}
    if shape and draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from(range(len(shape))), min_size=1, unique=True))
        attributes["axes"] = [a - len(shape) if draw(st.booleans()) else a for a in chosen]
    if draw(st.booleans()):
        attributes["keepdims"] = draw(st.booleans())
    return [x], attributes


@st.composite
def matmul(draw) -> Case:
    """numpy's matmul signature: 1-D operands, matrices, and broadcast batches of matrices."""
    pair = draw(hnp.mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=2,
                                                  max_side=4))
    a_shape, b_shape = pair.input_shapes
    return [draw(array(a_shape, floats(-2, 2))), draw(array(b_shape, floats(-2, 2)))], {}


@st.composite
def reshape(draw) -> Case:
    shape = draw(shapes)
    size = int(np.prod(shape))
    candidates = [[size], [-1], [size, 1], [1, -1], list(reversed(shape)), [1, *shape, 1]]
    if shape:
        at = draw(st.integers(0, len(shape) - 1))
        candidates.append([-1 if i == at else d for i, d in enumerate(shape)])
    return [draw(array(shape, floats(-3, 3)))], {"shape": draw(st.sampled_from(candidates))}


@st.composite
def transpose(draw) -> Case:
    shape = draw(shapes)
    x = draw(array(shape, floats(-3, 3)))
    choice = draw(st.sampled_from(["perm", "none", "default"]))
    if choice == "perm":
        return [x], {"perm": draw(st.permutations(range(len(shape))))}
    return [x], ({"perm": None} if choice == "none" else {})


@st.composite
def scores_and_labels(draw, hinge: bool = False) -> Case:
    n, c = draw(st.integers(1, 5)), draw(st.integers(2, 5))
    labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    if not hinge:
        return [draw(array((n, c), floats(-5, 5))), labels], {}
    # correct-class scores on the half lattice, the rest on the whole one: every margin
    # s_j - s_y + m (integer m) is >= 0.3 from the hinge's kink at 0
    grid = draw(hnp.arrays(np.float64, (n, c), elements=st.integers(-3, 3).map(float)))
    jitter = draw(array((n, c), floats(-0.1, 0.1)))
    scores = grid + jitter + 0.5 * np.eye(c)[labels]
    margin = draw(st.sampled_from([None, 1.0, 2.0, 3.0]))
    return [scores, labels], ({} if margin is None else {"margin": margin})


@st.composite
def alpha_activation(draw) -> Case:
    (x,), _ = draw(unary(away_from_zero(0.01, 2.0)))
    alpha = draw(st.none() | st.sampled_from([0.0, 0.01, 0.2, 1.0, 1.5]))
    return [x], ({} if alpha is None else {"alpha": alpha})


@st.composite
def clip(draw) -> Case:
    """Values k + 0.25 (+-0.1), integer bounds: >= 0.15 from every bound (either may be absent,
    and min > max is allowed: the output is then max everywhere, the gradient 0)."""
    x = draw(array(draw(shapes), lattice(0.25)))
    bound = st.none() | st.integers(-3, 3).map(float)
    return [x], {"min": draw(bound), "max": draw(bound)}


@st.composite
def distinct_reduction(draw) -> Case:
    """A reduction case whose values are distinct and >= 0.8 apart: no tied maximum."""
    (x,), attributes = draw(reduction())
    order = draw(st.permutations(range(x.size)))
    jitter = draw(array(x.shape, floats(-0.1, 0.1)))
    return [np.asarray(order, dtype=np.float64).reshape(x.shape) + jitter], attributes


@st.composite
def gemm(draw) -> Case:
    m, k, n = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    trans_a, trans_b = draw(st.booleans()), draw(st.booleans())
    arrays = [draw(array((k, m) if trans_a else (m, k), floats(-2, 2))),
              draw(array((n, k) if trans_b else (k, n), floats(-2, 2)))]
    c_shape = draw(st.none() | st.sampled_from([(m, n), (n,), (1, n), (m, 1), (1, 1), ()]))
    if c_shape is not None:  # C broadcasts to (M, N), never the other way
        arrays.append(draw(array(c_shape, floats(-2, 2))))
    attributes = {"transA": trans_a, "transB": trans_b}
    for name in ("alpha", "beta"):
        value = draw(st.none() | st.sampled_from([0.0, 0.5, -2.0]))
        if value is not None:
            attributes[name] = value
    return arrays, attributes


@st.composite
def along_axis(draw) -> Case:
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    x = draw(array(shape, floats(-4, 4)))
    axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1))
    return [x], ({} if axis is None else {"axis": axis})


@st.composite
def where(draw) -> Case:
    """cond, x and y of mutually broadcasting shapes."""
    triple = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3,
                                                    max_side=4))
    cond = draw(hnp.arrays(np.bool_, triple.input_shapes[0]))
    return [cond, *(draw(array(s, floats(-3, 3))) for s in triple.input_shapes[1:])], {}


@st.composite
def concat(draw) -> Case:
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    pieces = []
    for _ in range(draw(st.integers(1, 3))):
        piece = list(shape)
        piece[axis] = draw(st.integers(1, 3))
        pieces.append(draw(array(tuple(piece), floats(-3, 3))))
    return pieces, {"axis": axis}


@st.composite
def flatten(draw) -> Case:
    shape = draw(shapes)
    axis = draw(st.none() | st.integers(-len(shape), len(shape)))
    if axis is None and not shape:
        axis = 0  # the default, 1, is out of range for a 0-d input
    return [draw(array(shape, floats(-3, 3)))], ({} if axis is None else {"axis": axis})


@st.composite
def unsqueeze(draw) -> Case:
    shape = draw(shapes)
    count = draw(st.integers(1, 2))
    rank = len(shape) + count
    axes = draw(st.lists(st.integers(0, rank - 1), min_size=count, max_size=count, unique=True))
    axes = [a - rank if draw(st.booleans()) else a for a in axes]
    return [draw(array(shape, floats(-3, 3)))], {"axes": axes}


@st.composite
def squeeze(draw) -> Case:
    shape = list(draw(shapes))
    for _ in range(draw(st.integers(1, 2))):
        shape.insert(draw(st.integers(0, len(shape))), 1)
    ones = [i for i, d in enumerate(shape) if d == 1]
    chosen = draw(st.none() | st.lists(st.sampled_from(ones), min_size=1, unique=True))
    x = draw(array(tuple(shape), floats(-3, 3)))
    if chosen is None:
        return [x], draw(st.sampled_from([{}, {"axes": None}]))
    return [x], {"axes": [a - len(shape) if draw(st.booleans()) else a for a in chosen]}


@st.composite
def cast(draw) -> Case:
    """float64 to float64 only: a float32 output would swamp central differences in rounding
    (the float32 casts and their gradients' dtypes are tested below)."""
    (x,), _ = draw(unary(floats(-3, 3)))
    return [x], {"to": "float64"}


@st.composite
def compare(draw) -> Case:
    return draw(binary(st.integers(-2, 2).map(float)))


CASES: dict[str, st.SearchStrategy[Case]] = {
    "Add": binary(floats(-10, 10)),
    "Sub": binary(floats(-10, 10)),
    "Mul": binary(floats(-3, 3)),
    "Div": binary(floats(-3, 3), away_from_zero(0.5, 2.0)),
    "Max": tie_free_pair(),
    "Min": tie_free_pair(),
    "Neg": unary(floats(-10, 10)),
    "Identity": unary(floats(-10, 10)),
    "Reciprocal": unary(away_from_zero(0.5, 2.0)),
    "Exp": unary(floats(-3, 3)),
    "Log": unary(floats(0.5, 3.0)),
    "Sqrt": unary(floats(0.5, 3.0)),
    "Relu": unary(away_from_zero(0.01, 2.0)),
    "Sigmoid": unary(floats(-6, 6)),
    "Tanh": unary(floats(-3, 3)),
    "Pow": power(),
    "Sum": reduction(),
    "Mean": reduction(),
    "MatMul": matmul(),
    "Reshape": reshape(),
    "Transpose": transpose(),
    "SoftmaxCrossEntropy": scores_and_labels(),
    "SVMHinge": scores_and_labels(hinge=True),
    "Abs": unary(away_from_zero(0.01, 3.0)),
    "ReduceMax": distinct_reduction(),
    "Gemm": gemm(),
    "Flatten": flatten(),
    "Concat": concat(),
    "Unsqueeze": unsqueeze(),
    "Squeeze": squeeze(),
    "LeakyRelu": alpha_activation(),
    "Elu": alpha_activation(),
    "Clip": clip(),
    "Softmax": along_axis(),
    "LogSoftmax": along_axis(),
    "Equal": compare(),
    "Greater": compare(),
    "Less": compare(),
    "Where": where(),
    "Cast": cast(),
}


def test_the_builtin_ops_are_exactly_the_tested_ones() -> None:
    """A new built-in op must get a strategy here before it can ship."""
    assert [op.name for op in BUILTIN_OPS] == EXPECTED_OPS
    assert set(CASES) == set(EXPECTED_OPS)
    assert all(op.domain == "" and op.version == 1 for op in BUILTIN_OPS)
    assert {op.qualname for op in REGISTRY.ops()} == {f"{n}@1" for n in EXPECTED_OPS}


@pytest.mark.parametrize("name", DIFFERENTIABLE)
@given(data=st.data())
def test_gradient_matches_central_differences(name: str, data: st.DataObject) -> None:
    arrays, attributes = data.draw(CASES[name], label="case")
    report = check_op_at(OPS[name], arrays, attributes)
    floating = {f"x{i}" for i, a in enumerate(arrays) if a.dtype.kind == "f"}
    assert set(report.errors) == floating  # every float input checked, integer labels not
    assert report.ok, report.errors


def single_node(name: str, arrays: list[np.ndarray], attributes: dict[str, Any], dtype: str
                ) -> tuple[Graph, dict[str, np.ndarray]]:
    names = [f"x{i}" for i in range(len(arrays))]
    graph = Graph.model_validate({
        "name": name,
        "inputs": [
            {"name": n, "dtype": dtype if a.dtype.kind == "f" else str(a.dtype),
             "shape": list(a.shape)}
            for n, a in zip(names, arrays, strict=True)
        ],
        "outputs": ["y"],
        "nodes": [{"op": name, "inputs": names, "outputs": ["y"], "attributes": attributes}],
    })
    values = {n: a.astype(dtype) if a.dtype.kind == "f" else a
              for n, a in zip(names, arrays, strict=True)}
    return graph, values


@pytest.mark.parametrize("name", SAME_DTYPE)
@given(data=st.data())
def test_float32_gradients_keep_dtype_and_shape(name: str, data: st.DataObject) -> None:
    arrays, attributes = data.draw(CASES[name], label="case")
    graph32, inputs32 = single_node(name, arrays, attributes, "float32")
    graph64, inputs64 = single_node(name, arrays, attributes, "float64")
    run32 = execute(graph32, inputs32, wrt="all", registry=REGISTRY)
    run64 = execute(graph64, inputs64, wrt="all", registry=REGISTRY)
    assert run32.outputs["y"].dtype == np.float32
    floating = [n for n, a in inputs32.items() if a.dtype.kind == "f"]
    assert sorted(run32.gradients) == sorted(floating)
    for value in floating:
        grad, reference = run32.gradients[value], run64.gradients[value]
        assert grad.dtype == np.float32, value
        assert grad.shape == inputs32[value].shape, value
        assert reference.shape == inputs64[value].shape, value
        scale = max(1.0, float(np.max(np.abs(reference), initial=0.0)))
        np.testing.assert_allclose(grad, reference, rtol=1e-3, atol=1e-4 * scale)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_check_op_passes_with_the_ops_own_samples(name: str) -> None:
    report = check_op(OPS[name], trials=15)
    assert report.errors, "check_op checked nothing"
    assert report.ok, report.errors


def _scaled(rule, factor: float):
    def wrong(*args, **kwargs):
        out = rule(*args, **kwargs)
        if isinstance(out, tuple):
            return tuple(None if g is None else g * factor for g in out)
        return None if out is None else out * factor

    return wrong


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_check_op_catches_a_gradient_off_by_ten_percent(name: str) -> None:
    """The checks above can fail: the same op with every gradient scaled by 1.1 is caught."""
    op = OPS[name]
    if isinstance(op.vjp, tuple):
        vjp = tuple(None if r is None else _scaled(r, 1.1) for r in op.vjp)
    else:
        vjp = _scaled(op.vjp, 1.1)
    report = check_op(dataclasses.replace(op, vjp=vjp), trials=15)
    assert not report.ok


def test_matmul_of_two_vectors_is_their_dot_product() -> None:
    a, b = np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])
    graph, inputs = single_node("MatMul", [a, b], {}, "float64")
    result = execute(graph, inputs, wrt="all", registry=REGISTRY)
    assert result.outputs["y"] == 32.0
    np.testing.assert_array_equal(result.gradients["x0"], b)
    np.testing.assert_array_equal(result.gradients["x1"], a)


def test_pow_with_exponent_zero_has_zero_gradient_even_at_zero() -> None:
    graph, inputs = single_node("Pow", [np.array([0.0, 1.0, -2.0])], {"exponent": 0.0}, "float64")
    result = execute(graph, inputs, wrt="all", registry=REGISTRY)
    np.testing.assert_array_equal(result.outputs["y"], [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(result.gradients["x0"], [0.0, 0.0, 0.0])


# -- ops without gradients -------------------------------------------------------------------


def graph_of(inputs: dict[str, np.ndarray], nodes: list[dict[str, Any]]) -> Graph:
    """A graph over `inputs` (their dtypes and shapes) computing `y` with `nodes`."""
    return Graph.model_validate({
        "name": "g",
        "inputs": [{"name": n, "dtype": str(a.dtype), "shape": list(a.shape)}
                   for n, a in inputs.items()],
        "outputs": ["y"],
        "nodes": [{"name": f"n{i}", **node} for i, node in enumerate(nodes)],
    })


def test_only_the_comparisons_have_no_gradient_rule() -> None:
    assert [name for name in EXPECTED_OPS if OPS[name].vjp is None] == NOT_DIFFERENTIABLE


@pytest.mark.parametrize("name", NOT_DIFFERENTIABLE)
@given(data=st.data())
def test_comparisons_pass_no_gradient(name: str, data: st.DataObject) -> None:
    """A bool output has no gradient to ask for; through a cast back to float, a comparison
    contributes nothing: d/da [cmp(a, b) * a] = cmp(a, b), d/db = 0."""
    (a, b), _ = data.draw(CASES[name], label="case")
    alone, inputs = single_node(name, [a, b], {}, "float64")
    assert execute(alone, inputs, registry=REGISTRY).outputs["y"].dtype == np.bool_
    with pytest.raises(graphkit.InputError, match="only float values have gradients"):
        execute(alone, inputs, wrt="all", registry=REGISTRY)
    graph = graph_of({"a": a, "b": b}, [
        {"op": name, "inputs": ["a", "b"], "outputs": ["c"]},
        {"op": "Cast", "inputs": ["c"], "outputs": ["f"], "attributes": {"to": "float64"}},
        {"op": "Mul", "inputs": ["f", "a"], "outputs": ["y"]},
    ])
    result = execute(graph, {"a": a, "b": b}, wrt="all", registry=REGISTRY)
    mask = OPS[name].forward(a, b).astype(np.float64)  # in the broadcast shape
    np.testing.assert_array_equal(result.gradients["a"], sum_to(mask, a.shape))
    np.testing.assert_array_equal(result.gradients["b"], np.zeros_like(b))


# -- ties and kinks --------------------------------------------------------------------------


def gradient(name: str, arrays: list[np.ndarray], attributes: dict[str, Any],
             seed: np.ndarray | None = None) -> list[np.ndarray]:
    graph, inputs = single_node(name, arrays, attributes, "float64")
    result = execute(graph, inputs, wrt="all", seed=seed, registry=REGISTRY)
    return [result.gradients[n] for n in inputs if n in result.gradients]


def test_reduce_max_routes_to_the_first_maximum_of_each_slice() -> None:
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    (g,) = gradient("ReduceMax", [x], {"axes": [1]}, seed=np.array([[10.0], [20.0]]))
    np.testing.assert_array_equal(g, [[0, 10, 0], [20, 0, 0]])
    (g,) = gradient("ReduceMax", [x], {"axes": [0], "keepdims": False})
    np.testing.assert_array_equal(g, [[0, 1, 1], [1, 0, 0]])


def test_reduce_max_over_several_axes_takes_the_first_in_row_major_order() -> None:
    x = np.ones((2, 3, 2))
    (g,) = gradient("ReduceMax", [x], {})
    expected = np.zeros_like(x)
    expected[0, 0, 0] = 1
    np.testing.assert_array_equal(g, expected)
    (g,) = gradient("ReduceMax", [x], {"axes": [-1, 0], "keepdims": False})
    expected = np.zeros_like(x)
    expected[0, :, 0] = 1  # per middle index: the first of (axis 0, axis 2) = (0, 0)
    np.testing.assert_array_equal(g, expected)


def test_reduce_max_of_nothing_is_minus_infinity_and_passes_no_gradient() -> None:
    x = np.zeros((2, 0, 3))
    graph, inputs = single_node("ReduceMax", [x], {"axes": [1]}, "float64")
    result = execute(graph, inputs, wrt="all", registry=REGISTRY)
    np.testing.assert_array_equal(result.outputs["y"], np.full((2, 1, 3), -np.inf))
    assert result.gradients["x0"].shape == (2, 0, 3)


@given(data=st.data())
def test_reduce_max_ties_follow_the_max_gate(data: st.DataObject) -> None:
    """ReduceMax over stack([a, b]) routes exactly as Max(a, b), ties included (to a)."""
    (a, b), _ = data.draw(binary(st.integers(-1, 1).map(float)), label="pair")
    a, b = np.broadcast_arrays(a, b)
    ga, gb = gradient("Max", [a.copy(), b.copy()], {})
    (g,) = gradient("ReduceMax", [np.stack([a, b])], {"axes": [0], "keepdims": False})
    np.testing.assert_array_equal(g, np.stack([ga, gb]))


def test_abs_leaky_relu_and_elu_at_zero() -> None:
    x = np.array([-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(gradient("Abs", [x], {})[0], [-1, 0, 1])
    np.testing.assert_array_equal(gradient("LeakyRelu", [x], {})[0], [0.01, 0.01, 1])
    np.testing.assert_array_equal(gradient("LeakyRelu", [x], {"alpha": 0.0})[0],
                                  gradient("Relu", [x], {})[0])  # alpha = 0 is Relu, kink too
    np.testing.assert_allclose(gradient("Elu", [x], {"alpha": 2.0})[0], [2 * np.exp(-1), 2, 1])


def test_clip_passes_the_gradient_at_its_bounds_and_not_beyond() -> None:
    x = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    (g,) = gradient("Clip", [x], {"min": -1.0, "max": 1.0})
    np.testing.assert_array_equal(g, [0, 1, 1, 1, 0])
    np.testing.assert_array_equal(gradient("Clip", [x], {"min": 0.0})[0], [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(gradient("Clip", [x], {})[0], np.ones(5))
    graph, inputs = single_node("Clip", [x], {"min": 1.0, "max": -1.0}, "float64")
    result = execute(graph, inputs, wrt="all", registry=REGISTRY)
    np.testing.assert_array_equal(result.outputs["y"], np.full(5, -1.0))  # ONNX: max everywhere
    np.testing.assert_array_equal(result.gradients["x0"], np.zeros(5))


def test_where_routes_the_gradient_and_gives_cond_none() -> None:
    cond = np.array([True, False, True])
    x, y = np.array([1.0, 2.0, 3.0]), np.array(5.0)
    gx, gy = gradient("Where", [cond, x, y], {})
    np.testing.assert_array_equal(gx, [1, 0, 1])
    assert gy.shape == () and gy == 1.0  # broadcast y: its one element was picked once


# -- Cast --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "to"), [("float32", "float64"), ("float64", "float32"),
                                            ("float32", "float32")])
def test_cast_between_floats_passes_the_gradient_in_the_inputs_dtype(source: str, to: str) -> None:
    x = np.array([0.5, -1.5, 2.0], dtype=source)
    graph = graph_of({"x": x}, [
        {"op": "Cast", "inputs": ["x"], "outputs": ["c"], "attributes": {"to": to}},
        {"op": "Mul", "inputs": ["c", "c"], "outputs": ["y"]},
    ])
    result = execute(graph, {"x": x}, wrt="all", registry=REGISTRY)
    assert result.outputs["y"].dtype == np.dtype(to)
    assert result.gradients["x"].dtype == np.dtype(source)
    np.testing.assert_allclose(result.gradients["x"], 2 * x)


@pytest.mark.parametrize("to", ["int32", "int64", "bool"])
def test_cast_to_an_integer_or_bool_passes_no_gradient(to: str) -> None:
    x = np.array([0.5, -1.5, 2.0])
    graph = graph_of({"x": x}, [
        {"op": "Cast", "inputs": ["x"], "outputs": ["i"], "attributes": {"to": to}},
        {"op": "Cast", "inputs": ["i"], "outputs": ["f"], "attributes": {"to": "float64"}},
        {"op": "Mul", "inputs": ["f", "x"], "outputs": ["y"]},
    ])
    result = execute(graph, {"x": x}, wrt="all", registry=REGISTRY)
    expected = x.astype(to).astype(np.float64)  # d/dx [cast(x) * x]: only the direct path
    np.testing.assert_array_equal(result.gradients["x"], expected)


# -- shape inference -------------------------------------------------------------------------


def agrees(inferred: Any, actual: tuple[int, ...]) -> bool:
    """An inferred shape is right if every dim it claims to know is the actual one."""
    if inferred is None:
        return True
    return len(inferred) == len(actual) and all(
        not isinstance(d, int) or d == a for d, a in zip(inferred, actual, strict=True))


@pytest.mark.parametrize("name", EXPECTED_OPS)
@given(data=st.data())
def test_shape_inference_agrees_with_forward(name: str, data: st.DataObject) -> None:
    """Exact on known shapes; on shapes with unknown or symbolic dims, never contradicted."""
    arrays, attributes = data.draw(CASES[name], label="case")
    op = OPS[name]
    full = dict(op.attributes.model_validate(attributes))
    actual = np.shape(op.forward(*arrays, **full))
    assert op.infer is not None
    assert op.infer(*[a.shape for a in arrays], **full) == [actual]
    blurred = [
        None if data.draw(st.booleans(), label="unknown rank") else tuple(
            data.draw(st.sampled_from([d, None, f"s{i}_{j}"]), label="dim")
            for j, d in enumerate(a.shape))
        for i, a in enumerate(arrays)
    ]
    (inferred,) = op.infer(*blurred, **full)
    assert agrees(inferred, actual), (blurred, inferred, actual)


def test_gemm_takes_two_or_three_inputs() -> None:
    a = np.ones((2, 3))
    graph = graph_of({"a": a}, [{"op": "Gemm", "inputs": ["a", "a", "a", "a"], "outputs": ["y"],
                                 "attributes": {"transB": True}}])
    with pytest.raises(graphkit.GraphValidationError, match="2 or 3 inputs"):
        graphkit.validate(graph, REGISTRY)
    graph = graph_of({"a": a}, [{"op": "Gemm", "inputs": ["a", "a"], "outputs": ["y"],
                                 "attributes": {"transB": True}}])
    assert execute(graph, {"a": a}, registry=REGISTRY).outputs["y"].tolist() == [[3, 3], [3, 3]]
