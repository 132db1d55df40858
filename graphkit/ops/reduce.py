"""Reductions: the gradient of a sum is the upstream gradient copied back over the summed axes."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from graphkit.opdef import Meta, OpDef
from graphkit.ops import prims as P
from graphkit.ops import sampling as S
from graphkit.ops import shapes


class ReduceAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    axes: list[int] | None = None
    """Axes to reduce (negative counts from the end); None reduces all."""
    keepdims: bool = False


def _axes(ndim: int, axes: list[int] | None) -> tuple[int, ...]:
    return tuple(range(ndim)) if axes is None else tuple(sorted(a % ndim for a in axes))


def _spread(g: Any, x: Meta, axes: list[int] | None, keepdims: bool) -> Any:
    """Copy the upstream gradient back over the reduced axes of x."""
    if not keepdims:
        g = P.expand_dims(g, _axes(x.ndim, axes))
    return P.broadcast_to(g, x.shape)


def _count(x: Meta, axes: list[int] | None) -> int:
    return int(np.prod([x.shape[a] for a in _axes(x.ndim, axes)], dtype=np.int64))


def _infer(shape, axes=None, keepdims=False):
    return [shapes.reduce(shape, axes, keepdims)]


def _sample(rng: np.random.Generator) -> S.Sample:
    shape = S.random_shape(rng)
    ndim = len(shape)
    axes = None
    if ndim and rng.random() < 0.7:
        count = int(rng.integers(1, ndim + 1))
        axes = sorted(int(a) - (ndim if rng.random() < 0.3 else 0)
                      for a in rng.choice(ndim, size=count, replace=False))
    return [S.values(rng, shape)], {"axes": axes, "keepdims": bool(rng.random() < 0.5)}


OPS = [
    OpDef("Sum", lambda x, axes, keepdims: P.sum(x, axes, keepdims),
          lambda g, y, x, axes, keepdims: (_spread(g, x, axes, keepdims),),
          attributes=ReduceAttributes, saves=frozenset(), infer=_infer, sample=_sample,
          doc="sum over axes"),
    OpDef("Mean", lambda x, axes, keepdims: P.sum(x, axes, keepdims) / _count(x, axes),
          lambda g, y, x, axes, keepdims: (_spread(g, x, axes, keepdims) / _count(x, axes),),
          attributes=ReduceAttributes, saves=frozenset(), infer=_infer, sample=_sample,
          doc="mean over axes"),
]
