"""`plugin_gates`: the ops one plugin registers, loaded alone beside the built-ins.

A plugin is named as a user would name it: an entry-point name or a distribution name of the
`graphkit` group, an importable module, a .py file, or given as the module or object itself.
It is loaded into a fresh, strict registry, so what other installed plugins do (or break)
cannot change its result, and any failure is a PluginError naming it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import re
import sys
from os import PathLike
from pathlib import Path
from types import ModuleType
from typing import Any

from graphkit.errors import PluginError
from graphkit.opdef import OpDef
from graphkit.registry import BUILTIN_PLUGIN, ENTRY_POINT_GROUP, builtin_registry

BUILTIN_DISTRIBUTION = "graphkit-backprop"

Loaded = tuple[str, Any, str | None, str | None]
"""A plugin to register: name, module or object, distribution, version."""


def plugin_gates(plugin: Any) -> list[OpDef]:
    """The ops `plugin` registers, in registration order; the built-in ops are left out,
    except for the built-in plugin itself ("graphkit.ops")."""
    registry = builtin_registry(strict=True)
    if _is_builtin(plugin):
        return list(registry.ops())
    builtin = {op.key for op in registry.ops()}
    loaded = _resolve(plugin)
    for name, obj, distribution, version in loaded:
        registry.register_plugin(obj, name=name, distribution=distribution, version=version)
    gates = [op for op in registry.ops() if op.key not in builtin]
    if not gates:
        raise PluginError(
            f"plugin {_label(plugin)!r} registers no ops: it needs a function "
            "graphkit_register_ops(register) marked @graphkit.hookimpl that calls "
            "register(OpDef(...))"
        )
    return gates


def _is_builtin(plugin: Any) -> bool:
    from graphkit import ops

    return plugin is ops or plugin == BUILTIN_PLUGIN or (
        isinstance(plugin, str) and _canonical(plugin) == BUILTIN_DISTRIBUTION)


def _label(plugin: Any) -> str:
    if isinstance(plugin, str | PathLike):
        return str(plugin)
    return getattr(plugin, "__name__", None) or type(plugin).__name__


def _resolve(plugin: Any) -> list[Loaded]:
    if isinstance(plugin, PathLike) or (isinstance(plugin, str) and _looks_like_file(plugin)):
        return [(str(plugin), _import_file(Path(plugin)), None, None)]
    if not isinstance(plugin, str):
        return [(_label(plugin), plugin, None, None)]
    found = _entry_points(plugin)
    if found:
        return found
    return [(plugin, _import_module(plugin), None, None)]


def _looks_like_file(text: str) -> bool:
    return text.endswith(".py") or Path(text).is_file()


def _import_file(path: Path) -> ModuleType:
    """The module a .py file defines, under a name of its own (in sys.modules, as pydantic
    needs to resolve annotations)."""
    if not path.is_file():
        raise PluginError(f"plugin {str(path)!r}: no such file")
    resolved = path.resolve()
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", path.stem)
    name = f"graphkit_plugin_{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise PluginError(f"plugin {str(path)!r}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise PluginError(f"plugin {str(path)!r} failed to import: {_why(exc)}") from exc
    return module


def _entry_points(name: str) -> list[Loaded]:
    """The group's entry points called `name`, or all those of the distribution `name`."""
    wanted = _canonical(name)
    found = []
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        distribution = entry.dist.name if entry.dist is not None else None
        if entry.name != name and (distribution is None or _canonical(distribution) != wanted):
            continue
        try:
            obj = entry.load()
        except Exception as exc:
            raise PluginError(f"plugin {entry.name!r} failed to import ({entry.value}): "
                              f"{_why(exc)}") from exc
        version = entry.dist.version if entry.dist is not None else None
        found.append((entry.name, obj, distribution, version))
    return found


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise PluginError(
                f"plugin {name!r} not found: it is no entry point or distribution of the "
                f"{ENTRY_POINT_GROUP!r} group, no importable module and no .py file"
            ) from None
        raise PluginError(f"plugin {name!r} failed to import: {_why(exc)}") from exc
    except Exception as exc:
        raise PluginError(f"plugin {name!r} failed to import: {_why(exc)}") from exc


def _canonical(name: str) -> str:
    """Distribution names compare as PEP 503 says: case, '-', '_' and '.' do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"

