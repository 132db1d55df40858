"""Random inputs for `check_op`: shapes that exercise broadcasting, values inside an op's domain."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Sample = tuple[list[np.ndarray], dict[str, Any]]


def random_shape(rng: np.random.Generator, max_rank: int = 3, max_dim: int = 4) -> tuple[int, ...]:
    rank = int(rng.integers(0, max_rank + 1))
    return tuple(int(d) for d in rng.integers(1, max_dim + 1, size=rank))


def broadcast_partner(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts against `shape`: a suffix of it with some dims set to 1."""
    keep = int(rng.integers(0, len(shape) + 1))
    tail = shape[len(shape) - keep :]
    return tuple(1 if rng.random() < 0.3 else d for d in tail)


def values(
    rng: np.random.Generator, shape: tuple[int, ...], low: float = -2.0, high: float = 2.0
) -> np.ndarray:
    return rng.uniform(low, high, size=shape)


def unary(low: float = -2.0, high: float = 2.0) -> Callable[[np.random.Generator], Sample]:
    def sample(rng: np.random.Generator) -> Sample:
        return [values(rng, random_shape(rng), low, high)], {}

    return sample


def binary(
    low: float = -2.0, high: float = 2.0, second_low: float | None = None
) -> Callable[[np.random.Generator], Sample]:
    """Two inputs of broadcasting shapes, in either order."""

    def sample(rng: np.random.Generator) -> Sample:
        shape = random_shape(rng)
        partner = broadcast_partner(rng, shape)
        if rng.random() < 0.5:
            shape, partner = partner, shape
        first = values(rng, shape, low, high)
        second = values(rng, partner, low if second_low is None else second_low, high)
        return [first, second], {}

    return sample


def away_from_ties(x: np.ndarray, gap: float = 1e-3) -> np.ndarray:
    """Nudge values off zero so kinks (Relu, Abs) are not sampled where the gradient jumps."""
    return np.where(np.abs(x) < gap, gap * 10, x)
