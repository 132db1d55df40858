"""GELU in its tanh form: 0.5 x (1 + tanh(u)), u = c (x + a x^3), c = sqrt(2/pi), a = 0.044715.

Computed as x sigmoid(2u), the same function (1 + tanh(u) = 2 sigmoid(2u)) without the
cancellation of 1 + tanh(u) for negative x (in float32 that loses every digit below x = -4).
Local gradient, with s = sigmoid(2u):
    s + 2 x s (1 - s) c (1 + 3 a x^2)      (= 0.5 (1 + t) + 0.5 x (1 - t^2) u', t = tanh u).
For |x| >= 100, s is exactly 0 or 1 in float32 and float64, so x is clipped there inside the
cubic: the same values, and no overflow of x^3 for huge inputs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from graphkit.builder import GraphBuilder, Value
from graphkit.opdef import OpDef

from graphkit_activations._common import (
    DOMAIN,
    INPUTS,
    VERSION,
    Sample,
    mapping,
    same_shape,
    sigmoid,
    values,
)

C = math.sqrt(2 / math.pi)
A = 0.044715
SATURATED = 100.0
"""|x| from which sigmoid(2 c (x + a x^3)) is exactly 0 or 1 in float32 and float64."""


def _inner(x: Any) -> tuple[Any, Any]:
    """x clipped to +-SATURATED, and 2u = 2 c (x + a x^3) at it."""
    xc = np.clip(x, -SATURATED, SATURATED)
    return xc, (2 * C) * (xc + A * (xc * xc * xc))


def gelu(x: Any) -> Any:
    _, two_u = _inner(x)
    return x * sigmoid(two_u)


def gelu_vjp(g: Any, y: Any, x: Any) -> tuple[Any]:
    xc, two_u = _inner(x)
    s = sigmoid(two_u)
    return (g * (s + (2 * C) * xc * (s * sigmoid(-two_u)) * (1 + (3 * A) * (xc * xc))),)


def gelu_values(g: GraphBuilder, x: Value) -> Value:
    return x * ((2 * C) * (x + A * (x * x * x))).sigmoid()


def _sample(rng: np.random.Generator) -> Sample:
    return [values(rng)], {}


GELU = OpDef(
    "GELU", gelu, gelu_vjp, domain=DOMAIN, version=VERSION, saves=INPUTS, infer=same_shape,
    sample=_sample, onnx=mapping("GELU", gelu_values),
    doc="0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), the tanh form of GELU, as x "
        "sigmoid(2u)",
)
