"""The op registry: a pluggy plugin manager plus the policy for which plugins load.

Plugins come from the built-in ops module, from installed distributions (entry-point group
`graphkit`), or in-process. A plugin that fails is skipped with a warning and remembered, so one
broken plugin never takes graphkit down; GRAPHKIT_STRICT_PLUGINS=1 makes any failure fatal.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from graphkit import hookspecs
from graphkit.errors import PluginError
from graphkit.model import OpRef
from graphkit.opdef import OpDef

ENTRY_POINT_GROUP = "graphkit"
BUILTIN_PLUGIN = "graphkit.ops"


class PluginWarning(UserWarning):
    """A plugin was skipped; `graphkit plugins` shows why."""


@dataclass
class PluginInfo:
    """What `graphkit plugins` shows for one plugin."""

    name: str
    distribution: str | None = None
    version: str | None = None
    ops: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _env_list(name: str) -> list[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


class Registry:
    """Ops by (domain, name, version), and the plugins that provided them."""

    def __init__(self, strict: bool | None = None) -> None:
        self.strict = os.environ.get("GRAPHKIT_STRICT_PLUGINS", "") not in ("", "0") \
            if strict is None else strict
        self.manager = pluggy.PluginManager("graphkit")
        self.manager.add_hookspecs(hookspecs)
        self._ops: dict[tuple[str, str, int], OpDef] = {}
        self._owners: dict[tuple[str, str, int], str] = {}
        self.plugins: dict[str, PluginInfo] = {}

    # -- loading ---------------------------------------------------------------------------

    def register_plugin(
        self, plugin: Any, name: str | None = None, distribution: str | None = None,
        version: str | None = None,
    ) -> PluginInfo:
        """Register a module or object with `graphkit_register_ops`; failures are contained."""
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        info = self.plugins.setdefault(name, PluginInfo(name, distribution, version))
        try:
            self.manager.register(plugin, name=name)
        except Exception as exc:  # pluggy rejects hooks that match no spec, duplicates, ...
            self._fail(info, f"cannot be registered: {exc}")
            return info
        for impl in self.manager.hook.graphkit_register_ops.get_hookimpls():
            if impl.plugin_name != name:
                continue
            before = list(info.ops)
            try:
                impl.function(register=lambda op, _info=info: self._add(op, _info))
            except PluginError:
                raise
            except Exception as exc:
                self._withdraw(info, before)  # half-registered: skip the plugin whole
                self._fail(info, f"raised while registering: {type(exc).__name__}: {exc}")
        return info

    def _add(self, op: Any, info: PluginInfo) -> None:
        if not isinstance(op, OpDef):
            self._fail(info, f"registered {op!r}, which is not an OpDef")
            return
        problems = op.problems()
        if problems:
            self._fail(info, f"op {op.qualname} is invalid: " + "; ".join(problems))
            return
        owner = self._owners.get(op.key)
        if owner is not None:
            self._fail(
                info,
                f"op {op.qualname} is registered by both plugin {owner!r} and plugin "
                f"{info.name!r}; keeping {owner!r}'s",
            )
            return
        self._ops[op.key] = op
        self._owners[op.key] = info.name
        info.ops.append(op.qualname)

    def _withdraw(self, info: PluginInfo, keep: list[str]) -> None:
        """Remove the ops `info`'s plugin registered beyond `keep`."""
        for key, owner in list(self._owners.items()):
            if owner == info.name and self._ops[key].qualname not in keep:
                del self._ops[key], self._owners[key]
        info.ops = list(keep)

    def _fail(self, info: PluginInfo, message: str) -> None:
        info.errors.append(message)
        text = f"plugin {info.name!r} {message}"
        if self.strict:
            raise PluginError(text)
        warnings.warn(text, PluginWarning, stacklevel=3)

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Load installed plugins, honouring GRAPHKIT_LOAD_PLUGINS and GRAPHKIT_DISABLE_PLUGINS."""
        allowed = _env_list("GRAPHKIT_LOAD_PLUGINS")
        disabled = set(_env_list("GRAPHKIT_DISABLE_PLUGINS") or [])
        for entry in importlib.metadata.entry_points(group=group):
            dist = entry.dist.name if entry.dist is not None else None
            version = entry.dist.version if entry.dist is not None else None
            names = {entry.name, dist}
            if allowed is not None and not names & set(allowed):
                continue
            if names & disabled:
                continue
            try:
                plugin = entry.load()
            except Exception as exc:
                info = self.plugins.setdefault(entry.name, PluginInfo(entry.name, dist, version))
                self._fail(info, f"failed to import ({entry.value}): {type(exc).__name__}: {exc}")
                continue
            self.register_plugin(plugin, name=entry.name, distribution=dist, version=version)

    # -- lookup ----------------------------------------------------------------------------

    def get(self, ref: OpRef | str) -> OpDef | None:
        ref = OpRef.model_validate(ref) if isinstance(ref, str) else ref
        return self._ops.get(ref.key)

    def lookup(self, ref: OpRef | str) -> OpDef:
        """The op a reference names, or a PluginError that suggests close names."""
        ref = OpRef.model_validate(ref) if isinstance(ref, str) else ref
        op = self._ops.get(ref.key)
        if op is None:
            raise PluginError(self.unknown_message(ref))
        return op

    def unknown_message(self, ref: OpRef) -> str:
        known = [str(OpRef(domain=d, name=n, version=v)) for d, n, v in self._ops]
        close = difflib.get_close_matches(str(ref), known, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        same_name = [k for k in known if k.split("::")[-1].split("@")[0] == ref.name]
        if same_name and not close:
            hint = f" (registered: {', '.join(same_name)})"
        return f"unknown op {ref}{hint}"

    def owner(self, op: OpDef) -> str:
        return self._owners.get(op.key, "?")

    def ops(self) -> Iterable[OpDef]:
        return self._ops.values()


def builtin_registry(strict: bool | None = None) -> Registry:
    """A registry with the built-in ops only."""
    from graphkit import ops

    registry = Registry(strict=strict)
    registry.register_plugin(ops, name=BUILTIN_PLUGIN, distribution="graphkit-backprop",
                             version=_own_version())
    return registry


def load_registry(strict: bool | None = None) -> Registry:
    """A new registry with the built-in ops and the installed plugins the environment allows."""
    registry = builtin_registry(strict)
    registry.load_entry_points()
    return registry


_default: Registry | None = None


def default_registry() -> Registry:
    """The registry used when none is passed: loaded once per process, on first use."""
    global _default
    if _default is None:
        _default = load_registry()
    return _default


def _own_version() -> str | None:
    try:
        return importlib.metadata.version("graphkit-backprop")
    except importlib.metadata.PackageNotFoundError:
        return None
