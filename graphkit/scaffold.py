"""A new plugin package, ready to pip-install: `graphkit new-plugin NAME` writes these files.

    pyproject.toml          distribution NAME, entry point in the group `graphkit`
    MODULE/__init__.py      one example gate (Swish): forward, gradient, sample, ONNX body
    tests/test_gates.py     graphkit.testing's checks of every gate, and one graph test
    swish.json              a graph using the gate, for `graphkit execute` and `export`
    README.md               how to install, use, check and export it

MODULE is NAME with '-' turned to '_'; it is also the entry-point name, so
`graphkit check-plugin MODULE` and GRAPHKIT_LOAD_PLUGINS=MODULE find it. docs/plugins.md builds
the same files by hand (plugins/graphkit-hello-gate is `new-plugin graphkit-hello-gate
--domain hello`).
"""

from __future__ import annotations

import keyword
import os
import re
import secrets
import shutil
from pathlib import Path
from string import Template

from graphkit.errors import GraphkitError

OWN_NAMES = frozenset({"graphkit", "graphkit-backprop", "graphkit_backprop"})
"""Names a plugin must not take: they would shadow graphkit itself."""

STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})
"""The built-in ops' and ONNX's own domains: a plugin's ops need a domain of their own."""


class ScaffoldError(GraphkitError):
    """A plugin package cannot be written: bad name or domain, or the folder is taken."""


def module_name(name: str) -> str:
    """The import name of distribution `name`: '-' becomes '_'."""
    return name.replace("-", "_")


def check_name(name: str) -> str:
    """`name` if it is a distribution name whose module name is importable, else ScaffoldError."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name) or name[-1] in "-_":
        raise ScaffoldError(
            f"{name!r} is not a valid plugin name: use letters, digits, '-' and '_', starting "
            "with a letter and ending with a letter or digit (e.g. graphkit-my-gates)"
        )
    if keyword.iskeyword(module_name(name)):
        raise ScaffoldError(f"{name!r} is not a valid plugin name: its module name "
                            f"{module_name(name)!r} is a Python keyword")
    if module_name(name).lower() in OWN_NAMES:
        raise ScaffoldError(f"{name!r} is not a valid plugin name: it would shadow graphkit "
                            "itself (e.g. graphkit-my-gates)")
    return name


def check_domain(domain: str) -> str:
    """`domain` if the gates may use it (a dotted name, not a standard one), else ScaffoldError."""
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*", domain):
        raise ScaffoldError(f"domain {domain!r} is not a dotted name (e.g. com.example.gates)")
    if domain in STANDARD_DOMAINS:
        raise ScaffoldError(f"domain {domain!r} belongs to the built-in ops and ONNX; give your "
                            "gates a domain of their own (e.g. com.example.gates)")
    return domain


def plugin_files(name: str, domain: str | None = None) -> dict[str, str]:
    """The files of plugin package `name` (relative path -> text); domain: the module name."""
    module = module_name(check_name(name))
    values = {"distribution": name, "module": module,
              "domain": check_domain(domain if domain is not None else module)}
    return {Template(path).substitute(values): Template(text).substitute(values)
            for path, text in TEMPLATES.items()}


def write_plugin(name: str, directory: str | os.PathLike[str] = ".",
                 domain: str | None = None) -> Path:
    """Write plugin package `name` into DIRECTORY/NAME; returns that folder.

    Refuses (ScaffoldError) a folder that exists and is not empty; the files appear all at
    once, so a failure leaves nothing half-written.
    """
    files = plugin_files(name, domain)
    parent = Path(directory)
    target = parent / name
    if not parent.is_dir():
        raise ScaffoldError(f"cannot write {target}: folder {parent} does not exist")
    if target.exists() and not (target.is_dir() and not any(target.iterdir())):
        raise ScaffoldError(f"{target} already exists and is not an empty folder: choose "
                            "another name or --dir, or remove it first")
    staging = parent / f".{name}.{secrets.token_hex(4)}.tmp"
    try:
        staging.mkdir()
    except OSError as exc:
        raise ScaffoldError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        for path, text in files.items():
            (staging / path).parent.mkdir(parents=True, exist_ok=True)
            (staging / path).write_text(text, encoding="utf-8")
        if target.is_dir():
            target.rmdir()  # empty, checked above
        staging.rename(target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ScaffoldError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


PYPROJECT = '''\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "$distribution"
version = "0.1.0"
description = "The Swish gate for graphkit"
requires-python = ">=3.11"
dependencies = ["graphkit-backprop"]

[project.optional-dependencies]
test = ["pytest", "hypothesis", "onnxruntime"]

[project.entry-points.graphkit]
$module = "$module"

[tool.setuptools]
packages = ["$module"]

[tool.pytest.ini_options]
testpaths = ["tests"]

[tool.ruff]  # the package's own lint settings, wherever ruff runs from
line-length = 88
'''

MODULE = '''\
"""$distribution: the Swish gate, x * sigmoid(beta x), as a graphkit plugin."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from graphkit import GraphBuilder, Meta, OpDef, Value, hookimpl
from graphkit.onnxmap import OnnxMapping
from pydantic import BaseModel, ConfigDict

DOMAIN = "$domain"


class SwishAttributes(BaseModel):
    """Swish's attributes, checked when a graph is validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    beta: float = 1.0


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # 1 / (1 + exp(-z)), without overflow


def forward(x: np.ndarray, beta: float) -> np.ndarray:
    return x * sigmoid(beta * x)


def vjp(g: np.ndarray, y: Meta, x: np.ndarray, beta: float) -> tuple[np.ndarray]:
    """The upstream gradient times the local one, d/dx x s(bx) = s + b x s (1 - s)."""
    s = sigmoid(beta * x)
    return (g * (s + beta * x * s * (1.0 - s)),)


def sample(rng: np.random.Generator) -> tuple[list[np.ndarray], dict[str, float]]:
    """Inputs and attributes at which the checks compare vjp with finite differences."""
    return [rng.standard_normal((3, 4))], {"beta": float(rng.uniform(0.5, 2.0))}


def decomposition(g: GraphBuilder, x: Value, beta: Value) -> Value:
    """Swish in built-in ops: how an exported ONNX model computes it."""
    return x * (beta * x).sigmoid()


swish = OpDef(
    name="Swish",
    domain=DOMAIN,
    num_inputs=1,
    attributes=SwishAttributes,
    forward=forward,
    vjp=vjp,
    saves=frozenset({"inputs"}),  # vjp reads x; y reaches it as a Meta (shape, dtype)
    sample=sample,
    onnx=OnnxMapping("Swish", domain=DOMAIN, decomposition=decomposition),
    doc="x * sigmoid(beta x)",
)


@hookimpl
def graphkit_register_ops(register: Callable[[OpDef], None]) -> None:
    """graphkit calls this once, when it loads the plugin."""
    register(swish)
'''

TESTS = '''\
"""graphkit's checks of every gate in the plugin, and one graph that uses it."""

import graphkit
import numpy as np
from graphkit.testing import gate_tests

import $module

test_gates = gate_tests("$module")


def test_swish_in_a_graph_with_gradients() -> None:
    registry = graphkit.builtin_registry()
    registry.register_plugin($module)
    g = graphkit.GraphBuilder("f")
    x = g.input("x")
    g.output(3.0 * g.op("$domain::Swish", x, beta=2.0), "f")
    graph = g.build()
    result = graphkit.execute(graph, {"x": [0.0, 1.0]}, wrt="all", registry=registry)
    s = 1 / (1 + np.exp(-2.0))  # sigmoid(beta x) at x = 1
    np.testing.assert_allclose(result.outputs["f"], [0.0, 3 * s])
    np.testing.assert_allclose(result.gradients["x"], [1.5, 3 * (s + 2 * s * (1 - s))])
'''

GRAPH = '''\
{
  "format_version": 1,
  "name": "swish",
  "inputs": [{"name": "x", "shape": [3]}],
  "outputs": ["y"],
  "nodes": [
    {"op": "$domain::Swish", "inputs": ["x"], "outputs": ["y"], "attributes": {"beta": 2.0}}
  ]
}
'''

README = '''\
# $distribution

A graphkit plugin with one gate, `$domain::Swish`: y = x * sigmoid(beta x), attribute `beta`
(default 1). It brings its forward rule, its gradient (a vector-Jacobian product), sample
inputs for the gradient check, and a decomposition into built-in ops, so an exported ONNX model
runs in any ONNX runtime.

```sh
pip install -e '.[test]'
graphkit ops                                      # lists $domain::Swish
graphkit execute swish.json -i 'x=[-1,0,2]' --grad
graphkit check-plugin $module                     # the gate's checks, as a table
pytest                                            # the same checks, and a graph test
graphkit export swish.json -o swish.onnx          # onnxruntime runs it as it is
```

To add a gate, write its `OpDef` beside `swish` in `$module/__init__.py` and register it
in `graphkit_register_ops`: `gate_tests` in tests/test_gates.py checks it with no new test.
See graphkit's docs/plugins.md for the OpDef contract.
'''

TEMPLATES: dict[str, str] = {
    "pyproject.toml": PYPROJECT,
    "$module/__init__.py": MODULE,
    "swish.json": GRAPH,
    "tests/test_gates.py": TESTS,
    "README.md": README,
}
"""Relative path -> text, both string.Template with $distribution, $module and $domain."""
