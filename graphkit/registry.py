"""The op registry: a pluggy plugin manager plus the policy for which plugins load.

Plugins come from the built-in ops module, from installed distributions (entry-point group
`graphkit`), from modules or .py files named for one run (GRAPHKIT_PLUGINS, the CLI's -p), or
in-process (`register_plugin`). All go through the one hook. A plugin that fails is skipped with
a warning and remembered, so one broken plugin never takes graphkit down;
GRAPHKIT_STRICT_PLUGINS=1 makes any failure fatal.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from graphkit import hookspecs
from graphkit.errors import PluginError
from graphkit.model import OpRef
from graphkit.opdef import PLUGIN_API_VERSION, OpDef

ENTRY_POINT_GROUP = "graphkit"
BUILTIN_PLUGIN = "graphkit.ops"
PLUGINS_ENV = "GRAPHKIT_PLUGINS"
"""Modules or .py files to load as plugins, comma-separated (like the CLI's -p)."""

BUILT_IN = "built-in"
ENTRY_POINT = "entry point"
MODULE = "module"
IN_PROCESS = "in-process"
"""Values of PluginInfo.origin; a plugin loaded from a .py file has the file's path instead."""


class PluginWarning(UserWarning):
    """A plugin was skipped; `graphkit plugins` shows why."""


@dataclass
class PluginInfo:
    """What `graphkit plugins` shows for one plugin."""

    name: str
    distribution: str | None = None
    version: str | None = None
    origin: str = IN_PROCESS
    """Where it came from: "built-in", "entry point" (see distribution and version), a .py
    file's path, "module" (named by import name) or "in-process" (`register_plugin`)."""
    ops: list[str] = field(default_factory=list)
    """Its ops as domain::name@version (name@version in the default domain)."""
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
        version: str | None = None, origin: str = IN_PROCESS,
    ) -> PluginInfo:
        """Register a module or object with `graphkit_register_ops`; failures are contained.

        Registering the same object under the same name again changes nothing; a plugin that
        failed whole may be registered again (e.g. fixed, in a notebook).
        """
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        known = self.plugins.get(name)
        registered = self.manager.get_plugin(name)
        if known is not None and registered is plugin:
            return known
        if known is not None and (registered is not None or known.ops):
            self._fail(known, f"is already registered; another plugin of that name ({origin}) "
                              "was skipped")
            return known
        info = self.plugins[name] = PluginInfo(name, distribution, version, origin)
        try:
            self.manager.register(plugin, name=name)
        except Exception as exc:  # pluggy rejects hooks that match no spec, duplicates, ...
            self._fail(info, f"cannot be registered: {exc}")
            return info
        impls = [impl for impl in self.manager.hook.graphkit_register_ops.get_hookimpls()
                 if impl.plugin_name == name]
        if not impls:
            undecorated = callable(getattr(plugin, "graphkit_register_ops", None))
            self._fail(info, "defines graphkit_register_ops without @graphkit.hookimpl"
                       if undecorated else "has no graphkit_register_ops hook "
                       "(a function of that name decorated with @graphkit.hookimpl)")
        for impl in impls:
            before = list(info.ops)
            try:
                impl.function(register=lambda op, _info=info: self._add(op, _info))
            except PluginError:
                raise
            except Exception as exc:
                self._withdraw(info, before)  # half-registered: skip the plugin whole
                self._fail(info, f"raised while registering: {type(exc).__name__}: {exc}")
        if info.errors and not info.ops and self.manager.is_registered(plugin):
            self.manager.unregister(name=name)  # it gives nothing: a fixed one may come again
        return info

    def load_plugin(self, spec: str) -> PluginInfo:
        """Load a plugin named for this run: a .py file (by path) or a module (by import name).

        A file is imported under a module name of its own, so two files may share a name; the
        plugin is called after the file ("my_gates.py"), or its path if that name is taken.
        """
        if spec.endswith(".py") or os.sep in spec or "/" in spec:
            return self._load_file(Path(spec))
        known = self.plugins.get(spec)
        try:
            module = importlib.import_module(spec)
        except Exception as exc:
            info = known or self.plugins.setdefault(spec, PluginInfo(spec, origin=MODULE))
            self._fail(info, f"failed to import (module {spec}): {type(exc).__name__}: {exc}")
            return info
        return self.register_plugin(module, name=spec, origin=MODULE)

    def _load_file(self, path: Path) -> PluginInfo:
        origin = str(path.resolve())
        name = origin
        for candidate in (path.name, origin):
            known = self.plugins.get(candidate)
            if known is not None and known.origin == origin:
                return known  # the same file again, e.g. in GRAPHKIT_PLUGINS and -p
            if known is None:
                name = candidate
                break
        digest = hashlib.sha1(origin.encode()).hexdigest()[:10]
        module_name = f"graphkit_file_plugin_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}_{digest}"
        try:
            if not path.is_file():
                raise FileNotFoundError("no such file")
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise ImportError("not a Python file")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(module_name, None)
                raise
        except Exception as exc:
            info = self.plugins.setdefault(name, PluginInfo(name, origin=origin))
            reason = str(exc) if isinstance(exc, FileNotFoundError) \
                else f"{type(exc).__name__}: {exc}"
            self._fail(info, f"failed to import ({origin}): {reason}")
            return info
        return self.register_plugin(module, name=name, origin=origin)

    def load_plugins(self, specs: Iterable[str]) -> None:
        """`load_plugin` each of `specs`, in order."""
        for spec in specs:
            self.load_plugin(spec)

    def _add(self, op: Any, info: PluginInfo) -> None:
        if not isinstance(op, OpDef):
            self._fail(info, f"registered {op!r}, which is not an OpDef")
            return
        if op.api_version != PLUGIN_API_VERSION:
            self._fail(info, f"op {op.qualname} is refused: {op.api_problem()}")
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
                info = self.plugins.setdefault(
                    entry.name, PluginInfo(entry.name, dist, version, ENTRY_POINT))
                self._fail(info, f"failed to import ({entry.value}): {type(exc).__name__}: {exc}")
                continue
            self.register_plugin(plugin, name=entry.name, distribution=dist, version=version,
                                 origin=ENTRY_POINT)

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
                             version=_own_version(), origin=BUILT_IN)
    return registry


def load_registry(strict: bool | None = None, plugins: Iterable[str] = ()) -> Registry:
    """A new registry: the built-in ops, the installed plugins the environment allows, the
    modules and files in GRAPHKIT_PLUGINS, then `plugins` (modules or .py files)."""
    registry = builtin_registry(strict)
    registry.load_entry_points()
    registry.load_plugins(_env_list(PLUGINS_ENV) or [])
    registry.load_plugins(plugins)
    return registry


_default: Registry | None = None


def default_registry() -> Registry:
    """The registry used when none is passed: loaded once per process, on first use."""
    global _default
    if _default is None:
        _default = load_registry()
    return _default


def register_plugin(plugin: Any, name: str | None = None) -> PluginInfo:
    """Register a module or object with `graphkit_register_ops` in the default registry.

    For scripts and notebooks: it changes the process-wide `default_registry()`, which every
    call without `registry=` uses. Failures are contained (a warning, and `PluginInfo.errors`);
    registering the same object again changes nothing.
    """
    return default_registry().register_plugin(plugin, name=name, origin=IN_PROCESS)


def reset_default_registry(registry: Registry | None = None) -> Registry | None:
    """Replace the default registry (None: load a new one on next use); return the old one.

    For tests that must not leave plugins behind, and for the CLI's -p (one run only).
    """
    global _default
    previous, _default = _default, registry
    return previous


def _own_version() -> str | None:
    try:
        return importlib.metadata.version("graphkit-backprop")
    except importlib.metadata.PackageNotFoundError:
        return None
