"""Scalar graphs against micrograd: the lecture's sigmoid neuron and a long add-mul-tanh chain.

Both sides do the same work per call: graphkit runs a graph it compiled once (forward and
backward, `execute(plan, inputs, wrt=...)`); micrograd, having no separate graph, builds the
expression and backpropagates through it, as its users do.
"""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

import graphkit as gk
from benchmarks.table import Row
from benchmarks.timing import compare, per_call, progress, steady
from graphkit.model import Constant, Graph, Node, ValueInfo

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NEURON_INPUTS = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}
CHAIN_OPS = 10_000
CHAIN_X = 0.3
US_PER_OP = 3e-6
"""Target: a scalar chain runs forward and backward in at most 3 us per op."""
VERSUS_MICROGRAD = 1 / 3
"""Target: at least 3x faster than micrograd per op."""


def sigmoid_neuron_graph() -> gk.Graph:
    return gk.load(EXAMPLES / "sigmoid_neuron.json")


def chain_graph(n: int) -> Graph:
    """n scalar ops alternating x + 0.5, x * 0.999, tanh x (micrograd_ref.scalar_chain's
    expression), the two numbers graph constants; input `x` (float64, a scalar), output `y`."""
    nodes = []
    previous = "x"
    for i in range(n):
        out = "y" if i == n - 1 else f"v{i + 1}"
        kind = i % 3
        if kind == 0:
            nodes.append(Node(name=out, op="Add", inputs=[previous, "half"], outputs=[out]))
        elif kind == 1:
            nodes.append(Node(name=out, op="Mul", inputs=[previous, "decay"], outputs=[out]))
        else:
            nodes.append(Node(name=out, op="Tanh", inputs=[previous], outputs=[out]))
        previous = out
    return Graph(
        name=f"chain_{n}",
        inputs=[ValueInfo(name="x", dtype="float64", shape=[])],
        outputs=[ValueInfo(name="y", dtype="float64", shape=[])],
        constants=[Constant(name="half", shape=[], data=0.5),
                   Constant(name="decay", shape=[], data=0.999)],
        nodes=nodes,
    )


def chain_gradient(plan: Any, x: float = CHAIN_X) -> float:
    """dy/dx of the chain by graphkit (one forward and backward run)."""
    return float(gk.execute(plan, {"x": x}, wrt=["x"]).gradients["x"])


def neuron_gradients(plan: Any) -> list[float]:
    """The neuron's gradients of w0, x0, w1, x1, w2 by graphkit (forward and backward)."""
    result = gk.execute(plan, NEURON_INPUTS, wrt="all")
    return [float(result.gradients[name]) for name in NEURON_INPUTS]


def _micrograd() -> Any:
    try:
        from benchmarks import micrograd_ref
    except ImportError:
        return None
    return micrograd_ref


def _interpreted(fn: Any) -> float:
    """Seconds per call of `fn` with plans kept interpreted (GRAPHKIT_COMPILE=never)."""
    executor = importlib.import_module("graphkit.execute")
    mode, executor.COMPILE = executor.COMPILE, "never"
    try:
        return per_call(fn, 0.2)
    finally:
        executor.COMPILE = mode


def neuron_rows(rounds: int) -> list[Row]:
    plan = gk.plan_for(sigmoid_neuron_graph())
    interpreted = _interpreted(lambda: gk.execute(plan, NEURON_INPUTS, wrt="all"))
    warm = steady(lambda: gk.execute(plan, NEURON_INPUTS, wrt="all"), plan)
    absolute = per_call(lambda: gk.execute(plan, NEURON_INPUTS, wrt="all"), 0.2)
    rows = [Row("sigmoid neuron (8 gates) fwd+bwd, per call", absolute,
                note=f"{warm}; interpreted: {interpreted * 1e6:.1f} us")]
    mg = _micrograd()
    name = "sigmoid neuron fwd+bwd vs micrograd"
    if mg is None:
        return rows + [Row(name, None, target=1, strict=True, failed=True,
                           note="micrograd is not installed (pip install micrograd)")]
    expected = mg.sigmoid_neuron(**NEURON_INPUTS)
    np.testing.assert_allclose(neuron_gradients(plan), expected, rtol=1e-12)
    ours, theirs = compare(lambda: gk.execute(plan, NEURON_INPUTS, wrt="all"),
                           lambda: mg.sigmoid_neuron(**NEURON_INPUTS), rounds)
    collected = per_call(lambda: mg.sigmoid_neuron(**NEURON_INPUTS), 0.2, collector=True)
    progress(f"scalar: neuron {ours * 1e6:.1f} us, micrograd {theirs * 1e6:.1f} us "
             f"({collected * 1e6:.1f} with the garbage collector on)")
    rows.append(Row(name, ours, theirs, target=1, strict=True,
                    note=f"garbage collector off in both, as timeit; micrograd with it on: "
                         f"{collected * 1e6:.1f} us"))
    return rows


def chain_rows(rounds: int, n: int = CHAIN_OPS) -> list[Row]:
    plan = gk.plan_for(chain_graph(n))
    name = f"scalar chain ({n:,} ops) fwd+bwd per op"
    mg = _micrograd()
    if mg is None:
        ours = per_call(lambda: chain_gradient(plan), 0.2) / n
        return [
            Row(f"{name}, absolute", ours, ratio=ours * 1e6, target=US_PER_OP * 1e6,
                ratio_unit="us/op"),
            Row(f"{name} vs micrograd", ours, target=VERSUS_MICROGRAD, failed=True,
                note="micrograd is not installed (pip install micrograd)"),
        ]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * n + 1000))  # micrograd's topological sort recurses
    try:
        expected = mg.scalar_chain(CHAIN_X, n)
        got = chain_gradient(plan)
        interpreted = _interpreted(lambda: chain_gradient(plan)) / n
        warm = steady(lambda: chain_gradient(plan), plan)
        if not math.isclose(got, expected, rel_tol=1e-9):
            raise AssertionError(f"chain gradient: graphkit {got}, micrograd {expected}")
        ours, theirs = compare(lambda: chain_gradient(plan),
                               lambda: mg.scalar_chain(CHAIN_X, n), rounds)
        collected = per_call(lambda: mg.scalar_chain(CHAIN_X, n), 0.2, collector=True)
    finally:
        sys.setrecursionlimit(limit)
    ours, theirs, collected = ours / n, theirs / n, collected / n
    progress(f"scalar: chain {ours * 1e6:.2f} us/op, micrograd {theirs * 1e6:.2f} us/op "
             f"({collected * 1e6:.2f} with the garbage collector on)")
    return [
        Row(f"{name}, absolute", ours, ratio=ours * 1e6, target=US_PER_OP * 1e6,
            ratio_unit="us/op", note=f"{warm}; interpreted: {interpreted * 1e6:.2f} us/op"),
        Row(f"{name} vs micrograd", ours, theirs, target=VERSUS_MICROGRAD,
            note=f"garbage collector off in both, as timeit; micrograd with it on: "
                 f"{collected * 1e6:.2f} us/op"),
    ]


def rows(quick: bool, rounds: int) -> list[Row]:
    return neuron_rows(rounds) + chain_rows(max(3, rounds // 2) if quick else rounds)
