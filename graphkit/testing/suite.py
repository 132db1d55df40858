"""`gate_tests`: a plugin package's whole conformance test, one pytest test per op.

    from graphkit.testing import gate_tests

    test_gates = gate_tests("my_plugin")

`Gate` is one op under test (also what the pytest plugin's `gate` fixture gives): `check()`
fails the test with every failed check listed, without a traceback into graphkit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphkit.opdef import OpDef
from graphkit.testing.checks import check_gate
from graphkit.testing.plugins import plugin_gates
from graphkit.testing.report import GateReport


class Gate:
    """One op of a plugin, with the check_gate options its test runs with."""

    def __init__(self, op: OpDef, **check_kwargs: Any) -> None:
        self.op = op
        self.check_kwargs = check_kwargs

    def __repr__(self) -> str:
        return f"Gate({self.op.qualname})"

    def report(self, **overrides: Any) -> GateReport:
        """check_gate's report, for tests that look at single checks."""
        return check_gate(self.op, **{**self.check_kwargs, **overrides})

    def check(self, **overrides: Any) -> GateReport:
        """The report; fails the running test, listing the failed checks, when one fails."""
        report = self.report(**overrides)
        if not report.ok:
            import pytest

            pytest.fail(report.summary(), pytrace=False)
        return report


def gate_tests(plugin: Any, **check_kwargs: Any) -> Callable[[Gate], None]:
    """A pytest test function parametrized with one test per op `plugin` registers (ids: the
    ops' qualnames); `check_kwargs` go to check_gate. The plugin loads at collection."""
    import pytest

    gates = [Gate(op, **check_kwargs) for op in plugin_gates(plugin)]

    @pytest.mark.parametrize("gate", gates, ids=[g.op.qualname for g in gates])
    def test_gate(gate: Gate) -> None:
        gate.check()

    test_gate.__doc__ = f"Each op of plugin {plugin!r} passes graphkit's gate checks."
    return test_gate
