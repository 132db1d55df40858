"""Every built-in op's gradient rule against central differences, on hypothesis-drawn shapes
(broadcasting included) and values inside each op's domain, away from kinks and ties."""

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

EXPECTED_OPS = [
    "Add", "Sub", "Mul", "Div", "Max", "Min", "Neg", "Identity", "Reciprocal", "Exp", "Log",
    "Sqrt", "Relu", "Sigmoid", "Tanh", "Pow", "Sum", "Mean", "MatMul", "Reshape", "Transpose",
    "SoftmaxCrossEntropy", "SVMHinge",
]
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
}


def test_the_builtin_ops_are_exactly_the_tested_ones() -> None:
    """A new built-in op must get a strategy here before it can ship."""
    assert [op.name for op in BUILTIN_OPS] == EXPECTED_OPS
    assert set(CASES) == set(EXPECTED_OPS)
    assert all(op.domain == "" and op.version == 1 for op in BUILTIN_OPS)
    assert {op.qualname for op in REGISTRY.ops()} == {f"{n}@1" for n in EXPECTED_OPS}


@pytest.mark.parametrize("name", EXPECTED_OPS)
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


@pytest.mark.parametrize("name", EXPECTED_OPS)
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


@pytest.mark.parametrize("name", EXPECTED_OPS)
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


@pytest.mark.parametrize("name", EXPECTED_OPS)
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
