"""graphkit's checks of every gate in the plugin, and one graph that uses it."""

import graphkit
import numpy as np
from graphkit.testing import gate_tests

import graphkit_hello_gate

test_gates = gate_tests("graphkit_hello_gate")


def test_swish_in_a_graph_with_gradients() -> None:
    registry = graphkit.builtin_registry()
    registry.register_plugin(graphkit_hello_gate)
    g = graphkit.GraphBuilder("f")
    x = g.input("x")
    g.output(3.0 * g.op("hello::Swish", x, beta=2.0), "f")
    graph = g.build()
    result = graphkit.execute(graph, {"x": [0.0, 1.0]}, wrt="all", registry=registry)
    s = 1 / (1 + np.exp(-2.0))  # sigmoid(beta x) at x = 1
    np.testing.assert_allclose(result.outputs["f"], [0.0, 3 * s])
    np.testing.assert_allclose(result.gradients["x"], [1.5, 3 * (s + 2 * s * (1 - s))])
