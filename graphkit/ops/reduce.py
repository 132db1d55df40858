"""Reductions: the gradient of a sum is the upstream gradient copied back over the summed axes.

ReduceMax is a max gate over many inputs: it routes the whole gradient of each output to the
*first* maximal element of its slice (row-major over the reduced axes), the same tie policy as
Max. Sum, Mean and ReduceMax map to ONNX ReduceSum, ReduceMean and ReduceMax (opset 11 on;
see `onnx_rules.reduction` for axes and keepdims). ReduceMax keeps ONNX's keepdims=True.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from graphkit.opdef import Meta, OpDef
from graphkit.ops import prims as P
from graphkit.ops import sampling as S
from graphkit.ops import shapes
from graphkit.ops.onnx_rules import reduction


class ReduceAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    axes: list[int] | None = None
    """Axes to reduce (negative counts from the end); None reduces all, [] none (numpy's
    meaning, which ONNX cannot express: such a node is not exported)."""
    keepdims: bool = False


class ReduceMaxAttributes(ReduceAttributes):
    keepdims: bool = True


def _axes(ndim: int, axes: list[int] | None) -> tuple[int, ...]:
    return tuple(range(ndim)) if axes is None else tuple(sorted(a % ndim for a in axes))


def _spread(g: Any, x: Meta, axes: list[int] | None, keepdims: bool) -> Any:
    """Copy the upstream gradient back over the reduced axes of x."""
    if not keepdims:
        g = P.expand_dims(g, _axes(x.ndim, axes))
    return P.broadcast_to(g, x.shape)


def _count(x: Meta, axes: list[int] | None) -> int:
    return int(np.prod([x.shape[a] for a in _axes(x.ndim, axes)], dtype=np.int64))


def _lowest(dtype: np.dtype) -> Any:
    """The max of an empty set, as ONNX: -inf, the smallest integer, False."""
    if dtype.kind == "f":
        return -np.inf
    return False if dtype.kind == "b" else np.iinfo(dtype).min


def _max(x: Any, axes: list[int] | None, keepdims: bool) -> Any:
    return np.maximum.reduce(x, axis=None if axes is None else tuple(axes), keepdims=keepdims,
                             initial=_lowest(x.dtype))


def _max_vjp(g: Any, y: Any, x: Any, axes: list[int] | None, keepdims: bool) -> tuple[Any]:
    return (_spread(g, x, axes, keepdims) * P.first_max_mask(x, axes),)


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


def _max_sample(rng: np.random.Generator) -> S.Sample:
    """Distinct values (at least 0.8 apart), so no slice has a tied maximum."""
    (x,), attributes = _sample(rng)
    distinct = rng.permutation(x.size).reshape(x.shape) + rng.uniform(-0.1, 0.1, size=x.shape)
    return [np.asarray(distinct - x.size / 2)], attributes


OPS = [
    OpDef("Sum", lambda x, axes, keepdims: P.sum(x, axes, keepdims),
          lambda g, y, x, axes, keepdims: (_spread(g, x, axes, keepdims),),
          attributes=ReduceAttributes, saves=frozenset(), infer=_infer, sample=_sample,
          onnx=reduction("ReduceSum", axes_input_since=13, keepdims_default=False),
          doc="sum over axes"),
    OpDef("Mean", lambda x, axes, keepdims: P.sum(x, axes, keepdims) / _count(x, axes),
          lambda g, y, x, axes, keepdims: (_spread(g, x, axes, keepdims) / _count(x, axes),),
          attributes=ReduceAttributes, saves=frozenset(), infer=_infer, sample=_sample,
          onnx=reduction("ReduceMean", axes_input_since=18, keepdims_default=False),
          doc="mean over axes"),
    OpDef("ReduceMax", _max, _max_vjp, attributes=ReduceMaxAttributes, saves=frozenset({"inputs"}),
          infer=_infer, sample=_max_sample,
          onnx=reduction("ReduceMax", axes_input_since=18, keepdims_default=True),
          doc="max over axes (keepdims=True as ONNX); the gradient to the first maximum"),
]
