from graphkit.testing import gate_tests

test_gates = gate_tests("activations")
