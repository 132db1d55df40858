"""Optimisers: turn the gradients of a loss into updates of a graph's parameters.

The update rules are the textbook ones of the CS231n notes ("Parameter updates"), per parameter
array `x` with gradient `dx`:

- SGD with momentum: `v = momentum * v - lr * dx`, then `x += v` (momentum 0 is plain SGD,
  `x -= lr * dx`).
- Adam (Kingma & Ba, with bias correction): `m = beta1 * m + (1 - beta1) * dx`,
  `v = beta2 * v + (1 - beta2) * dx**2`, `t += 1`, `m_hat = m / (1 - beta1**t)`,
  `v_hat = v / (1 - beta2**t)`, then `x -= lr * m_hat / (sqrt(v_hat) + eps)`.

An optimiser keeps its state (velocities, moments, step counts) per parameter *name*, and
updates the parameter arrays in place, so a training loop allocates nothing for parameters and
anyone holding the dict of parameters sees the new values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping
from typing import ClassVar

import numpy as np

from graphkit.errors import GraphkitError

__all__ = ["DEFAULT_LR", "SGD", "Adam", "Optimizer", "make_optimizer"]


class Optimizer:
    """Base of the optimisers: `step(params, grads)` updates `params[name]` in place."""

    name: ClassVar[str] = "optimizer"
    lr: float

    def step(
        self, params: MutableMapping[str, np.ndarray], grads: Mapping[str, np.ndarray]
    ) -> None:
        """Apply one update to every parameter from its gradient (a gradient for each needed)."""
        for name, x in params.items():
            dx = grads.get(name)
            if dx is None:
                raise GraphkitError(f"{self.name}: no gradient for parameter {name!r}")
            _check_pair(name, x, dx)
            self._update(name, x, dx)

    def _update(self, name: str, x: np.ndarray, dx: np.ndarray) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        """`adam lr 0.001`: what a summary line says about this optimiser."""
        return f"{self.name} lr {self.lr:g}"


class SGD(Optimizer):
    """Stochastic gradient descent with (classical) momentum; `momentum=0` is plain SGD."""

    name = "sgd"

    def __init__(self, lr: float = 0.01, momentum: float = 0.9) -> None:
        self.lr = _positive("lr", lr)
        self.momentum = _fraction("momentum", momentum)
        self.velocity: dict[str, np.ndarray] = {}
        """Per parameter name: v, the running update (not allocated when momentum is 0)."""

    def _update(self, name: str, x: np.ndarray, dx: np.ndarray) -> None:
        if self.momentum == 0.0:
            x -= self.lr * dx
            return
        v = self.velocity.get(name)
        if v is None:
            v = self.velocity[name] = np.zeros_like(x)
        v *= self.momentum
        v -= self.lr * dx
        x += v

    def describe(self) -> str:
        return f"sgd lr {self.lr:g} momentum {self.momentum:g}"


class Adam(Optimizer):
    """Adam: per-coordinate steps scaled by running estimates of the gradient's moments."""

    name = "adam"

    def __init__(
        self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        self.lr = _positive("lr", lr)
        self.beta1 = _fraction("beta1", beta1)
        self.beta2 = _fraction("beta2", beta2)
        self.eps = _positive("eps", eps)
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}
        self.t: dict[str, int] = {}
        """Per parameter name: the number of updates it has had (for the bias correction)."""

    def _update(self, name: str, x: np.ndarray, dx: np.ndarray) -> None:
        m = self.m.get(name)
        if m is None:
            m = self.m[name] = np.zeros_like(x)
            self.v[name] = np.zeros_like(x)
        v = self.v[name]
        t = self.t[name] = self.t.get(name, 0) + 1
        m *= self.beta1
        m += (1.0 - self.beta1) * dx
        v *= self.beta2
        v += (1.0 - self.beta2) * (dx * dx)
        m_hat = m / (1.0 - self.beta1**t)
        v_hat = v / (1.0 - self.beta2**t)
        x -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


DEFAULT_LR = {"sgd": 0.01, "adam": 0.001}
"""The learning rate each optimiser uses when none is given."""


def make_optimizer(name: str, lr: float | None = None, momentum: float = 0.9) -> Optimizer:
    """An optimiser by name (`sgd` or `adam`), as the command line chooses one."""
    key = name.lower()
    if key not in DEFAULT_LR:
        raise GraphkitError(f"unknown optimizer {name!r} (one of {', '.join(DEFAULT_LR)})")
    rate = DEFAULT_LR[key] if lr is None else lr
    return SGD(rate, momentum) if key == "sgd" else Adam(rate)


def _check_pair(name: str, x: np.ndarray, dx: np.ndarray) -> None:
    """A parameter must be a writable float array (it is updated in place), its gradient alike."""
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f" or not x.flags.writeable:
        raise GraphkitError(
            f"parameter {name!r} must be a writable float numpy array (it is updated in place)"
        )
    if np.shape(dx) != x.shape:
        raise GraphkitError(
            f"gradient of parameter {name!r} has shape {np.shape(dx)}, the parameter {x.shape}"
        )


def _positive(what: str, value: float) -> float:
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise GraphkitError(f"{what} must be a positive number, got {value!r}")
    return number


def _fraction(what: str, value: float) -> float:
    number = float(value)
    if not (0.0 <= number < 1.0):
        raise GraphkitError(f"{what} must be in [0, 1), got {value!r}")
    return number
