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
sign = np.sign


def sigmoid(x: Any) -> Any:
    """1 / (1 + e^-x) without overflow and with full relative precision for large |x|:
    e^-|x| never overflows, and the negative side is e^x / (1 + e^x), not 1 minus a rounding."""
    e = np.exp(-np.abs(x))
    return np.where(np.greater_equal(x, 0), 1 / (1 + e), e / (1 + e)).astype(
        np.result_type(x, np.float32), copy=False)


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
    if type(x) is np.ndarray:
        return x.swapaxes(-1, -2)  # the method skips np.swapaxes's Python dispatch
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
    out = np.zeros((*np.shape(labels), depth), dtype=dtype)
    np.put_along_axis(out, np.expand_dims(labels, -1), 1, axis=-1)
    return out


def pick(x: Any, labels: Any) -> Any:
    """x[..., labels] row by row: pick([[1, 2], [3, 4]], [1, 0]) = [2, 3]."""
    if getattr(x, "ndim", 0) == 2:  # a batch of rows: one fancy index, no index arrays built
        return x[np.arange(x.shape[0]), labels]
    return np.take_along_axis(x, np.expand_dims(labels, -1), axis=-1)[..., 0]


def row_max(x: Any, axis: int = -1) -> Any:
    """The max over `axis`, keeping it. numpy reduces short rows slowly (a 256 x 10 float32
    max costs 14 us): sweeping a matrix's few columns with np.maximum is three times faster."""
    if getattr(x, "ndim", 0) == 2 and axis in (-1, 1) and 1 < x.shape[1] <= 32:
        best = x[:, :1].copy()
        for column in range(1, x.shape[1]):
            np.maximum(best, x[:, column : column + 1], out=best)
        return best
    return np.maximum.reduce(x, axis=axis, keepdims=True)


def softmax(x: Any, axis: int = -1) -> Any:
    """Softmax over `axis`, shifted by the max so exp never overflows."""
    shifted = np.exp(x - row_max(x, axis))
    return shifted / np.add.reduce(shifted, axis=axis, keepdims=True)


def take_at_labels(x: Any, labels: Any, amount: Any) -> Any:
    """Take `amount` off x[i, labels[i]] in every row of the matrix x, in place; returns x."""
    x[np.arange(x.shape[0]), labels] -= amount
    return x


def log_softmax(x: Any, axis: int = -1) -> Any:
    shifted = x - row_max(x, axis)
    return shifted - np.log(np.add.reduce(np.exp(shifted), axis=axis, keepdims=True))


def cast(x: Any, dtype: Any) -> Any:
    return np.asarray(x).astype(dtype)


def split(x: Any, sizes: Sequence[int], axis: int) -> list[Any]:
    """Consecutive pieces of `x` along `axis` with the given sizes (the inverse of concat)."""
    bounds = np.cumsum(sizes)[:-1]
    return np.split(x, bounds, axis=axis)


def first_max_mask(x: Any, axes: Sequence[int] | None = None) -> Any:
    """1 (in x's float dtype) at the first maximum of each slice reduced over `axes`, else 0.

    "First" in row-major order over the reduced axes, as argmax: a max gate's tie policy.
    """
    x = np.asarray(x)
    if x.size == 0:
        return np.zeros(x.shape, np.result_type(x, np.float32))
    reduced = list(range(x.ndim)) if axes is None else sorted({a % x.ndim for a in axes})
    kept = [a for a in range(x.ndim) if a not in reduced]
    moved = np.transpose(x, kept + reduced)
    count = int(np.prod([x.shape[a] for a in reduced], dtype=np.int64))
    flat = moved.reshape(moved.shape[: len(kept)] + (count,))
    first = np.argmax(flat, axis=-1)[..., None]
    mask = (np.arange(count) == first).astype(np.result_type(x, np.float32))
    return np.transpose(mask.reshape(moved.shape), np.argsort(kept + reduced))


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
