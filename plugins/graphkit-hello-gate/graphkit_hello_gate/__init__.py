"""graphkit-hello-gate: the Swish gate, x * sigmoid(beta x), as a graphkit plugin."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from graphkit import GraphBuilder, Meta, OpDef, Value, hookimpl
from graphkit.onnxmap import OnnxMapping
from pydantic import BaseModel, ConfigDict

DOMAIN = "hello"


class SwishAttributes(BaseModel):
    """Swish's attributes, checked when a graph is validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    beta: float = 1.0


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # 1 / (1 + exp(-z)), without overflow


def forward(x: np.ndarray, beta: float) -> np.ndarray:
    return x * sigmoid(beta * x)


def vjp(g: np.ndarray, y: Meta, x: np.ndarray, beta: float) -> tuple[np.ndarray]:
    """The upstream gradient times the local one, d/dx x s(bx) = s + b x s (1 - s)."""
    s = sigmoid(beta * x)
    return (g * (s + beta * x * s * (1.0 - s)),)


def sample(rng: np.random.Generator) -> tuple[list[np.ndarray], dict[str, float]]:
    """Inputs and attributes at which the checks compare vjp with finite differences."""
    return [rng.standard_normal((3, 4))], {"beta": float(rng.uniform(0.5, 2.0))}


def decomposition(g: GraphBuilder, x: Value, beta: Value) -> Value:
    """Swish in built-in ops: how an exported ONNX model computes it."""
    return x * (beta * x).sigmoid()


swish = OpDef(
    name="Swish",
    domain=DOMAIN,
    num_inputs=1,
    attributes=SwishAttributes,
    forward=forward,
    vjp=vjp,
    saves=frozenset({"inputs"}),  # vjp reads x; y reaches it as a Meta (shape, dtype)
    sample=sample,
    onnx=OnnxMapping("Swish", domain=DOMAIN, decomposition=decomposition),
    doc="x * sigmoid(beta x)",
)


@hookimpl
def graphkit_register_ops(register: Callable[[OpDef], None]) -> None:
    """graphkit calls this once, when it loads the plugin."""
    register(swish)
