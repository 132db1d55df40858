"""What the activation gates share: their ONNX domain, stable numerics, samples, shapes.

Numerics: nothing here calls exp on a positive argument, so no gate overflows for large |x|;
Python-float constants keep float32 inputs float32 (numpy 2 treats them as weak scalars).
The `*_values` helpers write the same functions with GraphBuilder values, for decompositions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from graphkit.builder import GraphBuilder, Value
from graphkit.onnxmap import OnnxMapping
from graphkit.opdef import Shape

DOMAIN = "ai.graphkit.activations"
VERSION = 1
INPUTS = frozenset({"inputs"})
"""Every gate here recomputes its local gradient from its inputs: the output is not kept."""

Sample = tuple[list[np.ndarray], dict[str, Any]]


def mapping(name: str, decomposition: Callable[..., Any]) -> OnnxMapping:
    """The op as a node of this plugin's ONNX domain, its body written with built-in ops."""
    return OnnxMapping(op_type=name, domain=DOMAIN, decomposition=decomposition)


# -- numpy --------------------------------------------------------------------------------------


def sigmoid(z: Any) -> Any:
    """1 / (1 + e^-z) through e^-|z| only: no overflow, relative accuracy in both tails."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def softplus(z: Any) -> Any:
    """log(1 + e^z) = max(z, 0) + log1p(e^-|z|): no overflow, exact tails (e^z below, z above)."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


# -- GraphBuilder values (decompositions) -------------------------------------------------------


def log1p_values(g: GraphBuilder, u: Value) -> Value:
    """log(1 + u) to full relative precision from Log alone (Goldberg's Theorem 4).

    w = 1 + u rounds; log(w) * u / (w - 1) cancels that rounding, and where w == 1 (u below
    the epsilon) the answer is u itself. The inner Where keeps 0/0 out of the unused branch.
    """
    w = 1 + u
    d = w - 1
    tiny = g.op("Equal", d, 0.0)
    return g.op("Where", tiny, u, w.log() * u / g.op("Where", tiny, 1.0, d))


def softplus_values(g: GraphBuilder, z: Value) -> Value:
    """softplus as `softplus` above: Relu(z) + log1p(e^-|z|)."""
    return z.relu() + log1p_values(g, (-g.op("Abs", z)).exp())


# -- samples and shapes -------------------------------------------------------------------------


def random_shape(rng: np.random.Generator, max_rank: int = 3, max_dim: int = 4) -> tuple[int, ...]:
    rank = int(rng.integers(0, max_rank + 1))
    return tuple(int(d) for d in rng.integers(1, max_dim + 1, size=rank))


def values(rng: np.random.Generator, low: float = -5.0, high: float = 5.0) -> np.ndarray:
    """float64 values of a random shape (rank 0 to 3); a few are pushed into the tails."""
    shape = random_shape(rng)
    x = rng.uniform(low, high, size=shape)
    tails = rng.random(size=shape) < 0.1
    return np.where(tails, rng.choice([-1.0, 1.0], size=shape) * rng.uniform(10, 40, shape), x)


def same_shape(shape: Shape, **_attributes: Any) -> list[Shape]:
    """Elementwise with one input: the output has the input's shape."""
    return [shape]
