"""The optimisers follow the textbook update rules, keep state per parameter, update in place.

The reference rules below are written out independently of graphkit.optim, step by step in
float64, as the CS231n notes give them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from graphkit.errors import GraphkitError
from graphkit.optim import DEFAULT_LR, SGD, Adam, make_optimizer

FINITE = st.floats(-100, 100, allow_nan=False, allow_infinity=False, width=64)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)


@st.composite
def trajectories(draw: st.DrawFn) -> tuple[np.ndarray, list[np.ndarray]]:
    """A starting parameter and the gradients of a few steps, all of one shape."""
    shape = draw(SHAPES)
    x = draw(hnp.arrays(np.float64, shape, elements=FINITE))
    steps = draw(st.integers(1, 6))
    grads = [draw(hnp.arrays(np.float64, shape, elements=FINITE)) for _ in range(steps)]
    return x, grads


def sgd_reference(x: np.ndarray, grads: list[np.ndarray], lr: float, mu: float) -> np.ndarray:
    x = x.astype(np.float64).copy()
    v = np.zeros_like(x)
    for dx in grads:
        v = mu * v - lr * dx
        x = x + v
    return x


def adam_reference(x: np.ndarray, grads: list[np.ndarray], lr: float, beta1: float,
                   beta2: float, eps: float) -> np.ndarray:
    x = x.astype(np.float64).copy()
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    for t, dx in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * dx
        v = beta2 * v + (1 - beta2) * (dx**2)
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        x = x - lr * m_hat / (np.sqrt(v_hat) + eps)
    return x


@given(trajectories(), st.floats(1e-4, 1.0), st.floats(0.0, 0.99))
def test_sgd_momentum_matches_the_textbook_rule(
    case: tuple[np.ndarray, list[np.ndarray]], lr: float, momentum: float
) -> None:
    x0, grads = case
    params = {"w": x0.copy()}
    optimizer = SGD(lr=lr, momentum=momentum)
    for dx in grads:
        optimizer.step(params, {"w": dx})
    np.testing.assert_allclose(params["w"], sgd_reference(x0, grads, lr, momentum),
                               rtol=1e-12, atol=1e-9)


@given(trajectories(), st.floats(1e-4, 1.0), st.floats(0.0, 0.99), st.floats(0.5, 0.9999),
       st.floats(1e-10, 1e-3))
def test_adam_matches_the_textbook_rule(
    case: tuple[np.ndarray, list[np.ndarray]], lr: float, beta1: float, beta2: float, eps: float
) -> None:
    x0, grads = case
    params = {"w": x0.copy()}
    optimizer = Adam(lr=lr, beta1=beta1, beta2=beta2, eps=eps)
    for dx in grads:
        optimizer.step(params, {"w": dx})
    np.testing.assert_allclose(params["w"], adam_reference(x0, grads, lr, beta1, beta2, eps),
                               rtol=1e-10, atol=1e-9)


@given(hnp.arrays(np.float64, SHAPES, elements=st.floats(0.01, 100) | st.floats(-100, -0.01)),
       st.floats(1e-4, 0.1))
def test_adams_first_step_moves_every_coordinate_by_about_lr(dx: np.ndarray, lr: float) -> None:
    """Bias correction makes the first update lr * sign(dx), whatever the gradient's scale."""
    params = {"w": np.zeros_like(dx)}
    Adam(lr=lr).step(params, {"w": dx})
    np.testing.assert_allclose(params["w"], -lr * np.sign(dx), rtol=1e-5)


def test_plain_sgd_when_momentum_is_zero() -> None:
    params = {"w": np.array([1.0, -2.0])}
    optimizer = SGD(lr=0.5, momentum=0.0)
    optimizer.step(params, {"w": np.array([2.0, 4.0])})
    optimizer.step(params, {"w": np.array([2.0, 4.0])})
    np.testing.assert_array_equal(params["w"], [-1.0, -6.0])
    assert optimizer.velocity == {}


@pytest.mark.parametrize("optimizer", [SGD(lr=0.1), Adam(lr=0.1)], ids=["sgd", "adam"])
def test_updates_in_place_and_keep_the_dtype(optimizer: SGD | Adam) -> None:
    w = np.ones((2, 3), dtype=np.float32)
    params = {"w": w}
    optimizer.step(params, {"w": np.full((2, 3), 0.5, dtype=np.float32)})
    assert params["w"] is w and w.dtype == np.float32
    assert (w < 1).all()


@pytest.mark.parametrize("make", [lambda: SGD(lr=0.1, momentum=0.9), lambda: Adam(lr=0.1)],
                         ids=["sgd", "adam"])
def test_state_is_kept_per_parameter_name(make) -> None:
    """Two parameters trained together move exactly as each would alone."""
    rng = np.random.default_rng(0)
    a0, b0 = rng.normal(size=3), rng.normal(size=(2, 2))
    grads = [(rng.normal(size=3), rng.normal(size=(2, 2))) for _ in range(4)]
    together = make()
    params = {"a": a0.copy(), "b": b0.copy()}
    alone_a, alone_b = make(), make()
    a, b = {"a": a0.copy()}, {"b": b0.copy()}
    for da, db in grads:
        together.step(params, {"a": da, "b": db})
        alone_a.step(a, {"a": da})
        alone_b.step(b, {"b": db})
    np.testing.assert_array_equal(params["a"], a["a"])
    np.testing.assert_array_equal(params["b"], b["b"])


def test_sgd_with_momentum_goes_downhill_on_a_quadratic() -> None:
    params = {"w": np.array([3.0, -4.0])}
    optimizer = SGD(lr=0.05, momentum=0.9)
    for _ in range(300):
        optimizer.step(params, {"w": 2 * params["w"]})  # d/dw |w|^2
    assert np.linalg.norm(params["w"]) < 1e-3


@pytest.mark.parametrize(("make", "fragment"), [
    (lambda: SGD(lr=0), "lr must be a positive number"),
    (lambda: SGD(lr=-1), "lr must be a positive number"),
    (lambda: SGD(lr=math.nan), "lr must be a positive number"),
    (lambda: SGD(momentum=1.0), "momentum must be in [0, 1)"),
    (lambda: Adam(beta1=1.0), "beta1 must be in [0, 1)"),
    (lambda: Adam(beta2=-0.1), "beta2 must be in [0, 1)"),
    (lambda: Adam(eps=0), "eps must be a positive number"),
    (lambda: make_optimizer("rmsprop"), "unknown optimizer 'rmsprop' (one of sgd, adam)"),
])
def test_bad_hyperparameters_are_named(make, fragment: str) -> None:
    with pytest.raises(GraphkitError) as caught:
        make()
    assert fragment in str(caught.value)


def test_bad_parameters_and_gradients_are_named() -> None:
    sgd = SGD()
    with pytest.raises(GraphkitError, match="no gradient for parameter 'b'"):
        sgd.step({"a": np.zeros(2), "b": np.zeros(2)}, {"a": np.zeros(2)})
    with pytest.raises(GraphkitError, match=r"gradient of parameter 'a' has shape \(3,\)"):
        sgd.step({"a": np.zeros(2)}, {"a": np.zeros(3)})
    frozen = np.zeros(2)
    frozen.flags.writeable = False
    with pytest.raises(GraphkitError, match="parameter 'a' must be a writable float"):
        sgd.step({"a": frozen}, {"a": np.zeros(2)})
    with pytest.raises(GraphkitError, match="parameter 'a' must be a writable float"):
        sgd.step({"a": np.zeros(2, dtype=np.int64)}, {"a": np.zeros(2)})


def test_make_optimizer_defaults() -> None:
    sgd, adam = make_optimizer("sgd"), make_optimizer("ADAM")
    assert isinstance(sgd, SGD) and sgd.lr == DEFAULT_LR["sgd"] == 0.01 and sgd.momentum == 0.9
    assert isinstance(adam, Adam) and adam.lr == DEFAULT_LR["adam"] == 0.001
    assert make_optimizer("sgd", lr=0.5, momentum=0.0).describe() == "sgd lr 0.5 momentum 0"
    assert adam.describe() == "adam lr 0.001"
