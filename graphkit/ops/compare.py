"""Comparisons (bool outputs, no gradient) and Where, the gate that selects by them.

Where(cond, x, y) routes the upstream gradient: to x where cond holds, to y elsewhere; cond
gets none. A comparison is piecewise constant, so it has no gradient rule at all (vjp=None).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphkit.opdef import OpDef
from graphkit.ops import prims as P
from graphkit.ops import sampling as S
from graphkit.ops import shapes
from graphkit.ops.onnx_rules import same_name


def _where_sample(rng: np.random.Generator) -> S.Sample:
    """cond, x and y of mutually broadcasting shapes, in random roles."""
    shape = S.random_shape(rng)
    shapes_ = [shape, S.broadcast_partner(rng, shape), S.broadcast_partner(rng, shape)]
    rng.shuffle(shapes_)
    cond = rng.random(size=shapes_[0]) < 0.5
    return [np.asarray(cond), S.values(rng, shapes_[1]), S.values(rng, shapes_[2])], {}


def _compare_sample(rng: np.random.Generator) -> S.Sample:
    """Broadcasting pairs drawn from a few integers, so equal elements are common."""
    (a, b), attributes = S.binary()(rng)
    return [np.round(a), np.round(b)], attributes


def _compare(name: str, doc: str, forward: Any, since: int) -> OpDef:
    return OpDef(name, forward, None, num_inputs=2, saves=frozenset(),
                 infer=shapes.elementwise, sample=_compare_sample, doc=doc,
                 onnx=same_name(name, since))


OPS = [
    # ONNX Equal takes floats from opset 11, Greater/Less take ints from 9
    _compare("Equal", "a == b, bool; no gradient", lambda a, b: np.equal(a, b), since=11),
    _compare("Greater", "a > b, bool; no gradient", lambda a, b: np.greater(a, b), since=9),
    _compare("Less", "a < b, bool; no gradient", lambda a, b: np.less(a, b), since=9),
    OpDef("Where", lambda cond, x, y: P.where(cond, x, y),
          (None,
           lambda g, y, cond, a, b: P.where(cond, g, 0),
           lambda g, y, cond, a, b: P.where(cond, 0, g)),
          num_inputs=3, saves=frozenset({"inputs"}), infer=shapes.elementwise,
          sample=_where_sample, onnx=same_name("Where", since=9),
          doc="x where cond else y: routes the gradient; none for cond"),
]
