"""Matrix product. The gradient of W x is g x^T for W and W^T g for x (the lecture's ||Wx||^2)."""

from __future__ import annotations

from typing import Any

import numpy as np

from graphkit.opdef import OpDef
from graphkit.ops import prims as P
from graphkit.ops import sampling as S
from graphkit.ops import shapes


def _lift(g: Any, a: Any, b: Any) -> tuple[Any, Any, Any]:
    """Treat 1-D operands as matrices (a row, b a column), as numpy's matmul does."""
    if b.ndim == 1:  # first: for a 1-D @ 1-D product g is 0-D, and (-2,) needs g.ndim >= 1
        g = P.expand_dims(g, (-1,))
    if a.ndim == 1:
        g = P.expand_dims(g, (-2,))
    a2 = P.reshape(a, (1, a.shape[0])) if a.ndim == 1 else a
    b2 = P.reshape(b, (b.shape[0], 1)) if b.ndim == 1 else b
    return g, a2, b2


def _grad_a(g: Any, y: Any, a: Any, b: Any) -> Any:
    """dL/da = g b^T (summed over broadcast batch axes by the executor)."""
    g2, _a2, b2 = _lift(g, a, b)
    ga = P.matmul(g2, P.swap_last(b2))
    return P.reshape(ga, ga.shape[:-2] + ga.shape[-1:]) if a.ndim == 1 else ga


def _grad_b(g: Any, y: Any, a: Any, b: Any) -> Any:
    """dL/db = a^T g."""
    g2, a2, _b2 = _lift(g, a, b)
    gb = P.matmul(P.swap_last(a2), g2)
    return P.reshape(gb, gb.shape[:-1]) if b.ndim == 1 else gb


def _sample(rng: np.random.Generator) -> S.Sample:
    n, k, m = (int(d) for d in rng.integers(1, 5, size=3))
    kind = rng.integers(0, 4)
    batch = S.random_shape(rng, max_rank=1)
    a_shape = {0: (n, k), 1: (k,), 2: (*batch, n, k), 3: (n, k)}[int(kind)]
    b_shape = {0: (k, m), 1: (k, m), 2: (k, m), 3: (k,)}[int(kind)]
    return [S.values(rng, a_shape), S.values(rng, b_shape)], {}


OPS = [
    OpDef("MatMul", lambda a, b: P.matmul(a, b), (_grad_a, _grad_b), num_inputs=2,
          saves=frozenset({"inputs"}), infer=lambda a, b: [shapes.matmul(a, b)],
          sample=_sample, doc="matrix product with numpy's broadcasting over batch dimensions"),
]
