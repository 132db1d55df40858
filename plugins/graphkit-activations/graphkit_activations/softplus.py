"""Softplus with PyTorch's beta and threshold: x where beta x > threshold, else
(1/beta) log(1 + e^(beta x)) (computed without overflow).

Local gradient: 1 where beta x > threshold, else sigmoid(beta x). beta may be any nonzero
number (negative beta as in PyTorch); beta = 0 is refused. Note the switch to x is a tiny
jump (log(1 + e^-threshold) / beta, 2e-9 at the defaults) exactly as in PyTorch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from graphkit.builder import GraphBuilder, Value
from graphkit.opdef import OpDef
from pydantic import BaseModel, ConfigDict, field_validator

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


class SoftplusAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    beta: float = 1.0
    threshold: float = 20.0

    @field_validator("beta")
    @classmethod
    def _nonzero(cls, beta: float) -> float:
        if beta == 0:
            raise ValueError("beta must not be 0 (softplus divides by it)")
        return beta


def softplus_op(x: Any, beta: float = 1.0, threshold: float = 20.0) -> Any:
    z = beta * x
    return np.where(z > threshold, x, softplus(z) / beta)


def softplus_vjp(g: Any, y: Any, x: Any, beta: float = 1.0, threshold: float = 20.0
                 ) -> tuple[Any]:
    z = beta * x
    return (np.where(z > threshold, g, g * sigmoid(z)),)


def softplus_op_values(g: GraphBuilder, x: Value, beta: Value, threshold: Value) -> Value:
    z = beta * x
    return g.op("Where", g.op("Greater", z, threshold), x, softplus_values(g, z) / beta)


def _sample(rng: np.random.Generator) -> Sample:
    """Defaults or small thresholds (so both branches are hit), never near the switch."""
    beta = 1.0 if rng.random() < 0.4 else float(rng.choice([0.5, 2.0, 3.0, -1.0]))
    threshold = 20.0 if rng.random() < 0.4 else float(rng.choice([0.0, 1.0, 3.0]))
    x = values(rng)
    switch = threshold / beta
    x = np.where(np.abs(x - switch) < 1e-2, switch + 0.1, x)
    return [x], {"beta": beta, "threshold": threshold}


SOFTPLUS = OpDef(
    "Softplus", softplus_op, softplus_vjp, domain=DOMAIN, version=VERSION,
    attributes=SoftplusAttributes, saves=INPUTS, infer=same_shape, sample=_sample,
    onnx=mapping("Softplus", softplus_op_values),
    doc="(1/beta) log(1 + e^(beta x)), x where beta x > threshold (PyTorch's); gradient "
        "sigmoid(beta x), 1 above the threshold",
)
