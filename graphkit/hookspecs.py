"""The plugin hooks. One hook: a plugin is handed `register` and calls it once per op."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from graphkit.opdef import OpDef

hookspec = pluggy.HookspecMarker("graphkit")
hookimpl = pluggy.HookimplMarker("graphkit")


@hookspec
def graphkit_register_ops(register: Callable[[OpDef], None]) -> None:
    """Call `register(OpDef(...))` for every op this plugin provides."""
