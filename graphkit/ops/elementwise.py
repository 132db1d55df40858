"""Elementwise gates: each forward rule stands beside its local gradient (a VJP).

Broadcasting is undone by the executor, so every gradient here is a one-liner in the
broadcast shape. Tie policy (Max, Min, Relu): the gradient goes whole to the *first* of the
tied arguments; Relu(x) is Max(0, x), so Relu passes no gradient at x == 0.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict

from graphkit.opdef import OpDef
from graphkit.ops import prims as P
from graphkit.ops import sampling as S
from graphkit.ops import shapes

IN = frozenset({"inputs"})
OUT = frozenset({"outputs"})
NONE: frozenset[str] = frozenset()
BOTH = frozenset({"inputs", "outputs"})


class PowAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    exponent: float


def _unary(name: str, forward, vjp, saves, sample, doc: str) -> OpDef:
    return OpDef(
        name, forward, vjp, num_inputs=1, saves=saves, infer=shapes.same, sample=sample, doc=doc
    )


def _binary(name: str, forward, vjp, saves, sample, doc: str) -> OpDef:
    return OpDef(
        name, forward, vjp, num_inputs=2, saves=saves, infer=shapes.elementwise, sample=sample,
        doc=doc,
    )


def _tie_free_pair(rng: np.random.Generator) -> S.Sample:
    (a, b), attrs = S.binary()(rng)
    return [a, np.where(np.abs(a - b) < 1e-3, b + 0.01, b)], attrs


def _pow_sample(rng: np.random.Generator) -> S.Sample:
    exponent = float(rng.choice([2.0, 3.0, -1.0, 0.5, 1.5]))
    return [S.values(rng, S.random_shape(rng), 0.5, 2.0)], {"exponent": exponent}


OPS = [
    _binary("Add", lambda a, b: a + b,
            lambda g, y, a, b: (g, g), NONE, S.binary(), "a + b: distributes the gradient"),
    _binary("Sub", lambda a, b: a - b,
            lambda g, y, a, b: (g, -g), NONE, S.binary(), "a - b"),
    _binary("Mul", lambda a, b: a * b,
            lambda g, y, a, b: (g * b, g * a), IN, S.binary(), "a * b: switches the gradient"),
    _binary("Div", lambda a, b: a / b,
            lambda g, y, a, b: (g / b, -g * y / b), BOTH, S.binary(second_low=0.5), "a / b"),
    _binary("Max", lambda a, b: np.maximum(a, b),
            lambda g, y, a, b: (g * P.greater_equal(a, b), g * P.less(a, b)), IN,
            _tie_free_pair, "elementwise max: routes the gradient (ties to the first)"),
    _binary("Min", lambda a, b: np.minimum(a, b),
            lambda g, y, a, b: (g * P.less_equal(a, b), g * P.greater(a, b)), IN,
            _tie_free_pair, "elementwise min: routes the gradient (ties to the first)"),
    _unary("Neg", lambda x: -x, lambda g, y, x: (-g,), NONE, S.unary(), "-x"),
    _unary("Identity", lambda x: x, lambda g, y, x: (g,), NONE, S.unary(), "x"),
    _unary("Reciprocal", lambda x: 1 / x,
           lambda g, y, x: (-g * y * y,), OUT, S.unary(0.5, 2.0), "1 / x"),
    _unary("Exp", lambda x: P.exp(x), lambda g, y, x: (g * y,), OUT, S.unary(), "e^x"),
    _unary("Log", lambda x: P.log(x), lambda g, y, x: (g / x,), IN, S.unary(0.5, 3.0), "ln x"),
    _unary("Sqrt", lambda x: P.sqrt(x),
           lambda g, y, x: (g * 0.5 / y,), OUT, S.unary(0.5, 3.0), "square root"),
    _unary("Relu", lambda x: np.maximum(x, 0),
           lambda g, y, x: (g * P.greater(x, 0),), IN,
           lambda rng: ([S.away_from_ties(S.values(rng, S.random_shape(rng)))], {}),
           "max(0, x); gradient 0 at x == 0"),
    _unary("Sigmoid", lambda x: 0.5 * (1 + P.tanh(0.5 * x)),
           lambda g, y, x: (g * y * (1 - y),), OUT, S.unary(-4.0, 4.0),
           "1 / (1 + e^-x) (computed stably), one gate with local gradient s (1 - s)"),
    _unary("Tanh", lambda x: P.tanh(x),
           lambda g, y, x: (g * (1 - y * y),), OUT, S.unary(), "tanh x"),
    OpDef("Pow", lambda x, exponent: x**exponent,
          lambda g, y, x, exponent: (g * exponent * x ** (exponent - 1),),
          attributes=PowAttributes, saves=IN, infer=shapes.same, sample=_pow_sample,
          doc="x ** exponent, the exponent a constant attribute"),
]
