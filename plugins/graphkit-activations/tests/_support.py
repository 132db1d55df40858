"""Helpers the test modules share (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

from typing import Any

import graphkit
import numpy as np

import graphkit_activations

DOMAIN = graphkit_activations.DOMAIN
OPS = {op.name: op for op in graphkit_activations.OPS}
UNARY = [name for name, op in OPS.items() if op.num_inputs == 1]
ATTRIBUTE_CASES: dict[str, list[dict[str, Any]]] = {
    "Swish": [{}, {"beta": 2.0}, {"beta": 0.5}, {"beta": -1.5}],
    "SiLU": [{}],
    "GELU": [{}],
    "Mish": [{}],
    "Softplus": [{}, {"beta": 2.0, "threshold": 5.0}, {"beta": -1.0, "threshold": 3.0},
                 {"beta": 0.5}],
    "Maxout": [{}],
}
"""Attribute values each op is checked with ({}: the defaults)."""


def make_registry() -> graphkit.Registry:
    """The built-in ops and this plugin, registered in-process: independent of installation."""
    registry = graphkit.builtin_registry(strict=True)
    registry.register_plugin(graphkit_activations, name="activations")
    return registry


def ref(name: str) -> str:
    """How a graph names one of this plugin's ops."""
    return f"{DOMAIN}::{name}"


def maxout_arrays(rng: np.random.Generator, n: int = 6, d: int = 4, h: int = 3,
                  scale: float = 1.0) -> list[np.ndarray]:
    """x (n, d), w1 (d, h), b1 (h,), w2 (d, h), b2 (h,)."""
    shapes = [(n, d), (d, h), (h,), (d, h), (h,)]
    return [scale * rng.standard_normal(shape) for shape in shapes]


def one_op_graph(name: str, dtype: str, attributes: dict[str, Any] | None = None,
                 rows: int | str = "N") -> graphkit.Graph:
    """x -> op -> y (Maxout: x, w1, b1, w2, b2 -> y), inputs of the given dtype."""
    g = graphkit.GraphBuilder(f"{name.lower()}_graph", dtype=dtype)
    if name == "Maxout":
        inputs = [g.input("x", shape=[rows, 4]), g.input("w1", shape=[4, 3]),
                  g.input("b1", shape=[3]), g.input("w2", shape=[4, 3]), g.input("b2", shape=[3])]
    else:
        inputs = [g.input("x", shape=[rows, 5])]
    g.output(g.op(ref(name), *inputs, **(attributes or {})), "y")
    return g.build()


def one_op_inputs(name: str, dtype: str, rng: np.random.Generator, low: float, high: float,
                  rows: int = 8) -> dict[str, np.ndarray]:
    if name == "Maxout":
        arrays = maxout_arrays(rng, n=rows, scale=high / 4)
        return {k: a.astype(dtype) for k, a in zip(("x", "w1", "b1", "w2", "b2"), arrays,
                                                   strict=True)}
    return {"x": rng.uniform(low, high, size=(rows, 5)).astype(dtype)}
