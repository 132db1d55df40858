"""Swish(x) = x sigmoid(beta x), and SiLU, the same gate with beta = 1.

Local gradient, with s = sigmoid(beta x): s + beta x s (1 - s), where 1 - s is computed as
sigmoid(-beta x) (no cancellation for large beta x).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from graphkit.builder import GraphBuilder, Value
from graphkit.opdef import OpDef
from pydantic import BaseModel, ConfigDict

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


class SwishAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    beta: float = 1.0


def swish(x: Any, beta: float = 1.0) -> Any:
    return x * sigmoid(beta * x)


def swish_vjp(g: Any, y: Any, x: Any, beta: float = 1.0) -> tuple[Any]:
    z = beta * x
    s = sigmoid(z)
    return (g * (s + z * s * sigmoid(-z)),)


def swish_values(g: GraphBuilder, x: Value, beta: Value) -> Value:
    return x * (beta * x).sigmoid()


def silu_values(g: GraphBuilder, x: Value) -> Value:
    return x * x.sigmoid()


def _swish_sample(rng: np.random.Generator) -> Sample:
    beta = 1.0 if rng.random() < 0.3 else float(rng.choice([0.0, 0.5, 1.702, 2.0, -1.0]))
    return [values(rng)], {"beta": beta}


def _silu_sample(rng: np.random.Generator) -> Sample:
    return [values(rng)], {}


SWISH = OpDef(
    "Swish", swish, swish_vjp, domain=DOMAIN, version=VERSION, attributes=SwishAttributes,
    saves=INPUTS, infer=same_shape, sample=_swish_sample,
    onnx=mapping("Swish", swish_values),
    doc="x sigmoid(beta x); gradient s + beta x s (1 - s), s = sigmoid(beta x)",
)

SILU = OpDef(
    "SiLU", lambda x: swish(x), lambda g, y, x: swish_vjp(g, y, x), domain=DOMAIN,
    version=VERSION, saves=INPUTS, infer=same_shape, sample=_silu_sample,
    onnx=mapping("SiLU", silu_values),
    doc="x sigmoid(x) (Swish with beta = 1); gradient s (1 + x (1 - s)), s = sigmoid(x)",
)
