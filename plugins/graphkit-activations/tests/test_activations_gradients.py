"""Local gradients: central differences (graphkit.check_op / check_op_at), the gate against the
same function built from built-in gates, Maxout's routing, and stability for large |x|."""

from __future__ import annotations

import warnings

import graphkit
import numpy as np
import pytest
from _support import ATTRIBUTE_CASES, OPS, UNARY, maxout_arrays, ref

CASES = [(name, attributes) for name, cases in ATTRIBUTE_CASES.items() for attributes in cases]
CASE_IDS = [f"{name}-{'-'.join(f'{k}{v}' for k, v in a.items()) or 'defaults'}"
            for name, a in CASES]


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("seed", [0, 1])
def test_check_op_on_its_own_samples(name: str, seed: int) -> None:
    report = graphkit.check_op(OPS[name], trials=30, seed=seed)
    assert report.ok, report.errors
    assert report.errors  # every input was checked


# points on both sides of 0, in the curved middle and out in the tails
POINTS = np.array([[-50.0, -30.0, -12.5, -4.0, -1.5], [-0.5, 0.25, 1.0, 2.5, 7.0],
                   [11.0, 19.5, 21.0, 30.0, 50.0]])


@pytest.mark.parametrize(("name", "attributes"), [c for c in CASES if c[0] in UNARY],
                         ids=[i for i, c in zip(CASE_IDS, CASES, strict=True) if c[0] in UNARY])
def test_gradient_at_chosen_points(name: str, attributes: dict) -> None:
    points = POINTS
    if name == "Softplus":  # keep clear of the switch to x (a jump of up to 1e-3 here)
        beta = attributes.get("beta", 1.0)
        switch = attributes.get("threshold", 20.0) / beta
        points = np.where(np.abs(points - switch) < 0.1, points + 0.3, points)
    report = graphkit.check_op_at(OPS[name], [points], attributes)
    assert report.ok and not report.kinks, (report.errors, report.kinks)


def test_maxout_gradient_at_a_point() -> None:
    arrays = maxout_arrays(np.random.default_rng(11), n=5, d=4, h=3)
    z1, z2 = arrays[0] @ arrays[1] + arrays[2], arrays[0] @ arrays[3] + arrays[4]
    assert np.min(np.abs(z1 - z2)) > 1e-3 and (z1 > z2).any() and (z1 < z2).any()
    report = graphkit.check_op_at(OPS["Maxout"], arrays)
    assert report.ok and set(report.errors) == {"x0", "x1", "x2", "x3", "x4"}, report.errors


def _gradients(graph: graphkit.Graph, feeds: dict, registry: graphkit.Registry, seed):
    result = graphkit.execute(graph, feeds, wrt="all", seed=seed, registry=registry)
    return result.outputs["y"], result.gradients


def _maxout_graphs() -> tuple[graphkit.Graph, graphkit.Graph]:
    names = ("x", "w1", "b1", "w2", "b2")
    gate, built = graphkit.GraphBuilder("gate"), graphkit.GraphBuilder("built")
    a = gate.inputs(*names)
    gate.output(gate.op(ref("Maxout"), *a), "y")
    x, w1, b1, w2, b2 = built.inputs(*names)
    built.output(built.max(x @ w1 + b1, x @ w2 + b2), "y")  # the lecture's gates
    return gate.build(), built.build()


def test_maxout_routes_ties_to_the_first_branch_as_max(registry: graphkit.Registry) -> None:
    """On ties (w2 = w1, b2 = b1 in some units) the gate matches MatMul-Add-Max exactly."""
    rng = np.random.default_rng(5)
    x, w1, b1, w2, b2 = maxout_arrays(rng, n=4, d=3, h=4)
    w2[:, :2], b2[:2] = w1[:, :2], b1[:2]  # units 0 and 1: the two branches tie everywhere
    feeds = {"x": x, "w1": w1, "b1": b1, "w2": w2, "b2": b2}
    upstream = rng.standard_normal((4, 4))
    gate, built = _maxout_graphs()
    y_gate, d_gate = _gradients(gate, feeds, registry, upstream)
    y_built, d_built = _gradients(built, feeds, registry, upstream)
    np.testing.assert_array_equal(y_gate, y_built)
    for name in feeds:
        np.testing.assert_allclose(d_gate[name], d_built[name], rtol=1e-14, atol=1e-14)
    assert not d_gate["w2"][:, :2].any() and not d_gate["b2"][:2].any()  # all to the first
    np.testing.assert_allclose(d_gate["b1"][:2], upstream[:, :2].sum(axis=0), rtol=1e-14)


def _built_from_decomposition(name: str, attributes: dict, rows: int) -> graphkit.Graph:
    """The op's ONNX decomposition, run as a graphkit graph of built-in gates."""
    op = OPS[name]
    g = graphkit.GraphBuilder(f"{name}_built")
    x = g.input("x", shape=[rows, 5])
    values = {k: g.constant(f"attr_{k}", float(v))
              for k, v in op.attributes(**attributes).model_dump().items()}
    g.output(op.onnx.decomposition(g, x, **values), "y")
    return g.build()


@pytest.mark.parametrize(("name", "attributes"), [c for c in CASES if c[0] in UNARY],
                         ids=[i for i, c in zip(CASE_IDS, CASES, strict=True) if c[0] in UNARY])
def test_one_gate_or_many_gates_same_gradients(name: str, attributes: dict,
                                               registry: graphkit.Registry) -> None:
    """The lecture: a group of gates may become one gate; both must give the same gradients."""
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.uniform(-6, 6, size=(8, 5)), POINTS])
    upstream = rng.standard_normal(x.shape)
    g = graphkit.GraphBuilder("gate")
    g.output(g.op(ref(name), g.input("x", shape=[len(x), 5]), **attributes), "y")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y_gate, d_gate = _gradients(g.build(), {"x": x}, registry, upstream)
        y_built, d_built = _gradients(_built_from_decomposition(name, attributes, len(x)),
                                      {"x": x}, registry, upstream)
    # built-in Sigmoid is 0.5 (1 + tanh(x / 2)): its negative tail is exact only to ~1e-16
    # absolute, so tiny values agree absolutely; the rest to rounding
    np.testing.assert_allclose(y_gate, y_built, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(d_gate["x"], d_built["x"], rtol=1e-9, atol=1e-15)


def test_maxout_gate_and_gates_same_gradients(registry: graphkit.Registry) -> None:
    rng = np.random.default_rng(8)
    arrays = maxout_arrays(rng, n=6, d=4, h=3)
    feeds = dict(zip(("x", "w1", "b1", "w2", "b2"), arrays, strict=True))
    upstream = rng.standard_normal((6, 3))
    (y_gate, d_gate), (y_built, d_built) = (_gradients(graph, feeds, registry, upstream)
                                            for graph in _maxout_graphs())
    np.testing.assert_allclose(y_gate, y_built, rtol=1e-14)
    for name in feeds:
        np.testing.assert_allclose(d_gate[name], d_built[name], rtol=1e-12, atol=1e-14)


WIDE = np.linspace(-50, 50, 20001)
HUGE = np.array([-3e38, -1e30, -1e10, -1e3, 1e3, 1e10, 1e30, 3e38])


@pytest.mark.parametrize(("name", "attributes"), [c for c in CASES if c[0] in UNARY],
                         ids=[i for i, c in zip(CASE_IDS, CASES, strict=True) if c[0] in UNARY])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stable_and_dtype_kept_for_large_x(name: str, attributes: dict, dtype: str) -> None:
    """No overflow (or any) warning for x in [-50, 50]; float32 stays float32; even at the
    float32 extremes forward and gradient stay finite (beta = 1)."""
    op = OPS[name]
    validated = op.attributes(**attributes).model_dump()
    x = WIDE.astype(dtype)
    g = np.ones_like(x)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        y = op.forward(x, **validated)
        (dx,) = op.vjp(g, graphkit.Meta(y.shape, y.dtype), x, **validated)
    assert y.dtype == dx.dtype == np.dtype(dtype)
    assert np.isfinite(y).all() and np.isfinite(dx).all()
    assert (dx >= -0.2).all() and (dx <= 1.2 * max(1.0, abs(validated.get("beta", 1.0)))).all()
    if abs(validated.get("beta", 1.0)) == 1.0:
        huge = HUGE.astype(dtype)
        with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise",
                                                    divide="raise"):
            warnings.simplefilter("error")
            y = op.forward(huge, **validated)
            (dx,) = op.vjp(np.ones_like(huge), None, huge, **validated)
        assert np.isfinite(y).all() and np.isfinite(dx).all()


def test_tails_are_the_asymptotes() -> None:
    """Far out every one of these is x on one side and 0 on the other (slopes 1 and 0)."""
    x = np.array([-50.0, 50.0])
    for name, attributes in CASES:
        if name not in UNARY or attributes.get("beta", 1.0) < 0:
            continue
        op = OPS[name]
        validated = op.attributes(**attributes).model_dump()
        y = op.forward(x, **validated)
        (dx,) = op.vjp(np.ones(2), None, x, **validated)
        np.testing.assert_allclose(y, [0.0, 50.0], atol=1e-8, err_msg=name)
        np.testing.assert_allclose(dx, [0.0, 1.0], atol=1e-8, err_msg=name)


def test_maxout_stable_and_float32(registry: graphkit.Registry) -> None:
    arrays = [a.astype(np.float32) for a in maxout_arrays(np.random.default_rng(4), scale=50)]
    op = OPS["Maxout"]
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        y = op.forward(*arrays)
        grads = op.vjp(np.ones_like(y), None, *arrays)
    assert y.dtype == np.float32 and all(d.dtype == np.float32 for d in grads)
    assert [d.shape for d in grads] == [a.shape for a in arrays]
