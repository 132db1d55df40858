"""Matrix products. The gradient of W x is g x^T for W and W^T g for x (the lecture's ||Wx||^2).

Gemm is ONNX's fully connected layer, alpha op(A) op(B) + beta C: a variadic op of 2 or 3
inputs, because ONNX's C is optional (from opset 11); a third input is C, more are refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from graphkit.opdef import OpDef, Shape
from graphkit.ops import prims as P
from graphkit.ops import sampling as S
from graphkit.ops import shapes
from graphkit.ops.onnx_rules import same_name


class GemmAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    alpha: float = 1.0
    beta: float = 1.0
    transA: bool = False  # ONNX's names
    transB: bool = False


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
    if b.ndim == 2 and a.ndim == 2:
        return P.matmul(g, P.swap_last(b))
    g2, _a2, b2 = _lift(g, a, b)
    ga = P.matmul(g2, P.swap_last(b2))
    return P.reshape(ga, ga.shape[:-2] + ga.shape[-1:]) if a.ndim == 1 else ga


def _grad_b(g: Any, y: Any, a: Any, b: Any) -> Any:
    """dL/db = a^T g."""
    if a.ndim == 2 and b.ndim == 2:
        return P.matmul(P.swap_last(a), g)
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


def _op(m: Any, transposed: bool) -> Any:
    return P.swap_last(m) if transposed else m


def _gemm(a: Any, b: Any, *c: Any, alpha: float, beta: float, transA: bool, transB: bool
          ) -> Any:
    if len(c) > 1 or a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"Gemm takes two matrices and an optional C, got {2 + len(c)} inputs "
                         f"of ranks {[np.ndim(v) for v in (a, b, *c)]}")
    product = alpha * P.matmul(_op(a, transA), _op(b, transB))
    if not c:
        return product
    y = product + beta * c[0]
    if y.shape != product.shape:
        raise ValueError(f"C of shape {c[0].shape} does not broadcast to {product.shape}")
    return y


def _gemm_vjp(g: Any, y: Any, a: Any, b: Any, *c: Any, alpha: float, beta: float,
              transA: bool, transB: bool) -> tuple[Any, ...]:
    """d op(A) = alpha g op(B)^T, d op(B) = alpha op(A)^T g, dC = beta g (summed to C's shape)."""
    da = alpha * P.matmul(g, P.swap_last(_op(b, transB)))
    db = alpha * P.matmul(P.swap_last(_op(a, transA)), g)
    return (_op(da, transA), _op(db, transB), *(beta * g for _ in c))


def _gemm_infer(a: Shape, b: Shape, *c: Shape, alpha: float = 1.0, beta: float = 1.0,
                transA: bool = False, transB: bool = False) -> list[Shape]:
    if len(c) > 1:
        raise ValueError(f"Gemm takes 2 or 3 inputs (A, B, optional C), got {2 + len(c)}")
    for name, shape in (("A", a), ("B", b)):
        if shape is not None and len(shape) != 2:
            raise ValueError(f"Gemm's {name} must be a matrix, got rank {len(shape)}")
    m, k_a = (None, None) if a is None else (a[::-1] if transA else a)
    k_b, n = (None, None) if b is None else (b[::-1] if transB else b)
    if isinstance(k_a, int) and isinstance(k_b, int) and k_a != k_b:
        raise ValueError(f"inner dimensions {k_a} and {k_b} differ")
    out = [m, n]
    if c and c[0] is not None:
        if len(c[0]) > 2:
            raise ValueError(f"C must have rank 2 or less, got {len(c[0])}")
        for axis, dim in zip(range(2 - len(c[0]), 2), c[0], strict=True):
            if not isinstance(dim, int) or dim == 1:
                continue
            if isinstance(out[axis], int) and out[axis] != dim:
                raise ValueError(f"C of shape {shapes.show(c[0])} does not broadcast to "
                                 f"{shapes.show((m, n))}")
            out[axis] = dim  # C only broadcasts to the product: a size here is the product's
    return [tuple(out)]


def _gemm_sample(rng: np.random.Generator) -> S.Sample:
    m, k, n = (int(d) for d in rng.integers(1, 5, size=3))
    trans_a, trans_b = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
    a = S.values(rng, (k, m) if trans_a else (m, k))
    b = S.values(rng, (n, k) if trans_b else (k, n))
    arrays = [a, b]
    if rng.random() < 0.8:
        choices = [(m, n), (n,), (1, n), (m, 1), (1, 1), ()]
        arrays.append(S.values(rng, choices[int(rng.integers(len(choices)))]))
    alpha, beta = (float(v) for v in rng.choice([1.0, 0.5, -2.0, 0.0], size=2))
    return arrays, {"alpha": alpha, "beta": beta, "transA": trans_a, "transB": trans_b}


OPS = [
    OpDef("MatMul", P.matmul, (_grad_a, _grad_b), num_inputs=2,
          saves=frozenset({"inputs"}), infer=lambda a, b: [shapes.matmul(a, b)],
          sample=_sample, onnx=same_name("MatMul", since=1),
          doc="matrix product with numpy's broadcasting over batch dimensions"),
    OpDef("Gemm", _gemm, _gemm_vjp, num_inputs=2, variadic=True, attributes=GemmAttributes,
          saves=frozenset({"inputs"}), infer=_gemm_infer, sample=_gemm_sample,
          onnx=same_name("Gemm", since=11, bools=("transA", "transB")),
          doc="alpha op(A) op(B) + beta C, C optional (ONNX Gemm; 2 or 3 inputs)"),
]
