"""graphkit's conformance kit for gates: the checks graphkit runs on its own ops, for any op.

    from graphkit.testing import check_gate, gate_tests, plugin_gates

    report = check_gate(my_op)            # GateReport: .ok, .checks (Check name/status/detail)
    test_gates = gate_tests("my_plugin")  # in a test module: one pytest test per op

hypothesis and pytest are imported only when used (they are test dependencies).
"""

from graphkit.testing.checks import CHECKS, check_gate
from graphkit.testing.plugins import plugin_gates
from graphkit.testing.report import Check, GateReport
from graphkit.testing.suite import Gate, gate_tests

__all__ = ["CHECKS", "Check", "Gate", "GateReport", "check_gate", "gate_tests", "plugin_gates"]
