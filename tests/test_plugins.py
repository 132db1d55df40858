"""Plugins: in-process and through real entry points; broken ones are skipped with a warning
(or fatal in strict mode); the environment chooses which load. Every test builds its own
Registry, so nothing leaks into the process-wide default."""

from __future__ import annotations

import importlib
import itertools
import sys
import textwrap
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

import graphkit
from graphkit import GraphBuilder, OpDef, PluginError, Registry, execute
from graphkit.registry import PluginWarning

_ids = itertools.count()

GOOD = """
import graphkit

@graphkit.hookimpl
def graphkit_register_ops(register):
    register(graphkit.OpDef("Double", lambda x: 2 * x, lambda g, y, x: (2 * g,),
                            domain="fake", saves=frozenset()))
"""

BROKEN = {
    "import_error": ("raise ImportError('no module named fancy_dependency')",
                     "failed to import"),
    "hook_raises": ("""
import graphkit

@graphkit.hookimpl
def graphkit_register_ops(register):
    raise RuntimeError("plugin set-up exploded")
""", "raised while registering: RuntimeError: plugin set-up exploded"),
    "not_an_opdef": ("""
import graphkit

@graphkit.hookimpl
def graphkit_register_ops(register):
    register({"name": "Triple"})
""", "not an OpDef"),
    "invalid_opdef": ("""
import graphkit

@graphkit.hookimpl
def graphkit_register_ops(register):
    register(graphkit.OpDef("Bad Name", lambda x: x, domain="fake", num_inputs=-1))
""", "is invalid"),
    "api_mismatch": ("""
import graphkit

@graphkit.hookimpl
def graphkit_register_ops(register):
    register(graphkit.OpDef("Future", lambda x: x, domain="fake",
                            api_version=graphkit.PLUGIN_API_VERSION + 1))
""", "plugin API version"),
}


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Make a distribution with `graphkit` entry points importable, as pip would install it.

    install({"entry name": "module source", ...}, dist="name") -> {entry name: module name}
    """
    created: list[str] = []
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(plugins: dict[str, str], dist: str = "fakedist",
             version: str = "0.1") -> dict[str, str]:
        modules = {}
        lines = ["[graphkit]"]
        for entry, source in plugins.items():
            module = f"gk_test_plugin_{next(_ids)}"
            (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
            lines.append(f"{entry} = {module}")
            modules[entry] = module
            created.append(module)
        info = tmp_path / f"{dist}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        importlib.invalidate_caches()
        return modules

    yield make
    for module in created:
        sys.modules.pop(module, None)


def double_graph() -> graphkit.Graph:
    b = GraphBuilder("double")
    b.output(b.op("fake::Double", b.input("x")), "y")
    return b.build()


def assert_double_works(registry: Registry) -> None:
    result = execute(double_graph(), {"x": [1.0, 2.0]}, wrt="all", registry=registry)
    np.testing.assert_array_equal(result.outputs["y"], [2.0, 4.0])
    np.testing.assert_array_equal(result.gradients["x"], [2.0, 2.0])


def assert_builtins_work(registry: Registry) -> None:
    b = GraphBuilder("f")
    x, y = b.inputs("x", "y")
    b.output(x * y, "f")
    assert execute(b.build(), {"x": 3.0, "y": 4.0}, wrt="all", registry=registry).gradients == {
        "x": 4.0, "y": 3.0}


def ours(registry: Registry) -> set[str]:
    """Plugins loaded besides the built-in ops, minus any a developer may have installed."""
    return {name for name, info in registry.plugins.items()
            if info.distribution in ("fakedist", "otherdist", None)}


# -- in-process ------------------------------------------------------------------------------


def test_in_process_plugin_module() -> None:
    module = types.ModuleType("my_ops")

    @graphkit.hookimpl
    def graphkit_register_ops(register):
        register(OpDef("Double", lambda x: 2 * x, lambda g, y, x: (2 * g,), domain="fake"))

    module.graphkit_register_ops = graphkit_register_ops
    registry = graphkit.builtin_registry(strict=True)
    info = registry.register_plugin(module)
    assert info.name == "my_ops"
    assert info.ops == ["fake::Double@1"] and info.errors == []
    assert registry.plugins["my_ops"] is info
    assert registry.owner(registry.lookup("fake::Double")) == "my_ops"
    assert_double_works(registry)
    assert graphkit.validate(double_graph(), registry).plugins == ["my_ops"]


def test_in_process_plugin_object_with_several_ops_and_versions() -> None:
    class Ops:
        @graphkit.hookimpl
        def graphkit_register_ops(self, register):
            register(OpDef("Scale", lambda x: 2 * x, lambda g, y, x: (2 * g,), domain="fake"))
            register(OpDef("Scale", lambda x: 3 * x, lambda g, y, x: (3 * g,), domain="fake",
                           version=2))

    registry = graphkit.builtin_registry(strict=True)
    registry.register_plugin(Ops(), name="scales")
    assert registry.plugins["scales"].ops == ["fake::Scale@1", "fake::Scale@2"]
    for ref, factor in (("fake::Scale", 2.0), ("fake::Scale@2", 3.0)):
        b = GraphBuilder("s")
        b.output(b.op(ref, b.input("x")), "y")
        result = execute(b.build(), {"x": 1.0}, wrt="all", registry=registry)
        assert result.outputs["y"] == factor and result.gradients["x"] == factor


def test_a_registry_without_the_plugin_does_not_know_its_ops() -> None:
    registry = graphkit.builtin_registry(strict=True)
    with pytest.raises(graphkit.GraphValidationError, match="unknown op fake::Double"):
        graphkit.validate(double_graph(), registry)
    with pytest.raises(PluginError, match="fake::Double"):
        registry.lookup("fake::Double")
    assert registry.get("fake::Double") is None


def test_registries_are_independent() -> None:
    first = graphkit.builtin_registry(strict=True)
    first.register_plugin(_plugin(OpDef("Double", lambda x: 2 * x, domain="fake")), name="p")
    second = graphkit.builtin_registry(strict=True)
    assert first.get("fake::Double") is not None
    assert second.get("fake::Double") is None
    assert list(second.plugins) == ["graphkit.ops"]


def test_builtin_ops_are_an_ordinary_plugin() -> None:
    registry = graphkit.builtin_registry(strict=True)
    assert list(registry.plugins) == ["graphkit.ops"]
    info = registry.plugins["graphkit.ops"]
    assert len(info.ops) == len(graphkit.ops.BUILTIN_OPS) == 40 and info.errors == []
    assert registry.owner(registry.lookup("MatMul")) == "graphkit.ops"


def _plugin(*ops: OpDef, fail: BaseException | None = None):
    class Plugin:
        @graphkit.hookimpl
        def graphkit_register_ops(self, register):
            for op in ops:
                register(op)
            if fail is not None:
                raise fail

    return Plugin()


# -- through entry points --------------------------------------------------------------------


def test_plugin_found_through_a_real_entry_point(install) -> None:
    install({"doubler": GOOD})
    registry = graphkit.load_registry()
    info = registry.plugins["doubler"]
    assert info.distribution == "fakedist" and info.version == "0.1"
    assert info.ops == ["fake::Double@1"] and info.errors == []
    assert_double_works(registry)
    assert_builtins_work(registry)


def test_load_entry_points_on_an_own_registry(install, monkeypatch) -> None:
    install({"doubler": GOOD})
    monkeypatch.setenv("GRAPHKIT_LOAD_PLUGINS", "doubler")
    registry = Registry(strict=True)
    registry.load_entry_points()
    assert "graphkit.ops" not in registry.plugins  # only what the entry points bring
    assert registry.get("fake::Double") is not None
    assert registry.get("Add") is None


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_broken_plugin_is_skipped_with_a_warning(kind, install) -> None:
    source, reason = BROKEN[kind]
    install({"doubler": GOOD, "broken": source})
    with pytest.warns(PluginWarning, match="plugin 'broken'") as caught:
        registry = graphkit.load_registry()
    assert any(reason in str(w.message) for w in caught), [str(w.message) for w in caught]
    broken = registry.plugins["broken"]
    assert len(broken.errors) == 1 and reason in broken.errors[0]
    assert broken.ops == []
    assert broken.distribution == "fakedist"
    assert registry.plugins["doubler"].errors == []
    assert_double_works(registry)  # the other plugin keeps working
    assert_builtins_work(registry)


def test_an_entry_point_naming_a_missing_module(install, tmp_path) -> None:
    install({"doubler": GOOD})
    info = next(tmp_path.glob("*.dist-info"))
    with (info / "entry_points.txt").open("a") as file:
        file.write("ghost = gk_test_no_such_module_anywhere\n")
    importlib.invalidate_caches()
    with pytest.warns(PluginWarning, match="plugin 'ghost' failed to import"):
        registry = graphkit.load_registry()
    assert "ModuleNotFoundError" in registry.plugins["ghost"].errors[0]
    assert_double_works(registry)


def test_a_plugin_with_one_invalid_op_keeps_its_valid_ones() -> None:
    registry = graphkit.builtin_registry(strict=False)
    good = OpDef("Double", lambda x: 2 * x, lambda g, y, x: (2 * g,), domain="fake")
    bad = OpDef("Wrong", lambda x: x, domain="fake", saves=frozenset({"everything"}))
    with pytest.warns(PluginWarning, match="saves"):
        info = registry.register_plugin(_plugin(good, bad), name="mixed")
    assert info.ops == ["fake::Double@1"]
    assert registry.get("fake::Wrong") is None
    assert_double_works(registry)


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_strict_mode_from_the_environment_raises(kind, install, monkeypatch) -> None:
    source, reason = BROKEN[kind]
    install({"doubler": GOOD, "broken": source})
    monkeypatch.setenv("GRAPHKIT_LOAD_PLUGINS", "doubler,broken")
    monkeypatch.setenv("GRAPHKIT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="plugin 'broken'") as info:
        graphkit.load_registry()
    assert reason in str(info.value)


def test_strict_argument_overrides_the_environment(install, monkeypatch) -> None:
    install({"broken": BROKEN["hook_raises"][0]})
    monkeypatch.setenv("GRAPHKIT_STRICT_PLUGINS", "1")
    with pytest.warns(PluginWarning):
        registry = graphkit.load_registry(strict=False)
    assert registry.plugins["broken"].errors
    monkeypatch.setenv("GRAPHKIT_STRICT_PLUGINS", "0")
    with pytest.raises(PluginError):
        graphkit.load_registry(strict=True)
    with pytest.warns(PluginWarning):
        graphkit.load_registry()  # "0" is not strict


def test_strict_in_process_registration_raises() -> None:
    registry = graphkit.builtin_registry(strict=True)
    with pytest.raises(PluginError, match="plugin 'p'.*ZeroDivisionError"):
        registry.register_plugin(_plugin(fail=ZeroDivisionError("x")), name="p")


CLASH = """
import graphkit

@graphkit.hookimpl
def graphkit_register_ops(register):
    register(graphkit.OpDef("Double", lambda x: 3 * x, lambda g, y, x: (3 * g,),
                            domain="fake", saves=frozenset()))
"""


def test_a_name_clash_between_two_plugins_names_both(install) -> None:
    install({"first": GOOD, "second": CLASH})
    with pytest.warns(PluginWarning) as caught:
        registry = graphkit.load_registry()
    messages = [str(w.message) for w in caught if "fake::Double@1" in str(w.message)]
    assert len(messages) == 1
    assert "'first'" in messages[0] and "'second'" in messages[0]
    assert registry.plugins["second"].errors and registry.plugins["second"].ops == []
    assert registry.owner(registry.lookup("fake::Double")) == "first"
    assert_double_works(registry)  # the first one registered is kept: 2x, not 3x


def test_a_name_clash_with_a_builtin_op_names_both() -> None:
    registry = graphkit.builtin_registry(strict=False)
    with pytest.warns(PluginWarning, match="'graphkit.ops'.*'impostor'"):
        registry.register_plugin(_plugin(OpDef("Add", lambda a, b: a - b, num_inputs=2)),
                                 name="impostor")
    assert_builtins_work(registry)
    assert registry.owner(registry.lookup("Add")) == "graphkit.ops"


def test_a_name_clash_is_fatal_in_strict_mode(install, monkeypatch) -> None:
    install({"first": GOOD, "second": CLASH})
    monkeypatch.setenv("GRAPHKIT_LOAD_PLUGINS", "fakedist")
    monkeypatch.setenv("GRAPHKIT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="'first'.*'second'"):
        graphkit.load_registry()


# -- which plugins load ----------------------------------------------------------------------


@pytest.fixture
def two_dists(install):
    install({"doubler": GOOD}, dist="fakedist")
    install({"broken": BROKEN["hook_raises"][0]}, dist="otherdist", version="2.0")


def test_without_policy_every_installed_plugin_loads(two_dists) -> None:
    with pytest.warns(PluginWarning, match="'broken'"):
        registry = graphkit.load_registry()
    assert ours(registry) == {"doubler", "broken"}
    assert registry.plugins["broken"].distribution == "otherdist"
    assert registry.plugins["broken"].version == "2.0"


@pytest.mark.parametrize(("allowed", "expected"), [
    ("doubler", {"doubler"}),
    ("broken", {"broken"}),
    (" doubler , broken ", {"doubler", "broken"}),
    ("fakedist", {"doubler"}),  # a distribution name selects all of its plugins
    ("", set()),  # empty: none
    (",", set()),
    ("nothing-by-that-name", set()),
])
def test_graphkit_load_plugins_selects(allowed, expected, two_dists, monkeypatch) -> None:
    monkeypatch.setenv("GRAPHKIT_LOAD_PLUGINS", allowed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = graphkit.load_registry(strict=False)
    assert set(registry.plugins) - {"graphkit.ops"} == expected
    warned = [w for w in caught if issubclass(w.category, PluginWarning)]
    assert bool(warned) == ("broken" in expected)
    assert (registry.get("fake::Double") is not None) == ("doubler" in expected)
    assert_builtins_work(registry)


def test_plugins_that_are_not_selected_are_not_even_imported(two_dists, monkeypatch) -> None:
    monkeypatch.setenv("GRAPHKIT_LOAD_PLUGINS", "doubler")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graphkit.load_registry()
    assert not [w for w in caught if issubclass(w.category, PluginWarning)]
    loaded = {name for name, module in sys.modules.items() if name.startswith("gk_test_plugin_")}
    assert len(loaded) == 1


@pytest.mark.parametrize(("disabled", "expected"), [
    ("broken", {"doubler"}),
    ("otherdist", {"doubler"}),
    ("doubler,broken", set()),
    ("", {"doubler", "broken"}),
])
def test_graphkit_disable_plugins_removes(disabled, expected, two_dists, monkeypatch) -> None:
    monkeypatch.setenv("GRAPHKIT_DISABLE_PLUGINS", disabled)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = graphkit.load_registry(strict=False)
    assert ours(registry) == expected
    warned = [w for w in caught if issubclass(w.category, PluginWarning)]
    assert bool(warned) == ("broken" in expected)  # a disabled plugin is not even imported


def test_disable_wins_over_load(two_dists, monkeypatch) -> None:
    monkeypatch.setenv("GRAPHKIT_LOAD_PLUGINS", "doubler,broken")
    monkeypatch.setenv("GRAPHKIT_DISABLE_PLUGINS", "broken")
    registry = graphkit.load_registry(strict=True)  # strict: the broken one must not load
    assert set(registry.plugins) == {"graphkit.ops", "doubler"}


def test_loading_does_not_touch_the_default_registry(install) -> None:
    install({"doubler": GOOD})
    before = graphkit.registry._default
    first = graphkit.load_registry()
    second = graphkit.load_registry()
    assert first is not second
    assert graphkit.registry._default is before


def test_a_plugin_whose_hook_raises_midway_is_skipped_whole() -> None:
    first = OpDef("HalfDone", lambda x: x, lambda g, y, x: (g,), domain="half")

    class HalfRegistered:
        @graphkit.hookimpl
        def graphkit_register_ops(self, register):
            register(first)
            raise RuntimeError("lost the second op")

    registry = graphkit.builtin_registry(strict=False)
    with pytest.warns(PluginWarning, match="lost the second op"):
        registry.register_plugin(HalfRegistered(), name="half")
    assert registry.get("half::HalfDone") is None
    assert registry.plugins["half"].ops == []
    assert "raised while registering" in registry.plugins["half"].errors[0]
    assert_builtins_work(registry)
