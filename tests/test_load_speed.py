"""Shortcuts that make loading, validating and planning big graphs fast give what the long
way gives: shape inference once per signature, young objects aged after a pause, last uses
found for all steps at once."""

from __future__ import annotations

import gc
import types
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plugin_helpers import with_ops
from test_load_fast_paths import dag_graph, mixed_graph

import graphkit
import graphkit.graph as graph_module
import graphkit.sweep as sweep
from graphkit import Graph, Node, OpDef, ValueInfo
from graphkit.gcpause import gc_paused
from graphkit.liveness import last_uses
from graphkit.opdef import Shape
from graphkit.plan import compile_plan

# -- shape inference once per signature -------------------------------------------------------


def counting_registry(calls: list[tuple[Any, ...]], tuples: bool = True) -> graphkit.Registry:
    """The built-in ops and `fake::Same`, whose inference counts its calls (and answers with a
    list instead of a tuple when `tuples` is False: a mutable shape, never shared)."""

    def infer(shape: Shape) -> list[Any]:
        calls.append(shape)
        return [shape if tuples or shape is None else list(shape)]

    return with_ops(OpDef("Same", lambda x: x, lambda g, y, x: (g,), domain="fake",
                          infer=infer))


def same_chain(n: int, shape: list[Any] | None) -> Graph:
    names = ["x", *(f"v{i}" for i in range(1, n + 1))]
    return Graph(name="same", inputs=[ValueInfo(name="x", shape=shape)],
                 outputs=[ValueInfo(name=names[-1])],
                 nodes=[Node(op="fake::Same", inputs=[a], outputs=[b])
                        for a, b in zip(names, names[1:], strict=False)])


@pytest.mark.parametrize("shape", [None, [], [2, "N"]])
def test_like_nodes_infer_once_and_resolve_as_the_rule_by_rule_check(
    shape: list[Any] | None
) -> None:
    calls: list[tuple[Any, ...]] = []
    registry = counting_registry(calls)
    graph = same_chain(50, shape)
    fast = sweep.resolve_in_order(graph, registry)
    assert fast is not None and len(calls) == 1
    assert fast == graph_module._validate(graph, registry)
    assert set(fast.shapes.values()) == {None if shape is None else tuple(shape)}


def test_inferred_shapes_are_shared_so_like_nodes_hit() -> None:
    """Each inference returns a new tuple; equal ones are shared, so after the first few
    nodes of a DAG every signature is known (else every node would be a new one)."""
    calls: list[tuple[Any, ...]] = []
    registry = graphkit.builtin_registry(strict=True)
    gemm = registry.get("Gemm")
    assert gemm is not None and gemm.infer is not None
    infer = gemm.infer
    counted = with_ops(OpDef("Gemm2", gemm.forward, gemm.vjp, domain="fake", num_inputs=3,
                             attributes=gemm.attributes, saves=gemm.saves,
                             infer=lambda *args, **kw: (calls.append(args), infer(*args, **kw))[1]))
    graph = dag_graph(200)
    graph = graph.model_copy(update={"nodes": [
        node.model_copy(update={"op": graphkit.OpRef(domain="fake", name="Gemm2")})
        for node in graph.nodes]})
    fast = sweep.resolve_in_order(graph, counted)
    assert fast is not None and len(calls) < 20
    assert fast == graph_module._validate(graph, counted)


def test_mutable_inferred_shapes_are_not_shared() -> None:
    calls: list[tuple[Any, ...]] = []
    registry = counting_registry(calls, tuples=False)
    fast = sweep.resolve_in_order(same_chain(5, [3]), registry)
    assert fast is not None and len(calls) == 5
    shapes = [fast.shapes[f"v{i}"] for i in range(1, 6)]
    assert all(a is not b for a, b in zip(shapes, shapes[1:], strict=False))


def test_the_signature_tells_apart_attributes_that_differ_in_type_or_sign() -> None:
    """Attributes equal to Python (1, 1.0; 0.0, -0.0) are other signatures."""
    nodes = [Node(op="Gemm", inputs=["x", "w", "b"], outputs=[f"y{i}"],
                  attributes={"alpha": alpha}) for i, alpha in enumerate([1, 1.0, -0.0, 0.0, 1])]
    graph = Graph(name="g", inputs=[ValueInfo(name=n, shape=[2, 2]) for n in "xwb"],
                  outputs=[ValueInfo(name="y0")], nodes=nodes)
    registry = graphkit.builtin_registry(strict=True)
    fast = sweep.resolve_in_order(graph, registry)
    assert fast is not None and fast == graph_module._validate(graph, registry)
    assert [type(a["alpha"]) for a in fast.attributes] == [float] * 5


def test_a_plan_numbers_multi_output_nodes_as_validation_did() -> None:
    """Validation hands the plan the inputs' slots only; outputs follow in order."""
    registry = with_ops(OpDef("Pair", lambda x: (x, 2 * x), domain="fake", num_outputs=2))
    graph = Graph(name="g", inputs=[ValueInfo(name="x")], outputs=[ValueInfo(name="d")],
                  nodes=[Node(op="fake::Pair", inputs=["x"], outputs=["a", "b"]),
                         Node(op="Add", inputs=["a", "b"], outputs=["c"]),
                         Node(op="fake::Pair", inputs=["c"], outputs=["d", "e"])])
    numbered = sweep.resolve_in_order(graph, registry)
    assert numbered is not None and numbered.node_slots is not None
    a, b = compile_plan(numbered), compile_plan(graph_module._validate(graph, registry))
    assert a.slots == b.slots
    assert [(s.ins, s.out) for s in a.steps] == [(s.ins, s.out) for s in b.steps] \
        == [((0,), (1, 2)), ((1, 2), 3), ((3,), (4, 5))]
    assert a.free_after == b.free_after


# -- young objects aged after a pause ---------------------------------------------------------


def test_what_a_pause_made_skips_the_young_collection(collector_on: None) -> None:
    gc.collect()
    with gc_paused():
        kept = [[i] for i in range(50_000)]
    assert gc.get_count()[0] < 1_000, "the next allocation would traverse them all"
    assert gc.get_freeze_count() == 0 and len(kept) == 50_000


def test_cycles_made_in_a_pause_are_still_collected(collector_on: None) -> None:
    class Cyclic:
        pass

    with gc_paused():
        first = Cyclic()
        first.self = first  # type: ignore[attr-defined]
    gc.collect()  # (whatever `first` was before)
    seen = gc.get_objects()
    assert any(obj is first for obj in seen)
    del first, seen
    assert gc.collect() >= 1


def test_objects_the_process_froze_stay_frozen(collector_on: None) -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with gc_paused():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


# -- last uses, vectorised ----------------------------------------------------------------------


def last_uses_by_loop(steps: list[Any], keep: set[int], count: int) -> tuple[tuple[int, ...], ...]:
    """The loop `graphkit.liveness` replaces: each slot's last reader, step by step."""
    last = [-1] * count
    for position, step in enumerate(steps):
        for slot in step.ins:
            last[slot] = position
        for slot in step.out if type(step.out) is tuple else (step.out,):
            last[slot] = position
    frees: list[list[int]] = [[] for _ in steps]
    for slot, position in enumerate(last):
        if position >= 0 and slot not in keep:
            frees[position].append(slot)
    return tuple(tuple(f) for f in frees)


@st.composite
def step_lists(draw: st.DrawFn) -> tuple[list[Any], set[int], int]:
    """Steps in running order over slots 0..count-1: reads of earlier slots (repeats allowed),
    one or more fresh outputs; some slots kept, some never touched."""
    given = draw(st.integers(0, 4))
    steps, defined = [], given
    for _ in range(draw(st.integers(0, 12))):
        reads = tuple(draw(st.lists(st.integers(0, defined - 1), max_size=4))) if defined else ()
        width = draw(st.integers(1, 3))
        outs = tuple(range(defined, defined + width))
        defined += width
        steps.append(types.SimpleNamespace(
            ins=reads, out=outs if width > 1 or draw(st.booleans()) else outs[0]))
    count = defined + draw(st.integers(0, 2))
    keep = set(draw(st.lists(st.integers(0, count - 1), max_size=3))) if count else set()
    return steps, keep, count


@given(step_lists())
@settings(max_examples=300, deadline=None)
def test_vectorised_last_uses_equal_the_loop(case: tuple[list[Any], set[int], int]) -> None:
    steps, keep, count = case
    assert last_uses(steps, keep, count) == last_uses_by_loop(steps, keep, count)


@pytest.mark.parametrize("index", range(3))
def test_plans_free_what_the_loop_frees(index: int) -> None:
    graph = [same_chain(30, [2]), mixed_graph(), dag_graph(40)][index]
    plan = compile_plan(graphkit.validate(graph, counting_registry([])))
    keep = {s for _n, s in plan.outputs} | {s for _n, s, _a in plan.constants}
    assert plan.free_after == last_uses_by_loop(plan.steps, keep, len(plan.slots))
