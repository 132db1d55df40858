"""Matrix product. The gradient of W x is g x^T for W and W^T g for x (the lecture's ||Wx||^2)."""

from __future__ import annotations

from typing import Any

import numpy as np

from graphkit.opdef import OpDef
from graphkit.ops import prims as P
from graphkit.ops import sampling as S
from graphkit.ops import shapes


def _matmul_vjp(g: Any, y: Any, a: Any, b: Any) -> tuple[Any, Any]:
    """numpy matmul's VJP; 1-D operands are lifted to matrices and the lift undone after."""
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    g2 = g
    if a.ndim == 1:
        g2 = P.expand_dims(g2, (-2,))
    if b.ndim == 1:
        g2 = P.expand_dims(g2, (-1,))
    ga = P.matmul(g2, P.swap_last(b2))
    gb = P.matmul(P.swap_last(a2), g2)
    if a.ndim == 1:
        ga = P.reshape(ga, ga.shape[:-2] + ga.shape[-1:])
    if b.ndim == 1:
        gb = P.reshape(gb, gb.shape[:-1])
    return ga, gb


def _sample(rng: np.random.Generator) -> S.Sample:
    n, k, m = (int(d) for d in rng.integers(1, 5, size=3))
    kind = rng.integers(0, 4)
    batch = S.random_shape(rng, max_rank=1)
    a_shape = {0: (n, k), 1: (k,), 2: (*batch, n, k), 3: (n, k)}[int(kind)]
    b_shape = {0: (k, m), 1: (k, m), 2: (k, m), 3: (k,)}[int(kind)]
    return [S.values(rng, a_shape), S.values(rng, b_shape)], {}


OPS = [
    OpDef("MatMul", lambda a, b: P.matmul(a, b), _matmul_vjp, num_inputs=2,
          saves=frozenset({"inputs"}), infer=lambda a, b: [shapes.matmul(a, b)],
          sample=_sample, doc="matrix product with numpy's broadcasting over batch dimensions"),
]
