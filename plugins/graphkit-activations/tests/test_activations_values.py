"""Forward values: known numbers, the textbook formulas, Maxout as the lecture writes it, shapes."""

from __future__ import annotations

import math

import graphkit
import numpy as np
import pytest
from _support import OPS, make_registry, maxout_arrays, one_op_graph, ref

swish, silu, gelu = OPS["Swish"].forward, OPS["SiLU"].forward, OPS["GELU"].forward
mish, softplus, maxout = OPS["Mish"].forward, OPS["Softplus"].forward, OPS["Maxout"].forward


@pytest.mark.parametrize(("value", "expected"), [
    (lambda: swish(np.float64(1.0), beta=1.0), 0.7310585786300049),  # sigmoid(1)
    (lambda: swish(np.float64(1.0), beta=2.0), 0.8807970779778823),  # sigmoid(2)
    (lambda: silu(np.float64(1.0)), 0.7310585786300049),
    (lambda: silu(np.float64(0.0)), 0.0),
    (lambda: gelu(np.float64(1.0)), 0.8411919906082768),
    (lambda: gelu(np.float64(0.0)), 0.0),
    (lambda: gelu(np.float64(-1.0)), -0.15880800939172324),
    (lambda: mish(np.float64(1.0)), 0.8650983882673103),
    (lambda: mish(np.float64(-1.0)), -0.30340146137410895),
    (lambda: softplus(np.float64(0.0)), math.log(2)),
    (lambda: softplus(np.float64(1.0), beta=2.0), math.log1p(math.exp(2.0)) / 2),
    (lambda: softplus(np.float64(25.0)), 25.0),  # above the threshold: x itself
    (lambda: softplus(np.float64(10.5), beta=2.0), 10.5),  # beta x = 21 > 20
    (lambda: softplus(np.float64(-40.0)), math.exp(-40.0)),  # the tail, not 0
], ids=["swish1", "swish-beta2", "silu1", "silu0", "gelu1", "gelu0", "gelu-1", "mish1",
        "mish-1", "softplus0", "softplus-beta2", "softplus-linear", "softplus-beta-threshold",
        "softplus-tail"])
def test_known_values(value, expected: float) -> None:
    assert value() == pytest.approx(expected, rel=1e-12, abs=1e-300)


def test_gelu_and_mish_at_1_to_six_digits() -> None:
    assert round(float(gelu(np.float64(1.0))), 6) == 0.841192
    assert round(float(mish(np.float64(1.0))), 6) == 0.865098
    assert round(float(swish(np.float64(1.0), beta=1.0)), 6) == 0.731059


X = np.linspace(-12, 12, 2401)


def test_textbook_formulas() -> None:
    """The naive formulas (safe for |x| <= 12 in float64) agree with the stable forms."""
    for beta in (1.0, 0.5, 2.0, -1.0):
        np.testing.assert_allclose(swish(X, beta=beta), X / (1 + np.exp(-beta * X)),
                                   rtol=1e-13, atol=1e-300)
    c = math.sqrt(2 / math.pi)
    np.testing.assert_allclose(gelu(X), 0.5 * X * (1 + np.tanh(c * (X + 0.044715 * X**3))),
                               rtol=1e-9, atol=1e-15)  # 1 + tanh cancels for x < 0: abs
    np.testing.assert_allclose(mish(X), X * np.tanh(np.log1p(np.exp(X))), rtol=1e-13)
    for beta in (1.0, 0.5, 2.0, -1.0):
        naive = np.log1p(np.exp(beta * X)) / beta
        expected = np.where(beta * X > 20.0, X, naive)
        np.testing.assert_allclose(softplus(X, beta=beta, threshold=20.0), expected, rtol=1e-13)


def test_gelu_negative_tail_keeps_its_digits() -> None:
    """x sigmoid(2u) is 0.5 x (1 + tanh u) without the cancellation: float32 keeps digits."""
    x = np.array([-4.0, -5.0, -6.0])
    exact = gelu(x)
    np.testing.assert_allclose(gelu(x.astype(np.float32)), exact, rtol=1e-5)
    u = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)  # 1 + tanh u = 2 e^2u / (1 + e^2u)
    np.testing.assert_allclose(exact, x * np.exp(2 * u) / (1 + np.exp(2 * u)), rtol=1e-13)


def test_silu_is_swish_with_beta_1() -> None:
    np.testing.assert_array_equal(silu(X), swish(X, beta=1.0))
    g = np.cos(X)
    np.testing.assert_array_equal(OPS["SiLU"].vjp(g, None, X)[0],
                                  OPS["Swish"].vjp(g, None, X, beta=1.0)[0])


def test_swish_default_beta_is_1_in_a_graph(registry: graphkit.Registry) -> None:
    graph = one_op_graph("Swish", "float64", rows=len(X))
    x = np.repeat(X.reshape(-1, 1), 5, axis=1)
    ours = graphkit.execute(graph, {"x": x}, registry=registry).outputs["y"]
    np.testing.assert_array_equal(ours[:, 0], swish(X, beta=1.0))


def test_softplus_threshold_switches_to_x_as_pytorch() -> None:
    x = np.array([19.0, 20.0, 20.5, 3.0, 3.5])
    y = softplus(x, beta=1.0, threshold=20.0)
    assert y[2] == 20.5 and y[1] != 20.0  # beta x > threshold, strictly
    assert y[0] == pytest.approx(math.log1p(math.exp(19.0)), rel=1e-15)
    y = softplus(x, beta=2.0, threshold=6.0)  # switch at x = 3
    assert y[4] == 3.5 and y[3] == pytest.approx(math.log1p(math.exp(6.0)) / 2, rel=1e-15)


def test_softplus_refuses_beta_0(registry: graphkit.Registry) -> None:
    graph = one_op_graph("Softplus", "float64", {"beta": 0.0})
    with pytest.raises(graphkit.GraphValidationError, match="beta must not be 0"):
        graphkit.validate(graph, registry)


def test_maxout_is_the_lecture_formula() -> None:
    """max(w1^T x + b1, w2^T x + b2) per example (a column of the lecture's W^T x), per unit."""
    rng = np.random.default_rng(7)
    x, w1, b1, w2, b2 = maxout_arrays(rng, n=5, d=4, h=3)
    y = maxout(x, w1, b1, w2, b2)
    assert y.shape == (5, 3)
    for n in range(5):
        for j in range(3):
            first = sum(w1[d, j] * x[n, d] for d in range(4)) + b1[j]
            second = sum(w2[d, j] * x[n, d] for d in range(4)) + b2[j]
            assert y[n, j] == pytest.approx(max(first, second), rel=1e-12)


def test_maxout_generalizes_relu_and_leaky_relu() -> None:
    """w2 = 0, b2 = 0 makes Maxout ReLU(w1 x + b1); w2 = 0.1 w1, b2 = 0.1 b1 Leaky ReLU."""
    rng = np.random.default_rng(3)
    x, w1, b1, _, _ = maxout_arrays(rng)
    z = x @ w1 + b1
    np.testing.assert_allclose(maxout(x, w1, b1, 0 * w1, 0 * b1), np.maximum(0, z), rtol=1e-15)
    np.testing.assert_allclose(maxout(x, w1, b1, 0.1 * w1, 0.1 * b1), np.maximum(0.1 * z, z),
                               rtol=1e-15)


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_is_kept_and_shape_inferred(name: str, dtype: str,
                                          registry: graphkit.Registry) -> None:
    graph = one_op_graph(name, dtype)
    resolved = graphkit.validate(graph, registry)
    assert resolved.shapes["y"] == (("N", 3) if name == "Maxout" else ("N", 5))
    rng = np.random.default_rng(0)
    feeds = {i.name: rng.standard_normal([7 if d == "N" else d for d in i.shape]).astype(dtype)
             for i in graph.inputs}
    result = graphkit.execute(graph, feeds, wrt="all", registry=registry)
    assert result.outputs["y"].dtype == np.dtype(dtype)
    assert result.outputs["y"].shape == (7, 3 if name == "Maxout" else 5)
    for name_, grad in result.gradients.items():
        assert grad.dtype == np.dtype(dtype), name_
        assert grad.shape == feeds[name_].shape, name_


@pytest.mark.parametrize(("shapes", "message"), [
    ([[5, 4], [3, 3], [3], [4, 3], [3]], "inner sizes"),
    ([[5, 4], [4, 3], [2], [4, 3], [3]], "output sizes"),
    ([[5, 4], [4, 3], [3], [4, 2], [3]], "output sizes"),
    ([[4], [4, 3], [3], [4, 3], [3]], "x must have rank 2"),
    ([[5, 4], [4, 3], [1, 3], [4, 3], [3]], "b1 must have rank 1"),
])
def test_maxout_shapes_that_cannot_agree_are_refused(shapes, message: str) -> None:
    g = graphkit.GraphBuilder("bad")
    inputs = [g.input(n, shape=s) for n, s in zip(("x", "w1", "b1", "w2", "b2"), shapes,
                                                    strict=True)]
    g.output(g.op(ref("Maxout"), *inputs), "y")
    with pytest.raises(graphkit.GraphValidationError, match=message):
        graphkit.validate(g.build(), make_registry())


def test_maxout_symbolic_and_unknown_dims() -> None:
    infer = OPS["Maxout"].infer
    assert infer(("N", "D"), ("D", "H"), ("H",), ("D", "H"), ("H",)) == [("N", "H")]
    assert infer(("N", 4), (None, 3), None, (4, None), ("H",)) == [("N", 3)]
    assert infer(None, None, None, None, None) == [(None, None)]
