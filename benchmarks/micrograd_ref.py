"""micrograd, the reference for scalar workloads (pip install micrograd: benchmarks only).

micrograd's released Value has +, *, ** and relu; the lecture's neuron and the scalar chain also
need exp and tanh, added here in micrograd's own style (as in its author's lecture code).
"""

from __future__ import annotations

import math

from micrograd.engine import Value as _Value


class Value(_Value):
    """micrograd's Value with exp and tanh."""

    def __add__(self, other: object) -> Value:
        other = other if isinstance(other, _Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward() -> None:
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other: object) -> Value:
        other = other if isinstance(other, _Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward() -> None:
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def exp(self) -> Value:
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward() -> None:
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    def tanh(self) -> Value:
        t = math.tanh(self.data)
        out = Value(t, (self,), "tanh")

        def _backward() -> None:
            self.grad += (1 - t * t) * out.grad

        out._backward = _backward
        return out

    def __pow__(self, other: float) -> Value:
        out = Value(self.data**other, (self,), f"**{other}")

        def _backward() -> None:
            self.grad += (other * self.data ** (other - 1)) * out.grad

        out._backward = _backward
        return out


def sigmoid_neuron(w0: float, x0: float, w1: float, x1: float, w2: float) -> list[float]:
    """Build f = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2))) and backpropagate: the gradients."""
    leaves = [Value(v) for v in (w0, x0, w1, x1, w2)]
    a, b, c, d, e = leaves
    f = (((a * b + c * d + e) * -1).exp() + 1) ** -1
    f.backward()
    return [leaf.grad for leaf in leaves]


def scalar_chain(x: float, n: int) -> float:
    """The chain add, mul, tanh alternating, n ops; returns df/dx."""
    leaf = Value(x)
    v = leaf
    for i in range(n):
        k = i % 3
        v = v + 0.5 if k == 0 else (v * 0.999 if k == 1 else v.tanh())
    v.backward()
    return leaf.grad
