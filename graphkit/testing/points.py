"""A point to check a gate at: the op's own `sample(rng)`, validated, with fresh copies on demand.

Every check takes its inputs from here, so each runs on copies (an op that writes into its
inputs cannot spoil the next check) and every failure names the seed that reproduces it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from graphkit.opdef import OpDef
from graphkit.testing.seeds import Violation, describe


class SampleError(Violation):
    """`sample(rng)` is missing, raised, or returned something the op cannot be called with."""


@dataclass(frozen=True)
class Point:
    """Inputs and attributes drawn by `op.sample(numpy.random.default_rng(seed))`."""

    seed: int
    arrays: tuple[np.ndarray, ...]
    raw_attributes: dict[str, Any]
    """As the sample gave them, numpy values as plain numbers and lists: what a node holds."""
    attributes: dict[str, Any]
    """Validated by the op's attribute model: what forward and vjp receive."""

    def fresh(self, dtype: Any = None) -> list[np.ndarray]:
        """Copies of the inputs; float ones converted to `dtype` when given."""
        return [a.astype(dtype) if dtype is not None and a.dtype.kind == "f" else a.copy()
                for a in self.arrays]

    @property
    def has_float(self) -> bool:
        return any(a.dtype.kind == "f" for a in self.arrays)

    def where(self) -> str:
        """`sample seed S (inputs ...; attributes ...)`, for messages."""
        shown = ", ".join(f"{tuple(a.shape)} {a.dtype}" for a in self.arrays) or "none"
        attributes = f"; attributes {self.raw_attributes}" if self.raw_attributes else ""
        return f"sample seed {self.seed} (inputs {shown}{attributes})"


@contextmanager
def blaming(point: Point, dtype: Any = None) -> Iterator[None]:
    """An exception inside becomes a Violation naming the point (and dtype) it happened at."""
    try:
        yield
    except Violation:
        raise
    except Exception as exc:
        inputs = f", with {np.dtype(dtype)} inputs" if dtype is not None else ""
        raise Violation(f"{describe(exc)}{inputs}, at {point.where()}") from exc


def draw(op: OpDef, seed: int) -> Point:
    """The op's sample at `seed`, or a SampleError saying what is wrong with it."""
    if op.sample is None:
        raise SampleError(f"op {op.qualname} has no sample(rng): give it one, so its gradient, "
                          "contracts and ONNX export can be checked")
    at = f"at sample seed {seed}"
    try:
        drawn = op.sample(np.random.default_rng(seed))
    except Exception as exc:
        raise SampleError(f"sample(rng) raised {describe(exc)} {at}") from exc
    if not (isinstance(drawn, tuple | list) and len(drawn) == 2):
        raise SampleError(f"sample(rng) must return (inputs, attributes), got {_kind(drawn)} "
                          f"{at}")
    arrays, attributes = drawn
    if not isinstance(arrays, tuple | list):
        raise SampleError(f"sample(rng)'s inputs must be a list of arrays, got {_kind(arrays)} "
                          f"{at}")
    if not isinstance(attributes, Mapping):
        raise SampleError(f"sample(rng)'s attributes must be a dict, got {_kind(attributes)} "
                          f"{at}")
    if not op.accepts(len(arrays)):
        raise SampleError(f"sample(rng) gave {len(arrays)} inputs; the op takes {op.arity} "
                          f"({at})")
    attributes = {str(k): _plain(v) for k, v in attributes.items()}
    try:
        validated = dict(op.attributes.model_validate(attributes))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'attributes'}: {e['msg']}"
                             for e in exc.errors())
        raise SampleError(f"sample(rng)'s attributes are invalid {at}: {problems}") from None
    return Point(seed, tuple(np.array(a) for a in arrays), attributes, validated)


def _plain(value: Any) -> Any:
    """An attribute as a graph file holds it: numpy scalars and arrays become numbers and
    lists, as they would come out of JSON."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _kind(value: Any) -> str:
    return type(value).__name__
