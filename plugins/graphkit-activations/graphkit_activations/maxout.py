"""Maxout, the lecture's max(w1^T x + b1, w2^T x + b2), for a batch: one gate, five inputs.

    Maxout(x, w1, b1, w2, b2) = max(x @ w1 + b1, x @ w2 + b2)
    x: (N, D), w1, w2: (D, H), b1, b2: (H,)  ->  (N, H)

The gradient is routed as by graphkit's Max gate: the whole upstream gradient goes to the
branch that won, to the first (w1, b1) on a tie. With g1 = g where z1 >= z2 (else 0) and
g2 = g - g1: dx = g1 @ w1^T + g2 @ w2^T, dw1 = x^T @ g1, db1 = sum over N of g1 (and the
same for the second branch). The pre-activations are recomputed from the inputs, once for all
five gradients, rather than kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from graphkit.builder import GraphBuilder, Value
from graphkit.opdef import OpDef, Shape

from graphkit_activations._common import DOMAIN, INPUTS, VERSION, Sample, mapping

Dim = int | str | None


def _branches(x: Any, w1: Any, b1: Any, w2: Any, b2: Any) -> tuple[Any, Any]:
    return x @ w1 + b1, x @ w2 + b2


def maxout(x: Any, w1: Any, b1: Any, w2: Any, b2: Any) -> Any:
    return np.maximum(*_branches(x, w1, b1, w2, b2))


def maxout_vjp(g: Any, y: Any, x: Any, w1: Any, b1: Any, w2: Any, b2: Any) -> tuple[Any, ...]:
    z1, z2 = _branches(x, w1, b1, w2, b2)
    first = z1 >= z2  # ties to the first branch, as Max
    g1 = np.where(first, g, 0)
    g2 = np.where(first, 0, g)
    dx = g1 @ w1.T + g2 @ w2.T
    return dx, x.T @ g1, g1.sum(axis=0), x.T @ g2, g2.sum(axis=0)


def maxout_values(g: GraphBuilder, x: Value, w1: Value, b1: Value, w2: Value, b2: Value
                  ) -> Value:
    return g.max(x @ w1 + b1, x @ w2 + b2)


def _unify(what: str, dims: list[Dim]) -> Dim:
    """The one size several dims must share: an int if any is known, else a common name."""
    known = {d for d in dims if isinstance(d, int)}
    if len(known) > 1:
        raise ValueError(f"{what} disagree: {', '.join(str(d) for d in dims)}")
    if known:
        return known.pop()
    named = set(dims)
    return named.pop() if len(named) == 1 else None


def maxout_infer(x: Shape, w1: Shape, b1: Shape, w2: Shape, b2: Shape) -> list[Shape]:
    for name, shape, rank in (("x", x, 2), ("w1", w1, 2), ("b1", b1, 1), ("w2", w2, 2),
                              ("b2", b2, 1)):
        if shape is not None and len(shape) != rank:
            raise ValueError(f"Maxout: {name} must have rank {rank}, not {len(shape)} "
                             "(x: (N, D), w1, w2: (D, H), b1, b2: (H,))")
    n = None if x is None else x[0]
    _unify("Maxout: the inner sizes (x's columns, w1's and w2's rows)",
           ([x[1]] if x is not None else []) + [s[0] for s in (w1, w2) if s is not None])
    h = _unify("Maxout: the output sizes (w1's and w2's columns, b1's and b2's length)",
               [s[-1] for s in (w1, b1, w2, b2) if s is not None])
    return [(n, h)]


def _sample(rng: np.random.Generator) -> Sample:
    """Random shapes and values with the two branches at least 0.01 apart (no ties)."""
    n, d, h = (int(s) for s in rng.integers(1, 5, size=3))
    for _ in range(1000):
        arrays = [rng.uniform(-2, 2, size=s) for s in ((n, d), (d, h), (h,), (d, h), (h,))]
        z1, z2 = _branches(*arrays)
        if np.min(np.abs(z1 - z2)) >= 1e-2:
            return arrays, {}
    raise RuntimeError("no tie-free Maxout sample found")  # pragma: no cover


MAXOUT = OpDef(
    "Maxout", maxout, maxout_vjp, domain=DOMAIN, version=VERSION, num_inputs=5, saves=INPUTS,
    infer=maxout_infer, sample=_sample, onnx=mapping("Maxout", maxout_values),
    doc="max(x @ w1 + b1, x @ w2 + b2) for x (N, D), w (D, H), b (H,); routes the gradient "
        "to the winning branch (ties to the first)",
)
