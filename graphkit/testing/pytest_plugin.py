"""graphkit's pytest plugin (entry point `pytest11`): a marker and a fixture for gate tests.

    @pytest.mark.graphkit_gates("my_plugin")      # check_gate options as keywords, if any
    def test_gate(gate):
        gate.check()

collects one test per op the plugin registers (ids: the ops' qualnames). Plugins, hypothesis
and onnx load only for a test with the marker, so the hook costs unmarked tests nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from graphkit.testing.suite import Gate

MARKER = "graphkit_gates"
FIXTURE = "gate"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(plugin, **check_kwargs): run the test once per op the graphkit plugin "
        f"registers, the op given by the `{FIXTURE}` fixture (gate.check() runs check_gate)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None:
        return
    where = metafunc.definition.nodeid
    if len(marker.args) != 1:
        raise pytest.Collector.CollectError(
            f"{where}: @pytest.mark.{MARKER} takes one plugin (a name, path or module), got "
            f"{len(marker.args)} arguments")
    if FIXTURE not in metafunc.fixturenames:
        raise pytest.Collector.CollectError(
            f"{where}: a test marked {MARKER} takes the `{FIXTURE}` fixture")
    from graphkit.errors import PluginError
    from graphkit.testing.plugins import plugin_gates

    try:
        gates = plugin_gates(marker.args[0])
    except PluginError as exc:  # a collection error of this test, without pytest's traceback
        raise pytest.Collector.CollectError(f"{where}: {exc}") from exc
    metafunc.parametrize(FIXTURE, [(op, dict(marker.kwargs)) for op in gates],
                         ids=[op.qualname for op in gates], indirect=True)


@pytest.fixture
def gate(request: pytest.FixtureRequest) -> Gate:
    """The op under test, for a test marked graphkit_gates(plugin)."""
    param: Any = getattr(request, "param", None)
    if param is None:
        pytest.fail(f"the `{FIXTURE}` fixture needs @pytest.mark.{MARKER}(plugin) on the test",
                    pytrace=False)
    from graphkit.testing.suite import Gate

    op, check_kwargs = param
    return Gate(op, **check_kwargs)
