"""The built-in ops: an ordinary plugin, registered through the same hook as any other."""

from __future__ import annotations

from collections.abc import Callable

from graphkit.hookspecs import hookimpl
from graphkit.opdef import OpDef
from graphkit.ops import activations, cast, compare, elementwise, linalg, losses, reduce, shape

BUILTIN_OPS: list[OpDef] = [
    *elementwise.OPS, *reduce.OPS, *linalg.OPS, *shape.OPS, *losses.OPS,
    *activations.OPS, *compare.OPS, *cast.OPS,
]


@hookimpl
def graphkit_register_ops(register: Callable[[OpDef], None]) -> None:
    for op in BUILTIN_OPS:
        register(op)
