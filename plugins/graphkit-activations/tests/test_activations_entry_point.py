"""Installed (pip install plugins/graphkit-activations), graphkit finds the plugin through its
entry point. These tests fail, not skip, when the package imports but its entry point does not
register the ops: that is exactly the packaging mistake they are here to catch."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import graphkit
import pytest
from _support import DOMAIN, OPS

import graphkit_activations

QUALNAMES = {f"{DOMAIN}::{name}@1" for name in OPS}
PLUGIN_ENV = ("GRAPHKIT_LOAD_PLUGINS", "GRAPHKIT_DISABLE_PLUGINS", "GRAPHKIT_PLUGINS")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No variable that narrows which installed plugins load."""
    for name in PLUGIN_ENV:
        monkeypatch.delenv(name, raising=False)


def test_the_distribution_declares_the_entry_point() -> None:
    try:
        dist = importlib.metadata.distribution("graphkit-activations")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("graphkit_activations imports, but the graphkit-activations distribution "
                    "is not installed: pip install -e plugins/graphkit-activations")
    points = [(e.name, e.value) for e in dist.entry_points if e.group == "graphkit"]
    assert points == [("activations", "graphkit_activations")]


def test_load_registry_has_every_op_from_the_entry_point(clean_env: None) -> None:
    registry = graphkit.load_registry()
    info = registry.plugins.get("activations")
    assert info is not None, "the entry point 'activations' (group graphkit) was not loaded"
    assert info.errors == []
    assert info.distribution == "graphkit-activations"
    assert set(info.ops) == QUALNAMES
    for op in graphkit_activations.OPS:
        assert registry.lookup(f"{DOMAIN}::{op.name}@1") is op
        assert registry.owner(op) == "activations"


def test_default_registry_runs_a_graph_without_registering_anything(clean_env: None) -> None:
    """In a fresh process, as a user's script would: no registry passed anywhere."""
    script = (
        "import graphkit\n"
        "g = graphkit.GraphBuilder('f')\n"
        "x = g.input('x', shape=[])\n"
        f"g.output(g.op('{DOMAIN}::GELU', x), 'y')\n"
        "print(float(graphkit.execute(g.build(), {'x': 1.0}).outputs['y']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=_env(), check=False)
    assert done.returncode == 0, done.stderr
    assert round(float(done.stdout), 6) == 0.841192


def test_graphkit_ops_lists_them(clean_env: None) -> None:
    command = Path(sys.executable).with_name("graphkit")
    done = subprocess.run([str(command), "ops", "--json"], capture_output=True, text=True,
                          env=_env(), check=False)
    assert done.returncode == 0, done.stderr
    rows = [r for r in json.loads(done.stdout)["ops"] if r["domain"] == DOMAIN]
    assert {f"{r['domain']}::{r['name']}@{r['version']}" for r in rows} == QUALNAMES
    assert {r["plugin"] for r in rows} == {"activations"}
    assert {r["name"]: r["inputs"] for r in rows}["Maxout"] == 5


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in PLUGIN_ENV}
