"""Backward plans: which steps record for a (output, wrt) pair, and which of their inputs want a
gradient, against the same question answered with networkx on random DAGs."""

from __future__ import annotations

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

import graphkit
from graphkit import GraphBuilder


@st.composite
def dags(draw: st.DrawFn) -> tuple[graphkit.Graph, tuple[str, ...], str]:
    """A graph of Add/Mul nodes, each reading two random earlier values; wrt and of drawn."""
    b = GraphBuilder("dag")
    values = list(b.inputs("a", "b", "c"))
    for i in range(draw(st.integers(1, 25))):
        left = values[draw(st.integers(0, len(values) - 1))]
        right = values[draw(st.integers(0, len(values) - 1))]
        op = draw(st.sampled_from(["Add", "Mul"]))
        values.append(b.op(op, left, right, name=f"n{i}"))
    outputs = draw(st.lists(st.integers(3, len(values) - 1), min_size=1, max_size=3,
                            unique=True))
    for k, index in enumerate(outputs):
        b.output(values[index], f"out{k}")
    graph = b.build()
    names = [info.name for info in graph.inputs] + [n.outputs[0] for n in graph.nodes]
    wrt = draw(st.lists(st.sampled_from(names), min_size=1, max_size=4, unique=True))
    of = graph.outputs[draw(st.integers(0, len(graph.outputs) - 1))].name
    return graph, tuple(wrt), of


@settings(max_examples=150, deadline=None)
@given(dags())
def test_recorded_steps_are_those_on_a_path_from_wrt_to_the_output(case) -> None:
    graph, wrt, of = case
    plan = graphkit.plan_for(graph)
    g = plan.resolved.nx
    reached = set(wrt).union(*(nx.descendants(g, name) for name in wrt))
    needed = {of} | nx.ancestors(g, of)
    expected = {}
    for position, step in enumerate(plan.steps):
        node = graph.nodes[step.node]
        if node.outputs[0] in needed:
            mask = tuple(value in reached for value in node.inputs)
            if any(mask):
                expected[position] = mask
    backward = plan.backward_plan(of, wrt)
    assert backward.wants == expected
    assert backward.record == frozenset(expected)
    kept = {plan.slots[name] for name in wrt} | {plan.slots[of]}
    for frees, original in zip(backward.free_after, plan.free_after, strict=True):
        assert set(frees) == set(original) - kept
