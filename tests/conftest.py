"""Shared fixtures: a private built-in registry per test, no plugin env leaking in, and the
hypothesis profile that keeps the property tests quick on a small machine."""

from __future__ import annotations

import gc
import os
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import graphkit

settings.register_profile(
    "graphkit",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("graphkit-ci", parent=settings.get_profile("graphkit"), derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "graphkit"))

PLUGIN_ENV = ("GRAPHKIT_LOAD_PLUGINS", "GRAPHKIT_DISABLE_PLUGINS", "GRAPHKIT_STRICT_PLUGINS",
              "GRAPHKIT_PLUGINS")


@pytest.fixture(autouse=True)
def _clean_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests decide the plugin policy themselves; the developer's shell must not."""
    for name in PLUGIN_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def registry() -> graphkit.Registry:
    """The built-in ops only, strict: a test never sees installed plugins or global state."""
    return graphkit.builtin_registry(strict=True)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def collector_on() -> Any:
    """Python's cyclic garbage collector on for the test, as it was after."""
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()
