"""A one-op plugin in a single file: load it for one run with `graphkit -p`.

    graphkit -p examples/plugins/twice.py ops
    GRAPHKIT_PLUGINS=examples/plugins/twice.py graphkit plugins
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import graphkit

TWICE = graphkit.OpDef(
    name="Twice",
    domain="example",
    forward=lambda x: 2 * x,
    vjp=lambda g, y, x: (2 * g,),
    saves=frozenset(),  # the rule needs neither the input nor the output
    infer=lambda shape: [shape],
    sample=lambda rng: ([rng.standard_normal((2, 3))], {}),
    doc="2 x: the gradient doubles too",
)


@graphkit.hookimpl
def graphkit_register_ops(register: Callable[[graphkit.OpDef], Any]) -> None:
    """Register example::Twice."""
    register(TWICE)
