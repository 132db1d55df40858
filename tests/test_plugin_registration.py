"""Registering a gate three ways (installed, named for one run, in-process) and containing its
failures: at load time a warning naming the plugin and the cause, at run time an
ExecutionError naming the plugin, the op and the node.

Every test gets a fresh process-wide default registry and puts the old one back afterwards, and
installed plugins are switched off (GRAPHKIT_LOAD_PLUGINS=""), so what a developer has
installed, and what one test registers, never reaches another test.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import subprocess
import sys
import textwrap
import types
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_error, run

import graphkit
from graphkit import ExecutionError, GraphBuilder, OpDef, PluginError, Registry, execute
from graphkit.registry import PluginWarning, reset_default_registry

ROOT = Path(__file__).resolve().parents[1]
TWICE = ROOT / "examples" / "plugins" / "twice.py"
TWICE_GRAPH = ROOT / "examples" / "plugins" / "twice.json"

_ids = itertools.count()

HEADER = """
import numpy as np
import graphkit
from graphkit import OpDef, hookimpl

"""

SWISH = """
def forward(x):
    return x / (1 + np.exp(-x))


def vjp(g, y, x):
    s = 1 / (1 + np.exp(-x))
    return (g * (s + x * s * (1 - s)),)


@hookimpl
def graphkit_register_ops(register):
    register(OpDef("Swish", forward, vjp, domain="com.example"))
"""

BROKEN = {
    "syntax_error": ("def graphkit_register_ops(:\n", "failed to import", "SyntaxError"),
    "import_error": ("import graphkit_no_such_dependency\n", "failed to import",
                     "ModuleNotFoundError: No module named 'graphkit_no_such_dependency'"),
    "hook_raises": ("""
@hookimpl
def graphkit_register_ops(register):
    raise RuntimeError("cannot find libfoo.so")
""", "raised while registering", "RuntimeError: cannot find libfoo.so"),
    "not_an_opdef": ("""
@hookimpl
def graphkit_register_ops(register):
    register({"name": "Triple"})
""", "registered {'name': 'Triple'}", "which is not an OpDef"),
    "invalid_opdef": ("""
@hookimpl
def graphkit_register_ops(register):
    register(OpDef("Bad Name", lambda x: x, domain="com.example"))
""", "op com.example::Bad Name@1 is invalid", "name 'Bad Name' is not an identifier"),
    "api_version": (f"""
@hookimpl
def graphkit_register_ops(register):
    register(OpDef("Future", lambda x: x, domain="com.example",
                   api_version={graphkit.PLUGIN_API_VERSION + 1}))
""", "op com.example::Future@1 is refused",
        f"written for plugin API version {graphkit.PLUGIN_API_VERSION + 1}, but this graphkit "
        f"provides version {graphkit.PLUGIN_API_VERSION} (upgrade graphkit-backprop)"),
    "clash_with_builtin": ("""
@hookimpl
def graphkit_register_ops(register):
    register(OpDef("Add", lambda a, b: a - b, num_inputs=2))
""", "op Add@1 is registered by both plugin 'graphkit.ops' and plugin",
        "keeping 'graphkit.ops''s"),
    "undecorated_hook": ("""
def graphkit_register_ops(register):
    register(OpDef("Forgotten", lambda x: x, domain="com.example"))
""", "defines graphkit_register_ops without @graphkit.hookimpl", ""),
    "no_hook": ("""
@hookimpl
def graphkit_register_op(register):  # misspelt: no such hook
    register(OpDef("Misspelt", lambda x: x, domain="com.example"))
""", "has no graphkit_register_ops hook", "decorated with @graphkit.hookimpl"),
}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh default registry without installed plugins; the old one is put back after."""
    monkeypatch.setenv("GRAPHKIT_LOAD_PLUGINS", "")
    modules = set(sys.modules)
    previous = reset_default_registry()
    yield
    reset_default_registry(previous)
    for name in set(sys.modules) - modules:
        if name.startswith(("graphkit_file_plugin_", "gk_reg_test_")):
            del sys.modules[name]


def write(path: Path, body: str) -> Path:
    """A plugin file: the common imports, then `body`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + textwrap.dedent(body))
    return path




def swish_graph(shape: list[int] | None = None) -> graphkit.Graph:
    b = GraphBuilder("swish")
    b.output(b.op("com.example::Swish", b.input("x", shape=shape), name="s1").sum(), "f")
    return b.build()


def assert_swish_works(registry: Registry | None = None) -> None:
    result = execute(swish_graph(), {"x": [0.0, 1.0]}, wrt="all", registry=registry)
    np.testing.assert_allclose(result.gradients["x"], [0.5, 0.9276705])


def assert_builtins_work(registry: Registry | None = None) -> None:
    b = GraphBuilder("f")
    x, y = b.inputs("x", "y")
    b.output(x * y, "f")
    result = execute(b.build(), {"x": 3.0, "y": 4.0}, wrt="all", registry=registry)
    assert result.gradients == {"x": 4.0, "y": 3.0}


def module_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str = SWISH) -> str:
    """An importable module holding `body`; returns its import name."""
    name = f"gk_reg_test_{next(_ids)}"
    write(tmp_path / "modules" / f"{name}.py", body)
    monkeypatch.syspath_prepend(str(tmp_path / "modules"))
    importlib.invalidate_caches()
    return name


# -- (a) installed: entry points ---------------------------------------------------------------


def test_an_installed_plugin_records_its_distribution_and_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = module_plugin(tmp_path, monkeypatch)
    info = tmp_path / "modules" / "gk-reg-dist-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gk-reg-dist\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text(f"[graphkit]\nswish = {module}\n")
    importlib.invalidate_caches()
    monkeypatch.setenv("GRAPHKIT_LOAD_PLUGINS", "gk-reg-dist")
    registry = graphkit.load_registry(strict=True)
    swish = registry.plugins["swish"]
    assert (swish.distribution, swish.version, swish.origin) == ("gk-reg-dist", "1.2",
                                                                 "entry point")
    assert swish.ops == ["com.example::Swish@1"]
    assert registry.plugins["graphkit.ops"].origin == "built-in"
    assert_swish_works(registry)


# -- (b) named for one run: files and modules ----------------------------------------------------


def test_a_file_plugin_is_imported_under_a_module_name_of_its_own(tmp_path: Path) -> None:
    path = write(tmp_path / "my_gates.py", SWISH)
    registry = graphkit.builtin_registry(strict=True)
    info = registry.load_plugin(str(path))
    assert info.name == "my_gates.py"
    assert info.origin == str(path.resolve())
    assert info.distribution is None and info.errors == []
    assert info.ops == ["com.example::Swish@1"]
    assert "my_gates" not in sys.modules
    assert [n for n in sys.modules if n.startswith("graphkit_file_plugin_my_gates_")]
    assert registry.owner(registry.lookup("com.example::Swish")) == "my_gates.py"
    assert_swish_works(registry)
    assert_builtins_work(registry)


def test_a_file_plugin_may_define_attribute_models_and_dataclasses(tmp_path: Path) -> None:
    """Both need the module in sys.modules while it runs: the import must put it there."""
    path = write(tmp_path / "scaled.py", """
    import dataclasses
    from pydantic import BaseModel


    class ScaleAttributes(BaseModel):
        factor: float = 2.0


    @dataclasses.dataclass
    class Config:
        domain: str = "com.example"


    @hookimpl
    def graphkit_register_ops(register):
        register(OpDef("Scale", lambda x, factor: factor * x,
                       lambda g, y, x, factor: (factor * g,), domain=Config().domain,
                       attributes=ScaleAttributes))
    """)
    registry = graphkit.builtin_registry(strict=True)
    registry.load_plugin(str(path))
    b = GraphBuilder("scale")
    b.output(b.op("com.example::Scale", b.input("x"), factor=3.0), "y")
    result = execute(b.build(), {"x": 2.0}, wrt="all", registry=registry)
    assert result.outputs["y"] == 6.0 and result.gradients["x"] == 3.0


def test_two_files_with_one_name_both_load(tmp_path: Path) -> None:
    first = write(tmp_path / "a" / "gates.py", SWISH)
    second = write(tmp_path / "b" / "gates.py", SWISH.replace("Swish", "Swash"))
    registry = graphkit.builtin_registry(strict=True)
    registry.load_plugins([str(first), str(second)])
    assert registry.plugins["gates.py"].ops == ["com.example::Swish@1"]
    by_path = registry.plugins[str(second.resolve())]
    assert by_path.ops == ["com.example::Swash@1"] and by_path.origin == str(second.resolve())


def test_the_same_file_twice_loads_once(tmp_path: Path) -> None:
    path = write(tmp_path / "my_gates.py", SWISH)
    registry = graphkit.builtin_registry(strict=True)  # strict: a second load would raise
    first = registry.load_plugin(str(path))
    again = registry.load_plugin(str(tmp_path / "." / "my_gates.py"))
    assert again is first and list(registry.plugins) == ["graphkit.ops", "my_gates.py"]


def test_a_module_plugin_by_import_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = module_plugin(tmp_path, monkeypatch)
    registry = graphkit.builtin_registry(strict=True)
    info = registry.load_plugin(name)
    assert (info.name, info.origin, info.ops) == (name, "module", ["com.example::Swish@1"])
    assert registry.load_plugin(name) is info  # the same module again changes nothing
    assert_swish_works(registry)


def test_graphkit_plugins_env_loads_files_and_modules_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = module_plugin(tmp_path, monkeypatch)
    path = write(tmp_path / "my_gates.py", SWISH.replace("Swish", "Swash"))
    monkeypatch.setenv("GRAPHKIT_PLUGINS", f" {path} ,, {name} ,")
    registry = graphkit.default_registry()
    assert list(registry.plugins) == ["graphkit.ops", "my_gates.py", name]
    assert registry.plugins["my_gates.py"].origin == str(path)
    assert registry.get("com.example::Swash") is not None
    assert_swish_works()  # through the default registry


def test_graphkit_plugins_env_with_a_relative_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "plugins" / "my_gates.py", SWISH)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GRAPHKIT_PLUGINS", "plugins/my_gates.py")
    info = graphkit.load_registry(strict=True).plugins["my_gates.py"]
    assert info.origin == str(tmp_path / "plugins" / "my_gates.py")


def test_cli_p_file_adds_its_ops(tmp_path: Path) -> None:
    path = write(tmp_path / "my_gates.py", SWISH)
    result = run("-p", str(path), "ops", "--json")
    assert result.exit_code == 0, result.stderr
    ops = {op["op"]: op for op in json.loads(result.stdout)["ops"]}
    assert ops["com.example::Swish"]["plugin"] == "my_gates.py"
    table = run("--plugin", str(path), "ops").stdout
    assert "com.example::Swish" in table and "my_gates.py" in table


def test_cli_p_module_and_several_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = module_plugin(tmp_path, monkeypatch)
    result = run("-p", name, "-p", str(TWICE), "plugins", "--json")
    assert result.exit_code == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    assert list(plugins) == ["graphkit.ops", name, "twice.py"]
    assert plugins[name]["origin"] == "module" and plugins[name]["ops"] == [
        "com.example::Swish@1"]
    assert plugins["twice.py"] == {
        "name": "twice.py", "distribution": None, "version": None, "origin": str(TWICE),
        "ops": ["example::Twice@1"], "errors": [],
    }
    assert plugins["graphkit.ops"]["origin"] == "built-in"


def test_cli_p_runs_a_graph_that_needs_the_plugin() -> None:
    args = ["execute", str(TWICE_GRAPH), "--input", "x=[1,2,3]", "--grad", "--json"]
    result = run("-p", str(TWICE), *args)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"outputs": {"f": 12.0},
                                         "gradients": {"x": [2.0, 2.0, 2.0]}}
    assert_error(run(*args), "unknown op example::Twice")  # not without it


def test_cli_p_comes_after_graphkit_plugins_and_loads_the_same_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "my_gates.py", SWISH)
    monkeypatch.setenv("GRAPHKIT_PLUGINS", str(TWICE))
    monkeypatch.setenv("GRAPHKIT_STRICT_PLUGINS", "1")  # a second load of twice.py would fail
    result = run("-p", str(path), "-p", str(TWICE), "plugins", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    names = [p["name"] for p in json.loads(result.stdout)["plugins"]]
    assert names == ["graphkit.ops", "twice.py", "my_gates.py"]


def test_cli_p_is_for_one_run_only(tmp_path: Path) -> None:
    default = graphkit.default_registry()
    path = write(tmp_path / "my_gates.py", SWISH)
    assert run("-p", str(path), "ops").exit_code == 0
    assert graphkit.default_registry() is default
    assert default.get("com.example::Swish") is None
    assert "com.example::Swish" not in run("ops").stdout


def test_cli_p_help_and_usage() -> None:
    result = run("--help")
    assert "-p, --plugin MODULE_OR_FILE" in result.stdout
    assert run("-p").exit_code == 2  # the option needs a value


def script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real console script, with installed plugins off and `env` added."""
    installed = Path(sys.executable).with_name("graphkit")
    command = [str(installed)] if installed.is_file() and os.access(installed, os.X_OK) \
        else [sys.executable, "-m", "graphkit.cli.main"]
    full = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1",
            "GRAPHKIT_LOAD_PLUGINS": "", **(env or {})}
    for name in ("GRAPHKIT_PLUGINS", "GRAPHKIT_STRICT_PLUGINS", "GRAPHKIT_DISABLE_PLUGINS"):
        if env is None or name not in env:
            full.pop(name, None)
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=ROOT,
                          env=full, timeout=120, check=False)


def test_script_graphkit_plugins_env(tmp_path: Path) -> None:
    path = write(tmp_path / "my_gates.py", SWISH)
    env = {"GRAPHKIT_PLUGINS": f"{path},examples/plugins/twice.py"}
    done = script("plugins", "--json", env=env)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    plugins = {p["name"]: p for p in json.loads(done.stdout)["plugins"]}
    assert plugins["my_gates.py"]["origin"] == str(path)
    assert plugins["twice.py"]["ops"] == ["example::Twice@1"]


def test_script_p_runtime_failure_is_one_error_line(tmp_path: Path) -> None:
    path = write(tmp_path / "my_gates.py", SWISH.replace(
        "return (g * (s + x * s * (1 - s)),)", "return (np.ones(3),)"))
    graph = tmp_path / "g.json"
    graphkit.save(swish_graph(), graph)
    done = script("-p", str(path), "execute", str(graph), "--input", "x=[[1,2],[3,4]]", "--grad")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: {graph}: com.example::Swish \"s1\" (plugin my_gates.py): gradient of shape (3,) "
        "for an input of shape (2, 2) (input 1 of 1, 'x')"
    ]


# -- (c) in-process: graphkit.register_plugin ----------------------------------------------------


def swish_module() -> types.ModuleType:
    module = types.ModuleType("my_notebook_gates")
    exec(compile(HEADER + SWISH, "<notebook>", "exec"), module.__dict__)  # noqa: S102
    return module


def test_register_plugin_goes_to_the_default_registry() -> None:
    module = swish_module()
    info = graphkit.register_plugin(module)
    assert isinstance(info, graphkit.PluginInfo)
    assert (info.name, info.origin, info.ops) == ("my_notebook_gates", "in-process",
                                                  ["com.example::Swish@1"])
    assert graphkit.default_registry().plugins["my_notebook_gates"] is info
    assert_swish_works()  # no registry= anywhere
    assert graphkit.register_plugin(module) is info  # a notebook cell run twice
    assert info.errors == []


def test_register_plugin_with_a_name_and_an_object() -> None:
    class Gates:
        @graphkit.hookimpl
        def graphkit_register_ops(self, register: Callable[[OpDef], None]) -> None:
            register(OpDef("Twice", lambda x: 2 * x, lambda g, y, x: (2 * g,), domain="nb"))

    info = graphkit.register_plugin(Gates(), name="my gates")
    assert info.name == "my gates" and info.ops == ["nb::Twice@1"]
    with pytest.warns(PluginWarning, match="plugin 'my gates' is already registered; another "
                                           r"plugin of that name \(in-process\) was skipped"):
        graphkit.register_plugin(Gates(), name="my gates")
    assert graphkit.default_registry().plugins["my gates"].ops == ["nb::Twice@1"]


def test_a_plugin_that_failed_may_be_registered_again_once_fixed() -> None:
    """The notebook loop: a cell registers a broken plugin, is fixed, and runs again."""
    def gates(fail: bool) -> object:
        class Gates:
            @graphkit.hookimpl
            def graphkit_register_ops(self, register: Callable[[OpDef], None]) -> None:
                if fail:
                    raise NameError("name 'np' is not defined")
                register(OpDef("Twice", lambda x: 2 * x, lambda g, y, x: (2 * g,), domain="nb"))

        return Gates()

    with pytest.warns(PluginWarning, match="plugin 'gates' raised while registering: NameError"):
        broken = graphkit.register_plugin(gates(fail=True), name="gates")
    assert broken.ops == [] and broken.errors
    fixed = graphkit.register_plugin(gates(fail=False), name="gates")
    assert fixed.ops == ["nb::Twice@1"] and fixed.errors == []
    assert graphkit.default_registry().plugins["gates"] is fixed


def test_a_graph_checked_before_registering_works_after() -> None:
    b = GraphBuilder("builtin")
    x = b.input("x")
    b.output(x * 3.0, "y")
    builtin = b.build()
    assert execute(builtin, {"x": 1.0}, wrt="all").gradients["x"] == 3.0  # plan cached
    graph = swish_graph()
    with pytest.raises(graphkit.GraphValidationError, match="unknown op com.example::Swish"):
        graphkit.validate(graph)
    with pytest.raises(graphkit.GraphValidationError):
        execute(graph, {"x": [0.0]})
    graphkit.register_plugin(swish_module())
    assert graphkit.validate(graph).plugins == ["my_notebook_gates", "graphkit.ops"]
    result = execute(graph, {"x": [0.0, 1.0]}, wrt="all")  # the same Graph object as above
    np.testing.assert_allclose(result.gradients["x"], [0.5, 0.9276705])
    assert execute(builtin, {"x": 2.0}, wrt="all").outputs["y"] == 6.0


def test_plans_follow_the_default_registry() -> None:
    graph = swish_graph()
    graphkit.register_plugin(swish_module())
    execute(graph, {"x": [1.0]})
    reset_default_registry()  # e.g. a test starting afresh: the plan must not outlive it
    with pytest.raises(graphkit.GraphValidationError, match="unknown op"):
        execute(graph, {"x": [1.0]})


def test_reset_default_registry_returns_the_old_one() -> None:
    first = graphkit.default_registry()
    mine = graphkit.builtin_registry()
    assert reset_default_registry(mine) is first
    assert graphkit.default_registry() is mine
    assert reset_default_registry() is mine
    assert graphkit.default_registry() is not mine


# -- failures while loading ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_broken_file_plugin_is_named_with_its_cause(kind: str, tmp_path: Path) -> None:
    body, reason, detail = BROKEN[kind]
    good = write(tmp_path / "good.py", SWISH)
    broken = write(tmp_path / "broken.py", body)
    registry = graphkit.builtin_registry(strict=False)
    with pytest.warns(PluginWarning) as caught:
        registry.load_plugins([str(good), str(broken)])
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages
    assert messages[0].startswith("plugin 'broken.py' ")
    assert reason in messages[0] and detail in messages[0]
    info = registry.plugins["broken.py"]
    assert info.ops == [] and len(info.errors) == 1 and reason in info.errors[0]
    assert info.origin == str(broken)
    assert registry.plugins["good.py"].errors == []
    assert_swish_works(registry)  # every other plugin keeps working
    assert_builtins_work(registry)


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_broken_file_plugin_is_fatal_in_strict_mode(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body, reason, detail = BROKEN[kind]
    monkeypatch.setenv("GRAPHKIT_PLUGINS", str(write(tmp_path / "broken.py", body)))
    monkeypatch.setenv("GRAPHKIT_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="^plugin 'broken.py' ") as info:
        graphkit.load_registry()
    assert reason in str(info.value) and detail in str(info.value)


def test_the_file_import_failure_gives_the_path(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.py", BROKEN["import_error"][0])
    registry = graphkit.builtin_registry(strict=False)
    with pytest.warns(PluginWarning, match="failed to import"):
        info = registry.load_plugin(str(path))
    assert info.errors == [f"failed to import ({path}): ModuleNotFoundError: No module named "
                           "'graphkit_no_such_dependency'"]
    assert not [n for n in sys.modules if n.startswith("graphkit_file_plugin_broken_")]


def test_a_missing_file_or_module(tmp_path: Path) -> None:
    registry = graphkit.builtin_registry(strict=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry.load_plugins([str(tmp_path / "nope.py"), "gk_reg_test_no_such_module"])
    assert [str(w.message) for w in caught] == [
        f"plugin 'nope.py' failed to import ({tmp_path / 'nope.py'}): no such file",
        "plugin 'gk_reg_test_no_such_module' failed to import (module "
        "gk_reg_test_no_such_module): ModuleNotFoundError: No module named "
        "'gk_reg_test_no_such_module'",
    ]
    assert registry.plugins["gk_reg_test_no_such_module"].origin == "module"
    assert_builtins_work(registry)


def test_two_file_plugins_clashing_name_both(tmp_path: Path) -> None:
    first = write(tmp_path / "first.py", SWISH)
    second = write(tmp_path / "second.py", SWISH.replace("s + x * s * (1 - s)", "0 * s"))
    registry = graphkit.builtin_registry(strict=False)
    with pytest.warns(PluginWarning) as caught:
        registry.load_plugins([str(first), str(second)])
    assert [str(w.message) for w in caught] == [
        "plugin 'second.py' op com.example::Swish@1 is registered by both plugin 'first.py' and "
        "plugin 'second.py'; keeping 'first.py''s"
    ]
    assert registry.plugins["second.py"].ops == []
    assert_swish_works(registry)  # the first one's gradient


def test_an_older_api_version_says_to_update_the_plugin() -> None:
    registry = graphkit.builtin_registry(strict=True)
    op = OpDef("Old", lambda x: x, domain="com.example", api_version=0)
    with pytest.raises(PluginError) as info:
        registry.register_plugin(_plugin(op), name="old-gates")
    assert str(info.value) == (
        "plugin 'old-gates' op com.example::Old@1 is refused: written for plugin API version 0, "
        f"but this graphkit provides version {graphkit.PLUGIN_API_VERSION} (update the plugin)"
    )
    assert op.problems() == [op.api_problem()]


def test_a_forward_saving_needs_a_callable_and_a_vjp_to_read_its_residual() -> None:
    op = OpDef("Odd", lambda x: x, domain="com.example", forward_saving=lambda x: (x, None))
    assert op.problems() == ["forward_saving is set but vjp is None: nothing reads a residual"]
    op = OpDef("Odd", lambda x: x, lambda g, y, x, *, residual: (g,), domain="com.example",
               forward_saving="not a function")  # type: ignore[arg-type]
    assert op.problems() == ["forward_saving is not callable"]
    registry = graphkit.builtin_registry(strict=True)
    with pytest.raises(PluginError, match="forward_saving is not callable"):
        registry.register_plugin(_plugin(op), name="odd-gates")


def test_cli_p_broken_plugin_is_a_warning_line_and_the_rest_works(tmp_path: Path) -> None:
    broken = write(tmp_path / "broken.py", BROKEN["api_version"][0])
    result = run("-p", str(broken), "-p", str(TWICE), "ops", "--json")
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        f"warning: plugin 'broken.py' {BROKEN['api_version'][1]}: {BROKEN['api_version'][2]}"
    ]
    ops = {op["op"] for op in json.loads(result.stdout)["ops"]}
    assert "example::Twice" in ops and "com.example::Future" not in ops
    plugins = {p["name"]: p for p in
               json.loads(run("-p", str(broken), "plugins", "--json").stdout)["plugins"]}
    assert plugins["broken.py"]["errors"] == [
        f"{BROKEN['api_version'][1]}: {BROKEN['api_version'][2]}"]
    table = run("-p", str(broken), "plugins").stdout
    assert "broken.py" in table and "refused" in table


def test_cli_p_broken_plugin_in_strict_mode_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPHKIT_STRICT_PLUGINS", "1")
    assert_error(run("-p", str(tmp_path / "nope.py"), "ops"),
                 "plugin 'nope.py' failed to import", "no such file")
    broken = write(tmp_path / "broken.py", BROKEN["hook_raises"][0])
    assert_error(run("-p", str(broken), "ops"), "plugin 'broken.py' raised while registering",
                 "cannot find libfoo.so")


# -- failures at run time ------------------------------------------------------------------------


def _plugin(*ops: OpDef) -> object:
    class Plugin:
        @graphkit.hookimpl
        def graphkit_register_ops(self, register: Callable[[OpDef], None]) -> None:
            for op in ops:
                register(op)

    return Plugin()


WHERE = 'com.example::Swish "s1" (plugin my_gates.py)'

RUNTIME = {
    "forward_raises": ("forward", "raise FloatingPointError('overflow in exp')",
                       f"{WHERE} forward: inputs (2, 2) float64: overflow in exp"),
    "vjp_raises": ("vjp", "raise KeyError('s')",
                   f"{WHERE} backward: inputs (2, 2) float64: 's'"),
    "too_many": ("vjp", "return (g, g)",
                 f"{WHERE}: vjp returned 2 gradients, expected 1 gradient (one per input)"),
    "none_at_all": ("vjp", "return ()",
                    f"{WHERE}: vjp returned 0 gradients, expected 1 gradient (one per input)"),
    "not_a_tuple": ("vjp", "return g",
                    f"{WHERE}: vjp returned a ndarray, expected a tuple of 1 gradient "
                    "(one per input)"),
    "wrong_shape": ("vjp", "return (np.ones(3),)",
                    f"{WHERE}: gradient of shape (3,) for an input of shape (2, 2) "
                    "(input 1 of 1, 'x')"),
    "same_size_other_shape": ("vjp", "return (np.ones(4),)",
                              f"{WHERE}: gradient of shape (4,) for an input of shape (2, 2) "
                              "(input 1 of 1, 'x')"),
    "transposed": ("vjp", "return (np.ones((2, 1, 4)),)",
                   f"{WHERE}: gradient of shape (2, 1, 4) for an input of shape (2, 2) "
                   "(input 1 of 1, 'x')"),
    "int_dtype": ("vjp", "return (np.ones(x.shape, dtype=np.int64),)",
                  f"{WHERE}: gradient of dtype int64 for an input of dtype float64 "
                  "(input 1 of 1, 'x')"),
    "complex_dtype": ("vjp", "return (g * (1 + 1j),)",
                      f"{WHERE}: gradient of dtype complex128 for an input of dtype float64 "
                      "(input 1 of 1, 'x')"),
    "bool_dtype": ("vjp", "return (g > 0,)",
                   f"{WHERE}: gradient of dtype bool for an input of dtype float64 "
                   "(input 1 of 1, 'x')"),
}


def gate_file(tmp_path: Path, forward: str = "return 2.0 * x",
              vjp: str = "return (2.0 * g,)") -> Path:
    return write(tmp_path / "my_gates.py", f"""
    def forward(x):
        {forward}


    def vjp(g, y, x):
        {vjp}


    @hookimpl
    def graphkit_register_ops(register):
        register(OpDef("Swish", forward, vjp, domain="com.example"))
    """)


@pytest.mark.parametrize("kind", sorted(RUNTIME))
def test_a_misbehaving_rule_names_plugin_op_and_node(kind: str, tmp_path: Path) -> None:
    rule, body, message = RUNTIME[kind]
    registry = graphkit.builtin_registry(strict=True)
    registry.load_plugin(str(gate_file(tmp_path, **{rule: body})))
    with pytest.raises(ExecutionError) as info:
        execute(swish_graph(), {"x": np.ones((2, 2))}, wrt="all", registry=registry)
    assert str(info.value) == message


@pytest.mark.parametrize("kind", ["forward_raises", "wrong_shape", "complex_dtype"])
def test_a_misbehaving_rule_from_the_cli_is_one_error_line(kind: str, tmp_path: Path) -> None:
    rule, body, message = RUNTIME[kind]
    path = gate_file(tmp_path, **{rule: body})
    graph = tmp_path / "g.json"
    graphkit.save(swish_graph(), graph)
    result = run("-p", str(path), "execute", str(graph), "-i", "x=[[1,2],[3,4]]", "--grad")
    assert assert_error(result) == f"error: {graph}: {message}"


@pytest.mark.parametrize(("vjp", "shape", "expected"), [
    ("return (np.broadcast_to(2.0 * g, (3, 2, 2)),)", (2, 2), 6.0),  # broadcast: summed back
    ("return ((2.0 * g).sum(axis=0, keepdims=True).repeat(2, 0),)", (1, 2), 4.0),
    ("return ((2.0 * g).reshape(-1),)", (2, 1), 2.0),  # only axes of size 1 differ
    ("return ((2.0 * g).astype(np.float32),)", (2, 2), 2.0),  # float32: cast back
    ("return (2.0,)", (), 2.0),  # a Python number
    ("return ((2.0 * g).tolist(),)", (2, 2), 2.0),  # a list
])
def test_gradients_graphkit_can_fix_are_accepted(
    vjp: str, shape: tuple[int, ...], expected: float, tmp_path: Path
) -> None:
    registry = graphkit.builtin_registry(strict=True)
    registry.load_plugin(str(gate_file(tmp_path, vjp=vjp)))
    result = execute(swish_graph(), {"x": np.ones(shape)}, wrt="all", registry=registry)
    grad = result.gradients["x"]
    assert grad.shape == shape and grad.dtype == np.float64
    np.testing.assert_array_equal(grad, np.full(shape, expected))


def test_a_per_input_rule_names_the_input() -> None:
    op = OpDef("Affine", lambda a, b: a * b,
               (lambda g, y, a, b: g * b, lambda g, y, a, b: np.ones((5,))),
               domain="com.example", num_inputs=2)
    registry = graphkit.builtin_registry(strict=True)
    registry.register_plugin(_plugin(op), name="affine-gates")
    b = GraphBuilder("affine")
    x, w = b.inputs("x", "w")
    b.output(b.op("com.example::Affine", x, w, name="layer").sum(), "f")
    graph = b.build()
    ok = execute(graph, {"x": np.ones(3), "w": np.ones(3)}, wrt=["x"], registry=registry)
    np.testing.assert_array_equal(ok.gradients["x"], np.ones(3))
    with pytest.raises(ExecutionError) as info:
        execute(graph, {"x": np.ones(3), "w": np.ones(3)}, wrt=["w"], registry=registry)
    assert str(info.value) == ('com.example::Affine "layer" (plugin affine-gates): gradient of '
                               "shape (5,) for an input of shape (3,) (input 2 of 2, 'w')")


def test_a_rule_reading_a_python_number_from_another_plugin(tmp_path: Path) -> None:
    """A forward that returns a plain float feeds the next rule's input: still conformed."""
    op = OpDef("Total", lambda x: float(np.sum(x)), lambda g, y, x: (np.ones(x.shape) * g,),
               domain="com.example")
    registry = graphkit.builtin_registry(strict=True)
    registry.register_plugin(_plugin(op), name="totals")
    registry.load_plugin(str(gate_file(tmp_path)))
    b = GraphBuilder("chain")
    total = b.op("com.example::Total", b.input("x"), name="total")
    b.output(b.op("com.example::Swish", total, name="s1"), "f")
    result = execute(b.build(), {"x": np.ones(3)}, wrt="all", registry=registry)
    np.testing.assert_array_equal(result.gradients["x"], [2.0, 2.0, 2.0])
