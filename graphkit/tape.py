"""What a run keeps between its forward and backward passes, the same for the interpreter
(execute.py) and compiled plans (codegen.py): light stand-ins for values a rule does not read,
a multi-output step's results checked, a residual split from its output, and a multi-output
step's upstream gradients made whole."""

from __future__ import annotations

from typing import Any

import numpy as np

from graphkit.opdef import Meta

_new_tuple = tuple.__new__

SMALL_BYTES = 64
"""Values of at most this size are kept themselves: no bigger than their Meta, cheaper to keep."""


def light(value: Any) -> Any:
    """What the tape keeps of a value its rule does not read: its shape and dtype (`Meta`),
    or the value itself when it is a few bytes."""
    try:
        if value.nbytes <= SMALL_BYTES:
            return value
        return _new_tuple(Meta, (value.shape, value.dtype))  # Meta(...) without its Python __new__
    except AttributeError:  # a Python number from a plugin's rule
        return Meta(np.shape(value), np.result_type(value))


def outputs_of(result: Any, count: int) -> tuple[Any, ...]:
    """A multi-output step's results as a tuple of `count`, or a ValueError saying otherwise."""
    result = tuple(result)
    if len(result) != count:
        raise ValueError(f"forward returned {len(result)} outputs, expected {count}")
    return result


def with_residual(result: Any) -> tuple[Any, Any]:
    """forward_saving's (output, residual), or a ValueError saying what it returned instead."""
    if type(result) is not tuple or len(result) != 2:
        got = f"{len(result)} items" if isinstance(result, tuple | list) else \
            f"a {type(result).__name__}"
        raise ValueError(f"forward_saving returned {got}, expected a tuple (output, residual)")
    return result


def upstream(grads: tuple[Any, ...], saved: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """A multi-output step's upstream gradients, zeros for the outputs nobody differentiated;
    None when no output has a gradient (the step's rule need not run)."""
    if all(g is None for g in grads):
        return None
    return tuple(g if g is not None else np.zeros(o.shape, o.dtype)
                 for g, o in zip(grads, saved, strict=True))
