"""Mish(x) = x tanh(softplus(x)), softplus(x) = log(1 + e^x) computed without overflow.

Local gradient, with t = tanh(softplus(x)): t + x (1 - t^2) sigmoid(x)
(d softplus / dx = sigmoid(x)).
"""

from __future__ import annotations

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
    softplus,
    softplus_values,
    values,
)


def mish(x: Any) -> Any:
    return x * np.tanh(softplus(x))


def mish_vjp(g: Any, y: Any, x: Any) -> tuple[Any]:
    t = np.tanh(softplus(x))
    return (g * (t + x * ((1 - t) * (1 + t)) * sigmoid(x)),)


def mish_values(g: GraphBuilder, x: Value) -> Value:
    return x * softplus_values(g, x).tanh()


def _sample(rng: np.random.Generator) -> Sample:
    return [values(rng)], {}


MISH = OpDef(
    "Mish", mish, mish_vjp, domain=DOMAIN, version=VERSION, saves=INPUTS, infer=same_shape,
    sample=_sample, onnx=mapping("Mish", mish_values),
    doc="x tanh(softplus(x)); gradient t + x (1 - t^2) sigmoid(x), t = tanh(softplus(x))",
)
