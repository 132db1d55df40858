"""The benchmark workloads, each as a graphkit graph and as the reference it is measured against."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import graphkit as gk


def two_layer_net(
    batch: int = 256, dims: tuple[int, int, int] = (3072, 100, 10), dtype: str = "float32",
    seed: int = 0,
) -> tuple[gk.Graph, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The lecture's 2-layer net, ReLU and softmax cross-entropy: graph, inputs, parameters."""
    d, h, c = dims
    rng = np.random.default_rng(seed)
    params = {
        "W1": (rng.standard_normal((d, h)) * 0.01).astype(dtype),
        "b1": np.zeros(h, dtype),
        "W2": (rng.standard_normal((h, c)) * 0.01).astype(dtype),
        "b2": np.zeros(c, dtype),
    }
    g = gk.GraphBuilder("two_layer_net", dtype=dtype)
    X = g.input("X", shape=["N", d])
    y = g.input("y", shape=["N"], dtype="int64")
    W1, b1, W2, b2 = (g.parameter(name, value) for name, value in params.items())
    hidden = (X @ W1 + b1).relu()
    g.output(g.softmax_cross_entropy(hidden @ W2 + b2, y), "loss")
    inputs = {"X": rng.standard_normal((batch, d)).astype(dtype), "y": rng.integers(0, c, batch)}
    return g.build(), inputs, params


def numpy_two_layer_step(
    X: np.ndarray, y: np.ndarray, W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray
) -> tuple[Any, dict[str, np.ndarray]]:
    """The same step written by hand in numpy, as the lecture's 20-line example would."""
    n = X.shape[0]
    z1 = X @ W1 + b1
    h = np.maximum(z1, 0)
    scores = h @ W2 + b2
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    loss = -log_probs[rows, y].mean()
    dscores = np.exp(log_probs)
    dscores[rows, y] -= 1
    dscores /= n
    dW2 = h.T @ dscores
    db2 = dscores.sum(axis=0)
    dz1 = (dscores @ W2.T) * (z1 > 0)
    dW1 = X.T @ dz1
    db1 = dz1.sum(axis=0)
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def numpy_two_layer_forward(
    X: np.ndarray, y: np.ndarray, W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray
) -> Any:
    """The forward pass alone, by hand: the mean softmax cross-entropy loss."""
    scores = np.maximum(X @ W1 + b1, 0) @ W2 + b2
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(X.shape[0]), y].mean()


def graphkit_two_layer_step(
    graph: gk.Graph, inputs: dict[str, np.ndarray]
) -> tuple[Any, Callable[[], Any]]:
    """The plan of the 2-layer net and one training step on it (forward and gradients)."""
    plan = gk.plan_for(graph)
    wrt = ["W1", "b1", "W2", "b2"]
    return plan, lambda: gk.execute(plan, inputs, wrt=wrt)
