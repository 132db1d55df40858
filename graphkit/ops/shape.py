"""Ops that move elements without changing them: their gradients move them back."""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict

from graphkit.opdef import OpDef
from graphkit.ops import prims as P
from graphkit.ops import sampling as S


class ReshapeAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    shape: list[int]
    """The new shape; one entry may be -1 (inferred)."""


class TransposeAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    perm: list[int] | None = None
    """The axis order; None reverses the axes."""


def _reshape_infer(x_shape, shape):
    target, shape = shape, x_shape
    if target.count(-1) > 1:
        raise ValueError(f"Reshape shape {target} has more than one -1")
    if shape is not None and all(isinstance(d, int) for d in shape):
        size = math.prod(shape)  # type: ignore[arg-type]
        known = math.prod(d for d in target if d != -1)
        if (-1 in target and (known == 0 or size % known)) or (-1 not in target and known != size):
            raise ValueError(f"cannot reshape {tuple(shape)} ({size} elements) to {tuple(target)}")
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


def _reshape_sample(rng: np.random.Generator) -> S.Sample:
    shape = S.random_shape(rng)
    size = math.prod(shape)
    target = [size] if rng.random() < 0.5 else [-1, 1]
    return [S.values(rng, shape)], {"shape": target}


def _transpose_sample(rng: np.random.Generator) -> S.Sample:
    shape = S.random_shape(rng)
    perm = [int(i) for i in rng.permutation(len(shape))] if rng.random() < 0.7 else None
    return [S.values(rng, shape)], {"perm": perm}


def _inverse(perm: list[int] | None, ndim: int) -> list[int]:
    order = list(reversed(range(ndim))) if perm is None else perm
    return [int(i) for i in np.argsort(order)]


OPS = [
    OpDef("Reshape", lambda x, shape: P.reshape(x, shape),
          lambda g, y, x, shape: (P.reshape(g, x.shape),),
          attributes=ReshapeAttributes, saves=frozenset(), infer=_reshape_infer,
          sample=_reshape_sample, doc="same elements, new shape"),
    OpDef("Transpose", lambda x, perm: P.transpose(x, perm),
          lambda g, y, x, perm: (P.transpose(g, _inverse(perm, x.ndim)),),
          attributes=TransposeAttributes, saves=frozenset(), infer=_transpose_infer,
          sample=_transpose_sample, doc="permute axes"),
]
