"""Elementwise gates: each forward rule stands beside its local gradient (a VJP).

Broadcasting is undone by the executor, so every gradient here is a one-liner in the
broadcast shape. Tie policy (Max, Min, Relu): the gradient goes whole to the *first* of the
tied arguments; Relu(x) is Max(0, x), so Relu passes no gradient at x == 0. Abs'(0) = 0 (sign).
Each maps to the ONNX operator of the same name, from the opset where ONNX's semantics became
graphkit's (numpy broadcasting: Add..Div since 7, Max/Min since 8).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from graphkit.onnxmap import OnnxMapping, attribute_as_input
from graphkit.opdef import OpDef
from graphkit.ops import prims as P
from graphkit.ops import sampling as S
from graphkit.ops import shapes
from graphkit.ops.onnx_rules import same_name

IN = frozenset({"inputs"})
OUT = frozenset({"outputs"})
NONE: frozenset[str] = frozenset()
BOTH = frozenset({"inputs", "outputs"})


class PowAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    exponent: float


def _unary(name: str, doc: str, saves: frozenset[str], sample, forward, vjp, since: int = 6
           ) -> OpDef:
    """One input; ONNX's unary ops lost their `consumed_inputs` attribute at opset 6."""
    return OpDef(name, forward, vjp, num_inputs=1, saves=saves, infer=shapes.same,
                 sample=sample, doc=doc, onnx=same_name(name, since))


def _binary(name: str, doc: str, saves: frozenset[str], sample, forward, vjp, since: int = 7
            ) -> OpDef:
    """Two broadcasting inputs; ONNX broadcasts as numpy from opset 7 (Max/Min: 8)."""
    return OpDef(name, forward, vjp, num_inputs=2, saves=saves, infer=shapes.elementwise,
                 sample=sample, doc=doc, onnx=same_name(name, since))


def _tie_free_pair(rng: np.random.Generator) -> S.Sample:
    (a, b), attrs = S.binary()(rng)
    return [a, np.where(np.abs(a - b) < 1e-3, b + 0.01, b)], attrs


def _off_kink(rng: np.random.Generator) -> S.Sample:
    return [S.away_from_ties(S.values(rng, S.random_shape(rng)))], {}


def _pow_sample(rng: np.random.Generator) -> S.Sample:
    exponent = float(rng.choice([2.0, 3.0, -1.0, 0.5, 1.5]))
    return [S.values(rng, S.random_shape(rng), 0.5, 2.0)], {"exponent": exponent}


def _divide(a: Any, b: Any) -> Any:
    """a / b; for two integer arrays ONNX's integer quotient, truncated toward zero (C's)."""
    if np.result_type(a).kind not in "iu" or np.result_type(b).kind not in "iu":
        return a / b
    floor = np.floor_divide(a, b)
    return floor + ((np.remainder(a, b) != 0) & ((a < 0) != (b < 0)))


# ONNX Pow takes the exponent as a scalar input of the base's type (OnnxMapping.constants_like)
_pow_export, _pow_read = attribute_as_input("exponent", "float64", since=7, scalar=True)

# name, doc, what the rule reads, sample inputs; then forward and its local gradient (VJP).
# A tuple of rules gives one per input, so a run computes only the gradients it needs.
OPS = [
    _binary("Add", "a + b: distributes the gradient", NONE, S.binary(),
            lambda a, b: a + b,
            lambda g, y, a, b: (g, g)),
    _binary("Sub", "a - b", NONE, S.binary(),
            lambda a, b: a - b,
            lambda g, y, a, b: (g, -g)),
    _binary("Mul", "a * b: switches the gradient", IN, S.binary(),
            lambda a, b: a * b,
            (lambda g, y, a, b: g * b,
             lambda g, y, a, b: g * a)),
    _binary("Div", "a / b (integers: truncated toward zero, as ONNX)", BOTH,
            S.binary(second_low=0.5),
            _divide,
            (lambda g, y, a, b: g / b,
             lambda g, y, a, b: -g * y / b)),
    _binary("Max", "elementwise max: routes the gradient (ties to the first)", IN, _tie_free_pair,
            lambda a, b: np.maximum(a, b),
            (lambda g, y, a, b: g * P.greater_equal(a, b),
             lambda g, y, a, b: g * P.less(a, b)), since=8),
    _binary("Min", "elementwise min: routes the gradient (ties to the first)", IN, _tie_free_pair,
            lambda a, b: np.minimum(a, b),
            (lambda g, y, a, b: g * P.less_equal(a, b),
             lambda g, y, a, b: g * P.greater(a, b)), since=8),
    _unary("Neg", "-x", NONE, S.unary(),
           lambda x: -x,
           lambda g, y, x: (-g,)),
    _unary("Identity", "x", NONE, S.unary(),
           lambda x: x,
           lambda g, y, x: (g,), since=1),
    _unary("Reciprocal", "1 / x", OUT, S.unary(0.5, 2.0),
           lambda x: 1 / x,
           lambda g, y, x: (-g * y * y,)),
    _unary("Exp", "e^x", OUT, S.unary(),
           lambda x: P.exp(x),
           lambda g, y, x: (g * y,)),
    _unary("Log", "natural logarithm", IN, S.unary(0.5, 3.0),
           lambda x: P.log(x),
           lambda g, y, x: (g / x,)),
    _unary("Sqrt", "square root", OUT, S.unary(0.5, 3.0),
           lambda x: P.sqrt(x),
           lambda g, y, x: (g * 0.5 / y,)),
    _unary("Relu", "max(0, x); gradient 0 at x == 0", IN, _off_kink,
           lambda x: np.maximum(x, 0),
           lambda g, y, x: (g * (x > 0),)),
    _unary("Sigmoid", "1 / (1 + e^-x) as one gate, local gradient s (1 - s)", OUT,
           S.unary(-4.0, 4.0),
           lambda x: P.sigmoid(x),
           lambda g, y, x: (g * y * (1 - y),)),
    _unary("Tanh", "tanh x", OUT, S.unary(),
           lambda x: P.tanh(x),
           lambda g, y, x: (g * (1 - y * y),)),
    OpDef("Pow", lambda x, exponent: x**exponent,
          # x**0 is constant: gradient 0 (not 0 * x**-1, which is nan at x == 0)
          lambda g, y, x, exponent: (g * exponent * x ** (exponent - 1) if exponent else g * 0,),
          attributes=PowAttributes, saves=IN, infer=shapes.same, sample=_pow_sample,
          doc="x ** exponent, the exponent a constant attribute",
          onnx=OnnxMapping("Pow", since=7, export=_pow_export, read=_pow_read, constants_like=0)),
    _unary("Abs", "|x|; gradient sign(x), so Abs'(0) = 0", IN, _off_kink,
           lambda x: np.abs(x),
           lambda g, y, x: (g * P.sign(x),)),
]
