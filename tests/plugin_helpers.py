"""A registry of the built-in ops plus a few of a test's own, given as an in-process plugin."""

from __future__ import annotations

from typing import Any

import graphkit
from graphkit import OpDef


class Plugin:
    """An in-process plugin providing the given ops."""

    def __init__(self, *ops: OpDef) -> None:
        self.ops = ops

    @graphkit.hookimpl
    def graphkit_register_ops(self, register: Any) -> None:
        for op in self.ops:
            register(op)


def with_ops(*ops: OpDef) -> graphkit.Registry:
    """The built-in ops (strict) and these, registered as plugin 'test-ops'."""
    registry = graphkit.builtin_registry(strict=True)
    registry.register_plugin(Plugin(*ops), name="test-ops")
    return registry
