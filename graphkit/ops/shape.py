"""Ops that move elements without changing them: their gradients move them back.

All follow ONNX (Reshape's 0 copies the input's dim unless allowzero; axes may be negative).
Their ONNX mappings start where negative axes became legal (opset 11; Reshape: 5, when the
shape became an input), and axes/shape move from attributes to int64 inputs where ONNX did.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from graphkit.onnxmap import Exported, OnnxMapping, attribute_as_input
from graphkit.opdef import OpDef, Shape
from graphkit.ops import prims as P
from graphkit.ops import sampling as S
from graphkit.ops.onnx_rules import Constants, int_list, no_extra_inputs, plain_export, same_name


class ReshapeAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    shape: list[int]
    """The new shape; one entry may be -1 (inferred); 0 copies the input's dim (ONNX)."""
    allowzero: bool = False
    """As ONNX: a 0 in `shape` is a zero-size dim rather than a copy."""


class TransposeAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    perm: list[int] | None = None
    """The axis order; None reverses the axes."""


class AxisAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    axis: int


class FlattenAttributes(AxisAttributes):
    axis: int = 1
    """Dims before `axis` become the rows, the rest the columns (ONNX; -r <= axis <= r)."""


class UnsqueezeAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    axes: list[int] = Field(min_length=1)
    """Where the new size-1 dims go, counted in the output's rank (ONNX)."""


class SqueezeAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    axes: list[int] | None = Field(default=None, min_length=1)
    """Size-1 dims to remove; None removes every size-1 dim (ONNX)."""


def _target(x_shape: Sequence[Any], shape: list[int], allowzero: bool) -> list[Any]:
    """ONNX's shape rule before the -1 is inferred: without allowzero a 0 copies x's dim."""
    if problem := _target_problems(shape, allowzero):
        raise ValueError(problem)
    if allowzero:
        return list(shape)
    result = list(shape)
    for i, d in enumerate(shape):
        if d == 0:
            if i >= len(x_shape):
                raise ValueError(f"Reshape shape {shape} copies dim {i} of a rank-"
                                 f"{len(x_shape)} input")
            result[i] = x_shape[i]
    return result


def _target_problems(shape: list[int], allowzero: bool) -> str:
    if shape.count(-1) > 1:
        return f"Reshape shape {shape} has more than one -1"
    if any(d < -1 for d in shape):
        return f"Reshape shape {shape} has a negative size other than -1"
    if allowzero and 0 in shape and -1 in shape:
        return f"Reshape shape {shape} has both 0 and -1 with allowzero"
    return ""


def _reshape(x: Any, shape: list[int], allowzero: bool) -> Any:
    target = _target(x.shape, shape, allowzero)
    if -1 in target:  # numpy cannot infer next to a zero-size dim; ONNX refuses it too
        known = math.prod(d for d in target if d != -1)
        if known == 0 or x.size % known:
            raise ValueError(f"cannot reshape {x.shape} to {tuple(shape)}")
        target = [x.size // known if d == -1 else d for d in target]
    return P.reshape(x, target)


def _reshape_infer(x_shape, shape, allowzero=False):
    if problem := _target_problems(shape, allowzero):
        raise ValueError(problem)
    if x_shape is None:  # unknown rank: a copied dim is unknown too
        target = [None if d == 0 and not allowzero else d for d in shape]
    else:
        target = _target(x_shape, shape, allowzero)
    known_input = x_shape is not None and all(isinstance(d, int) for d in x_shape)
    if known_input and all(isinstance(d, int) for d in target):
        size = math.prod(x_shape)  # type: ignore[arg-type]
        known = math.prod(d for d in target if d != -1)
        if (-1 in target and (known == 0 or size % known)) or (-1 not in target and known != size):
            raise ValueError(f"cannot reshape {tuple(x_shape)} ({size} elements) to {tuple(shape)}")
        if -1 in target:
            return [tuple(size // known if d == -1 else d for d in target)]
    return [tuple(None if d == -1 else d for d in target)]


def _transpose_infer(shape, perm=None):
    if shape is None:
        return [None]
    order = list(reversed(range(len(shape)))) if perm is None else perm
    if sorted(order) != list(range(len(shape))):
        raise ValueError(f"perm {order} is not a permutation of the {len(shape)} axes")
    return [tuple(shape[i] for i in order)]


def _flat_axis(rank: int, axis: int) -> int:
    if not -rank <= axis <= rank:
        raise ValueError(f"Flatten axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _flatten(x: Any, axis: int) -> Any:
    at = _flat_axis(x.ndim, axis)
    return P.reshape(x, (math.prod(x.shape[:at]), math.prod(x.shape[at:])))


def _product(dims: Sequence[Any]) -> Any:
    return math.prod(dims) if all(isinstance(d, int) for d in dims) else None


def _flatten_infer(shape: Shape, axis: int = 1) -> list[Shape]:
    if shape is None:
        return [(None, None)]
    at = _flat_axis(len(shape), axis)
    return [(_product(shape[:at]), _product(shape[at:]))]


def _concat(*xs: Any, axis: int) -> Any:
    return np.concatenate(xs, axis=axis)


def _concat_vjp(g: Any, y: Any, *xs: Any, axis: int) -> tuple[Any, ...]:
    return tuple(P.split(g, [x.shape[axis] for x in xs], axis))


def _concat_infer(*shapes: Shape, axis: int) -> list[Shape]:
    known = [s for s in shapes if s is not None]
    if not known:
        return [None]
    rank = len(known[0])
    if any(len(s) != rank for s in known):
        raise ValueError(f"Concat inputs have ranks {[len(s) for s in known]}")
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} is out of range for rank {rank}")
    at = axis % rank
    result: list[Any] = []
    for i in range(rank):
        dims = [s[i] for s in known]
        if i == at:
            complete = len(known) == len(shapes)
            result.append(_sum(dims) if complete else None)
            continue
        sizes = {d for d in dims if isinstance(d, int)}
        if len(sizes) > 1:
            raise ValueError(f"Concat inputs differ in dim {i}: {sorted(sizes)}")
        result.append(sizes.pop() if sizes else (dims[0] if len(set(dims)) == 1 else None))
    return [tuple(result)]


def _sum(dims: Sequence[Any]) -> Any:
    return sum(dims) if all(isinstance(d, int) for d in dims) else None


def _new_axes(rank: int, axes: Sequence[int]) -> list[int]:
    out_rank = rank + len(axes)
    if any(not -out_rank <= a < out_rank for a in axes):
        raise ValueError(f"axes {list(axes)} are out of range for an output of rank {out_rank}")
    normal = sorted(a % out_rank for a in axes)
    if len(set(normal)) != len(normal):
        raise ValueError(f"axes {list(axes)} repeat an axis")
    return normal


def _unsqueeze_infer(shape: Shape, axes: list[int]) -> list[Shape]:
    if shape is None:
        return [None]
    new = _new_axes(len(shape), axes)
    dims = iter(shape)
    return [tuple(1 if i in new else next(dims) for i in range(len(shape) + len(axes)))]


def _squeeze(x: Any, axes: list[int] | None) -> Any:
    return np.squeeze(x, axis=None if axes is None else tuple(axes))


def _squeeze_infer(shape: Shape, axes: list[int] | None = None) -> list[Shape]:
    if shape is None:
        return [None]
    rank = len(shape)
    if axes is None:
        if any(not isinstance(d, int) for d in shape):
            return [None]  # whether a symbolic dim is 1 decides the rank
        return [tuple(d for d in shape if d != 1)]
    if any(not -rank <= a < rank for a in axes):
        raise ValueError(f"axes {axes} are out of range for rank {rank}")
    chosen = {a % rank for a in axes}
    for a in sorted(chosen):
        if isinstance(shape[a], int) and shape[a] != 1:
            raise ValueError(f"cannot squeeze dim {a} of size {shape[a]}")
    return [tuple(d for i, d in enumerate(shape) if i not in chosen)]


def _reshape_sample(rng: np.random.Generator) -> S.Sample:
    shape = S.random_shape(rng)
    size = math.prod(shape)
    target = [size] if rng.random() < 0.5 else [-1, 1]
    if shape and rng.random() < 0.4:  # ONNX's 0: copy the input's leading dim
        target = [0, -1]
    return [S.values(rng, shape)], {"shape": target, "allowzero": bool(rng.random() < 0.3)
                                    and 0 not in target}


def _transpose_sample(rng: np.random.Generator) -> S.Sample:
    shape = S.random_shape(rng)
    perm = [int(i) for i in rng.permutation(len(shape))] if rng.random() < 0.7 else None
    return [S.values(rng, shape)], {"perm": perm}


def _flatten_sample(rng: np.random.Generator) -> S.Sample:
    shape = S.random_shape(rng)
    axis = int(rng.integers(-len(shape), len(shape) + 1))
    return [S.values(rng, shape)], {"axis": axis}


def _concat_sample(rng: np.random.Generator) -> S.Sample:
    shape = S.random_shape(rng)
    shape = shape or (int(rng.integers(1, 4)),)
    axis = int(rng.integers(-len(shape), len(shape)))
    count = int(rng.integers(1, 4))
    pieces = []
    for _ in range(count):
        piece = list(shape)
        piece[axis] = int(rng.integers(1, 4))
        pieces.append(S.values(rng, tuple(piece)))
    return pieces, {"axis": axis}


def _unsqueeze_sample(rng: np.random.Generator) -> S.Sample:
    shape = S.random_shape(rng)
    count = int(rng.integers(1, 3))
    out_rank = len(shape) + count
    axes = [int(a) - (out_rank if rng.random() < 0.3 else 0)
            for a in rng.choice(out_rank, size=count, replace=False)]
    return [S.values(rng, shape)], {"axes": axes}


def _squeeze_sample(rng: np.random.Generator) -> S.Sample:
    shape = list(S.random_shape(rng))
    for _ in range(int(rng.integers(1, 3))):
        shape.insert(int(rng.integers(0, len(shape) + 1)), 1)
    ones = [i for i, d in enumerate(shape) if d == 1]
    axes = None
    if rng.random() < 0.7:
        chosen = rng.choice(ones, size=int(rng.integers(1, len(ones) + 1)), replace=False)
        axes = [int(a) - (len(shape) if rng.random() < 0.3 else 0) for a in chosen]
    return [S.values(rng, tuple(shape))], {"axes": axes}


def _inverse(perm: list[int] | None, ndim: int) -> list[int]:
    order = list(reversed(range(ndim))) if perm is None else perm
    return [int(i) for i in np.argsort(order)]


def _back(g: Any, y: Any, x: Any, **_attributes: Any) -> tuple[Any]:
    """Same elements, x's shape: the gradient of every reshaping op."""
    return (P.reshape(g, x.shape),)


# Reshape's shape is an int64 input from opset 5; allowzero an attribute from 14 (0 before).
def _reshape_export(attributes: Mapping[str, Any], opset: int) -> Exported:
    shape, allowzero = list(attributes["shape"]), bool(attributes.get("allowzero", False))
    onnx_attributes: dict[str, Any] = {}
    if opset >= 14:
        onnx_attributes["allowzero"] = int(allowzero)
    elif allowzero and 0 in shape:
        raise ValueError("Reshape with allowzero and a 0 in shape needs ONNX opset 14")
    return onnx_attributes, [np.asarray(shape, np.int64)]


def _reshape_read(attributes: Mapping[str, Any], constants: Constants, opset: int
                  ) -> dict[str, Any]:
    if not constants or constants[0] is None:
        raise ValueError("ONNX Reshape's shape must be a constant for graphkit")
    no_extra_inputs("Reshape", constants[1:])
    result = {k: v for k, v in attributes.items() if k != "allowzero"}
    return {**result, "shape": int_list(constants[0]),
            "allowzero": bool(attributes.get("allowzero", 0))}


def _transpose_export(attributes: Mapping[str, Any], opset: int) -> Exported:
    """perm=[] (a 0-d input) is the default order; ONNX cannot type an empty list attribute."""
    return plain_export({k: v for k, v in attributes.items() if not (k == "perm" and v == [])},
                        opset)


def _axes_mapping(op_type: str) -> OnnxMapping:
    """axes: an attribute for opsets 11-12 (negative axes legal from 11), an input from 13."""
    export, read = attribute_as_input("axes", "int64", since=13)
    return OnnxMapping(op_type, since=11, export=export, read=read)


OPS = [
    OpDef("Reshape", _reshape, _back,
          attributes=ReshapeAttributes, saves=frozenset(), infer=_reshape_infer,
          sample=_reshape_sample, doc="same elements, new shape (ONNX: 0 copies a dim)",
          onnx=OnnxMapping("Reshape", since=5, export=_reshape_export, read=_reshape_read,
                           bool_attributes=frozenset({"allowzero"}))),
    OpDef("Transpose", lambda x, perm: P.transpose(x, perm),
          lambda g, y, x, perm: (P.transpose(g, _inverse(perm, x.ndim)),),
          attributes=TransposeAttributes, saves=frozenset(), infer=_transpose_infer,
          sample=_transpose_sample, doc="permute axes",
          onnx=OnnxMapping("Transpose", export=_transpose_export,
                           read=same_name("Transpose").read)),
    OpDef("Flatten", _flatten, _back, attributes=FlattenAttributes, saves=frozenset(),
          infer=_flatten_infer, sample=_flatten_sample, onnx=same_name("Flatten", since=11),
          doc="to 2-D: dims before axis become rows, the rest columns"),
    OpDef("Concat", _concat, _concat_vjp, num_inputs=1, variadic=True,
          attributes=AxisAttributes, saves=frozenset(), infer=_concat_infer,
          sample=_concat_sample, onnx=same_name("Concat", since=11),
          doc="join inputs along axis; the gradient is split back"),
    OpDef("Unsqueeze", lambda x, axes: P.expand_dims(x, axes), _back,
          attributes=UnsqueezeAttributes, saves=frozenset(), infer=_unsqueeze_infer,
          sample=_unsqueeze_sample, onnx=_axes_mapping("Unsqueeze"),
          doc="insert size-1 dims at axes (of the output)"),
    OpDef("Squeeze", _squeeze, _back, attributes=SqueezeAttributes, saves=frozenset(),
          infer=_squeeze_infer, sample=_squeeze_sample, onnx=_axes_mapping("Squeeze"),
          doc="remove size-1 dims (all of them when axes is None)"),
]
