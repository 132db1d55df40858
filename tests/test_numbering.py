"""Numbering a sequence's values without a dict (numbering.py) gives what the dict gives, or
hands the graph back to it; the lazy name -> slot mapping answers as a dict would."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_load_fast_paths import all_graphs, chain_graph, dag_graph

import graphkit
import graphkit.graph as graph_module
import graphkit.numbering as numbering
import graphkit.sweep as sweep
from graphkit import GraphValidationError, ValueInfo, execute, validate
from graphkit.numbering import Slots, number_sequence
from graphkit.plan import compile_plan


def by_dict(names: list[str], inputs_of: list[list[str]]) -> Any:
    """What the dict path finds: None if a name is given twice or read and never given."""
    slots = dict(zip(names, range(len(names)), strict=True))
    if len(slots) != len(names) or any(n not in slots for ins in inputs_of for n in ins):
        return None
    return slots, [tuple(slots[n] for n in ins) for ins in inputs_of]


@st.composite
def sequences(draw: Any) -> tuple[list[str], int, list[list[str]], list[int], bool]:
    """Values numbered in order (inputs and constants, then each node's outputs) and the names
    each node reads: mostly what a sequence reads, sometimes not (an earlier output, a name
    given twice, a name nobody gives). Also whether it is a sequence with distinct names."""
    base = draw(st.integers(0, 3))
    names = [f"in{i}" for i in range(base)]
    inputs_of, out_counts = [], []
    sequence = True
    for k in range(draw(st.integers(1, 12))):
        outs = draw(st.integers(1, 2))
        reads = []
        for _ in range(draw(st.integers(0, 3))):
            kind = draw(st.sampled_from(["previous", "previous", "input", "earlier", "none"]))
            if kind == "previous" and len(names) > base or kind == "input" and base:
                reads.append(names[-1] if kind == "previous" else names[draw(
                    st.integers(0, base - 1))])
            elif kind == "earlier" and len(names) > base + 1:
                reads.append(names[draw(st.integers(base, len(names) - 2))])
                sequence = sequence and reads[-1] in names[:base] + names[-1:]
            elif kind == "none":
                reads.append("nobody")
                sequence = False
        inputs_of.append(reads)
        out_counts.append(outs)
        for j in range(outs):
            twice = draw(st.integers(0, 9)) == 0 and len(names) > 0
            names.append(names[draw(st.integers(0, len(names) - 1))] if twice else f"v{k}_{j}")
            sequence = sequence and not twice
    return names, base, inputs_of, out_counts, sequence


@settings(max_examples=300, deadline=None)
@given(sequences())
def test_a_numbered_sequence_is_what_the_dict_finds(case: Any) -> None:
    names, base, inputs_of, out_counts, sequence = case
    found = number_sequence(names, base, inputs_of, np.array(out_counts, np.intp), names[-1:])
    expected = by_dict(names, inputs_of)
    if sequence:
        assert found is not None
    if found is not None:
        assert expected is not None, "a graph the dict refuses was numbered"
        slots, node_slots = found
        assert dict(slots.items()) == expected[0] and node_slots == expected[1]
        assert all(type(s) is int for ins in node_slots for s in ins)


def test_a_graph_that_stops_being_a_sequence_after_the_probe_goes_to_the_dict() -> None:
    names = ["x"] + [f"v{k}" for k in range(3 * numbering._PROBE)]
    inputs_of = [[names[k]] for k in range(len(names) - 1)]
    ones = np.ones(len(inputs_of), np.intp)
    assert number_sequence(names, 1, inputs_of, ones, []) is not None
    inputs_of[2 * numbering._PROBE] = [names[5]]  # an output far back
    assert number_sequence(names, 1, inputs_of, ones, []) is None
    twice = [*names[:-1], names[7]]  # the last output given the name of an earlier one
    assert number_sequence(twice, 1, inputs_of[:1], ones[:1], []) is None


def test_slots_answer_runs_without_the_full_dict_and_anything_else_with_it() -> None:
    names = ["x", "w", "a", "b", "y"]
    slots = Slots(names, {"x": 0, "w": 1, "y": 4})
    assert slots["x"] == 0 and slots["y"] == 4 and "w" in slots and len(slots) == 5
    assert list(slots) == names and list(slots.values()) == [0, 1, 2, 3, 4]
    assert slots._all is None  # (nothing built yet)
    assert slots["b"] == 3 and slots.get("a") == 2 and slots.get("zz") is None
    assert "zz" not in slots and slots == dict(zip(names, range(5), strict=True))
    with pytest.raises(KeyError):
        slots["zz"]


@pytest.fixture
def sequences_numbered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Number every graph's values as a sequence's when it is one, however small."""
    monkeypatch.setattr(sweep, "SEQUENCE_NAMES", 0)


@pytest.mark.parametrize("index", range(len(all_graphs())))
def test_small_graphs_numbered_as_sequences_validate_and_plan_alike(
    index: int, sequences_numbered: None
) -> None:
    graph = all_graphs()[index]
    registry = graphkit.builtin_registry(strict=True)
    fast = sweep.resolve_in_order(graph, registry)
    assert fast is not None and fast == graph_module._validate(graph, registry)
    a, b = compile_plan(fast), compile_plan(graph_module._validate(graph, registry))
    assert dict(a.slots.items()) == b.slots and list(a.slots) == list(b.slots)
    assert [(s.ins, s.out) for s in a.steps] == [(s.ins, s.out) for s in b.steps]


def test_a_chain_numbered_as_a_sequence_runs_and_differentiates(
    sequences_numbered: None
) -> None:
    graph = chain_graph(30)
    resolved = validate(graph)
    assert isinstance(resolved.slots, Slots)  # (the sequence's numbering was taken)
    plan = compile_plan(resolved)
    middle = graph.nodes[10].outputs[0]
    ours = execute(plan, {"x": 0.3}, wrt=["x", middle])
    theirs = execute(compile_plan(graph_module._validate(graph, graphkit.default_registry())),
                     {"x": 0.3}, wrt=["x", middle])
    assert ours.outputs == theirs.outputs and ours.gradients == theirs.gradients
    assert execute(plan, {"x": 0.3}, wrt=["x"], of=middle).gradients == \
        execute(graph, {"x": 0.3}, wrt=["x"], of=middle).gradients


def test_a_dag_is_no_sequence_and_invalid_graphs_are_named(sequences_numbered: None) -> None:
    assert not isinstance(validate(dag_graph()).slots, Slots)
    graph = chain_graph(6)
    undefined = graph.model_copy(update={"nodes": [
        *graph.nodes[:3], graph.nodes[3].model_copy(update={"inputs": ["nowhere"]}),
        *graph.nodes[4:]]})
    with pytest.raises(GraphValidationError, match="nowhere"):
        validate(undefined)
    twice = graph.model_copy(update={"nodes": [
        *graph.nodes[:5], graph.nodes[5].model_copy(update={"outputs": [graph.nodes[1].outputs[0]],
                                                            "name": "again"})]})
    with pytest.raises(GraphValidationError, match="is defined 2 times"):
        validate(twice)


def test_a_sequences_outputs_and_inputs_are_found_without_the_full_dict(
    sequences_numbered: None
) -> None:
    """What runs ask for (inputs, constants, outputs, wanted gradients of them) costs no
    dict of every name: at a million names building it would cost half a second."""
    graph = chain_graph(30)
    middle = graph.nodes[10].outputs[0]
    graph = graph.model_copy(update={"outputs": [*graph.outputs, ValueInfo(name=middle)]})
    resolved = validate(graph)
    assert isinstance(resolved.slots, Slots)
    plan = compile_plan(resolved)
    result = execute(plan, {"x": 0.3}, wrt=["x"], of=middle)
    assert resolved.slots._all is None  # (never built)
    assert result.gradients == execute(graph_module._validate(graph, graphkit.default_registry()),
                                       {"x": 0.3}, wrt=["x"], of=middle).gradients
    assert resolved.slots[graph.nodes[3].outputs[0]] == 1 + 3  # any other name: built now
