from __future__ import annotations

import graphkit
import pytest
from _support import make_registry


@pytest.fixture(scope="session")
def registry() -> graphkit.Registry:
    return make_registry()
