"""The array functions gradient rules are written in.

Rules call these (and arithmetic operators) rather than numpy directly, so that a later tracer
can run the very same rules on symbolic values to build the backward pass as a graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

exp = np.exp
log = np.log
tanh = np.tanh
sqrt = np.sqrt
matmul = np.matmul
where = np.where


def greater(a: Any, b: Any) -> Any:
    """a > b as an array of 0/1 in a's float dtype (so it multiplies gradients directly)."""
    return np.greater(a, b).astype(np.result_type(a, np.float32))


def less(a: Any, b: Any) -> Any:
    """a < b as an array of 0/1 in a's float dtype."""
    return np.less(a, b).astype(np.result_type(a, np.float32))


def greater_equal(a: Any, b: Any) -> Any:
    return np.greater_equal(a, b).astype(np.result_type(a, np.float32))


def less_equal(a: Any, b: Any) -> Any:
    return np.less_equal(a, b).astype(np.result_type(a, np.float32))


def transpose(x: Any, perm: Sequence[int] | None = None) -> Any:
    return np.transpose(x, perm)


def swap_last(x: Any) -> Any:
    """Swap the last two axes (the transpose of a batch of matrices)."""
    return np.swapaxes(x, -1, -2)


def reshape(x: Any, shape: Sequence[int]) -> Any:
    return np.reshape(x, shape)


def sum(x: Any, axes: Sequence[int] | None = None, keepdims: bool = False) -> Any:  # noqa: A001
    return np.add.reduce(x, axis=None if axes is None else tuple(axes), keepdims=keepdims)


def broadcast_to(x: Any, shape: Sequence[int]) -> Any:
    return np.broadcast_to(x, tuple(shape))


def expand_dims(x: Any, axes: Sequence[int]) -> Any:
    return np.expand_dims(x, tuple(axes))


def one_hot(labels: Any, depth: int, dtype: Any) -> Any:
    """Rows of the identity: one_hot([2, 0], 3) = [[0, 0, 1], [1, 0, 0]]."""
    return np.eye(depth, dtype=dtype)[labels]


def softmax(x: Any) -> Any:
    """Softmax over the last axis, shifted by the row max so exp never overflows."""
    shifted = np.exp(x - np.maximum.reduce(x, axis=-1, keepdims=True))
    return shifted / np.add.reduce(shifted, axis=-1, keepdims=True)


def log_softmax(x: Any) -> Any:
    shifted = x - np.maximum.reduce(x, axis=-1, keepdims=True)
    return shifted - np.log(np.add.reduce(np.exp(shifted), axis=-1, keepdims=True))


def sum_to(x: Any, shape: Sequence[int]) -> Any:
    """Undo broadcasting: sum `x` down to `shape` (leading axes, then axes of size 1)."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, size in enumerate(shape) if size == 1 and x.shape[lead + i] != 1
    )
    summed = np.add.reduce(x, axis=axes, keepdims=True) if axes else x
    return summed.reshape(shape)
