"""Validation reports every problem of a graph at once, each naming where it is; valid graphs
run whatever their file order; the networkx form loses nothing."""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

import graphkit
from graphkit import Graph, GraphValidationError, execute, from_nx, to_nx, validate

REGISTRY = graphkit.builtin_registry(strict=True)


def graph(nodes: list[dict[str, Any]], inputs: list[Any] | None = None,
          outputs: list[Any] | None = None, **extra: Any) -> Graph:
    return Graph.model_validate({
        "name": "g",
        "inputs": ["x", "y"] if inputs is None else inputs,
        "outputs": ["z"] if outputs is None else outputs,
        "nodes": nodes,
        **extra,
    })


def problems_of(g: Graph) -> list[str]:
    with pytest.raises(GraphValidationError) as info:
        validate(g, REGISTRY)
    error = info.value
    assert error.graph_name == g.name
    assert f"{len(error.problems)} problem" in str(error)
    for problem in error.problems:
        assert problem in str(error)
    return error.problems


def only_problem(g: Graph) -> str:
    found = problems_of(g)
    assert len(found) == 1, found
    return found[0]


def node(op: str, inputs: list[str], outputs: list[str], name: str | None = None,
         **attributes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"op": op, "inputs": inputs, "outputs": outputs}
    if name is not None:
        spec["name"] = name
    if attributes:
        spec["attributes"] = attributes
    return spec


# -- each problem on its own -----------------------------------------------------------------


def test_a_valid_graph_passes(registry) -> None:
    resolved = validate(graph([node("Add", ["x", "y"], ["z"])]), registry)
    assert [op.name for op in resolved.ops] == ["Add"]
    assert resolved.plugins == ["graphkit.ops"]


@pytest.mark.parametrize(("op", "hint"), [
    ("Mull", "did you mean Mul"), ("Sigmod", "did you mean Sigmoid"), ("matmul", "MatMul"),
])
def test_unknown_op_with_a_did_you_mean_hint(op, hint) -> None:
    problem = only_problem(graph([node(op, ["x", "y"], ["z"], name="layer")]))
    assert "'layer'" in problem
    assert f"unknown op {op}" in problem
    assert hint in problem


def test_unknown_op_in_a_domain_nobody_registered() -> None:
    problem = only_problem(graph([node("acme.nn::Swish@2", ["x"], ["z"])]))
    assert "unknown op acme.nn::Swish@2" in problem


def test_unknown_version_of_a_known_op_points_at_the_registered_one() -> None:
    problem = only_problem(graph([node("Add@2", ["x", "y"], ["z"])]))
    assert "unknown op Add@2" in problem
    assert "Add" in problem.split("Add@2", 1)[1]


@pytest.mark.parametrize(("op", "inputs", "expected"), [
    ("Add", ["x"], "takes 2 inputs, got 1"),
    ("Neg", ["x", "y"], "takes 1 input, got 2"),
    ("MatMul", ["x", "y", "x"], "takes 2 inputs, got 3"),
])
def test_wrong_number_of_inputs(op, inputs, expected) -> None:
    problem = only_problem(graph([node(op, inputs, ["z"], name="n1")]))
    assert "'n1'" in problem and op in problem
    assert expected in problem


def test_wrong_number_of_outputs() -> None:
    problem = only_problem(graph([node("Add", ["x", "y"], ["z", "w"], name="n1")]))
    assert "'n1'" in problem and "got 2" in problem


@pytest.mark.parametrize(("op", "attributes", "field", "words"), [
    ("Pow", {"exponent": "two"}, "exponent", "number"),
    ("Pow", {}, "exponent", "required"),
    ("Sum", {"axis": [0]}, "axis", "not permitted"),
    ("Sum", {"axes": "rows"}, "axes", "list"),
    ("Reshape", {"shape": [2, "x"]}, "shape", "integer"),
    ("SVMHinge", {"margin": [1]}, "margin", "number"),
])
def test_attributes_failing_the_attribute_model(op, attributes, field, words) -> None:
    inputs = ["x", "labels"] if op == "SVMHinge" else ["x"]
    g = graph([node(op, inputs, ["z"], name="n1", **attributes)],
              inputs=["x", {"name": "labels", "dtype": "int64"}])
    problem = only_problem(g)
    assert "'n1'" in problem and f"attribute {field}" in problem
    assert words in problem.lower()


def test_an_undefined_value() -> None:
    problem = only_problem(graph([node("Add", ["x", "typo"], ["z"], name="n1")]))
    assert "'n1'" in problem and "'typo'" in problem and "not defined" in problem


@pytest.mark.parametrize(("nodes", "where"), [
    ([node("Add", ["x", "y"], ["x"], name="n1")], ["graph input", "'n1'"]),
    ([node("Neg", ["x"], ["z"], name="a"), node("Neg", ["y"], ["z"], name="b")], ["'a'", "'b'"]),
])
def test_a_value_defined_twice(nodes, where) -> None:
    outputs = ["x"] if nodes[0]["outputs"] == ["x"] else ["z"]
    problem = only_problem(graph(nodes, outputs=outputs))
    assert "defined 2 times" in problem
    for place in where:
        assert place in problem


def test_a_constant_and_an_input_with_the_same_name() -> None:
    problem = only_problem(graph([node("Add", ["x", "y"], ["z"])],
                                 constants=[{"name": "y", "shape": [], "data": 1.0}]))
    assert "'y'" in problem and "graph input" in problem and "constant" in problem


def test_a_cycle_names_its_nodes() -> None:
    g = graph([
        node("Add", ["x", "c"], ["a"], name="first"),
        node("Exp", ["a"], ["b"], name="second"),
        node("Neg", ["b"], ["c"], name="third"),
        node("Tanh", ["c"], ["z"], name="after"),
    ])
    problem = only_problem(g)
    assert "cycle" in problem
    for name in ("first", "second", "third"):
        assert name in problem
    assert "after" not in problem


def test_a_node_reading_its_own_output_is_a_cycle() -> None:
    problem = only_problem(graph([node("Add", ["x", "z"], ["z"], name="loop")]))
    assert "cycle" in problem and "loop" in problem


def test_an_output_nothing_computes() -> None:
    problem = only_problem(graph([node("Add", ["x", "y"], ["z"])], outputs=["z", "loss"]))
    assert "'loss'" in problem and "not computed" in problem


@pytest.mark.parametrize(("nodes", "inputs", "words"), [
    ([node("MatMul", ["x", "W"], ["z"], name="fc")],
     [{"name": "x", "shape": ["N", 3072]}, {"name": "W", "shape": [100, 3072]}],
     ["'fc'", "(N, 3072)", "(100, 3072)", "3072 and 100"]),
    ([node("Add", ["x", "y"], ["z"], name="plus")],
     [{"name": "x", "shape": [3]}, {"name": "y", "shape": [2, 4]}],
     ["'plus'", "(3,)", "(2, 4)", "broadcast"]),
    ([node("Reshape", ["x"], ["z"], name="flat", shape=[5])],
     [{"name": "x", "shape": [2, 3]}, "y"],
     ["'flat'", "(2, 3)"]),
    ([node("Sum", ["x"], ["z"], name="total", axes=[2])],
     [{"name": "x", "shape": ["N", 3]}, "y"],
     ["'total'", "axis 2"]),
    ([node("SoftmaxCrossEntropy", ["x", "y"], ["z"], name="loss")],
     [{"name": "x", "shape": [4, 10]}, {"name": "y", "shape": [5], "dtype": "int64"}],
     ["'loss'", "4 rows", "5"]),
])
def test_shapes_that_cannot_agree(nodes, inputs, words) -> None:
    problem = only_problem(graph(nodes, inputs=inputs))
    for word in words:
        assert word in problem


def test_shapes_that_can_agree_pass_and_are_inferred() -> None:
    g = graph([node("MatMul", ["x", "W"], ["h"]), node("Relu", ["h"], ["z"])],
              inputs=[{"name": "x", "shape": ["N", 3072]}, {"name": "W", "shape": [3072, 100]}])
    assert validate(g, REGISTRY).shapes["z"] == ("N", 100)


def test_unknown_shapes_are_not_a_problem() -> None:
    g = graph([node("MatMul", ["x", "W"], ["z"])], inputs=["x", "W"])
    assert validate(g, REGISTRY).shapes["z"] is None


def test_a_declared_output_shape_must_match() -> None:
    g = graph([node("MatMul", ["x", "W"], ["z"])],
              inputs=[{"name": "x", "shape": ["N", 3]}, {"name": "W", "shape": [3, 10]}],
              outputs=[{"name": "z", "shape": ["N", 5]}])
    problem = only_problem(g)
    assert "'z'" in problem and "(N, 5)" in problem and "(N, 10)" in problem


def test_duplicate_node_names() -> None:
    g = graph([node("Neg", ["x"], ["z"], name="same"), node("Neg", ["y"], ["w"], name="same")])
    problem = only_problem(g)
    assert "'same'" in problem and "2 nodes" in problem


def test_malformed_documents_fail_in_the_model() -> None:
    """What is not even a graph fails in pydantic, before validation."""
    with pytest.raises(ValidationError, match="op reference"):
        graph([node("Mul@x", ["x", "y"], ["z"])])
    with pytest.raises(ValidationError):
        graph([node("Neg", ["x"], [])])
    with pytest.raises(ValidationError):
        graph([node("Neg", ["x"], ["z"])], outputs=[])


# -- several at once -------------------------------------------------------------------------


def test_every_problem_is_reported_at_once() -> None:
    g = graph(
        [
            node("Mull", ["x", "y"], ["a"], name="dup"),
            node("Neg", ["ghost"], ["b"], name="dup"),
            node("Pow", ["x"], ["c"], name="power"),
            node("Add", ["x"], ["d"], name="short"),
            node("MatMul", ["x", "W"], ["e"], name="fc"),
            node("Neg", ["y"], ["b"], name="shadow"),
        ],
        inputs=[{"name": "x", "shape": [8, 3072]}, "y", {"name": "W", "shape": [100, 3072]}],
        outputs=["a", "missing"],
    )
    found = problems_of(g)
    expected = [
        "node name 'dup' is used by 2 nodes",
        "unknown op Mull",
        "input 'ghost' is not defined",
        "attribute exponent",
        "takes 2 inputs, got 1",
        "3072 and 100",
        "value 'b' is defined 2 times",
        "output 'missing' is not computed",
    ]
    for text in expected:
        assert sum(text in problem for problem in found) == 1, (text, found)
    assert len(found) == len(expected)


def test_a_cycle_is_reported_with_the_other_problems() -> None:
    g = graph([
        node("Add", ["x", "b"], ["a"], name="p"),
        node("Neg", ["a"], ["b"], name="q"),
        node("Nope", ["x"], ["z"], name="r"),
    ])
    found = problems_of(g)
    cycles = [problem for problem in found if "cycle" in problem]
    assert len(cycles) == 1
    assert {"p", "q"} <= set(cycles[0].replace("->", " ").split())
    assert any("unknown op Nope" in problem for problem in found)
    assert len(found) == 2


# -- file order ------------------------------------------------------------------------------


def test_a_valid_graph_in_non_topological_file_order_runs(registry) -> None:
    ordered = graph([
        node("Add", ["x", "y"], ["q"]),
        node("Exp", ["q"], ["e"]),
        node("Mul", ["e", "q"], ["z"]),
    ])
    shuffled = ordered.model_copy(update={"nodes": list(reversed(ordered.nodes))})
    resolved = validate(shuffled, registry)
    assert [shuffled.nodes[i].name for i in resolved.order] == ["q", "e", "z"]
    inputs = {"x": 0.25, "y": 0.5}
    a = execute(ordered, inputs, wrt="all", registry=registry)
    b = execute(shuffled, inputs, wrt="all", registry=registry)
    assert a.outputs == b.outputs
    assert a.gradients == b.gradients
    q = 0.75
    assert b.outputs["z"] == pytest.approx(np.exp(q) * q, abs=1e-15)
    assert b.gradients["x"] == pytest.approx(np.exp(q) * (q + 1), abs=1e-15)


# -- networkx --------------------------------------------------------------------------------


def test_to_nx_is_bipartite_with_positions_as_edge_keys() -> None:
    g = graph([node("Mul", ["x", "x"], ["s"], name="square"), node("Add", ["s", "y"], ["z"])])
    h = to_nx(g)
    assert isinstance(h, nx.MultiDiGraph)
    assert h.nodes[0]["kind"] == "op" and h.nodes[0]["node"].name == "square"
    assert h.nodes["x"]["kind"] == "input"
    assert sorted(h.get_edge_data("x", 0)) == [0, 1]  # x * x: two parallel edges
    assert list(h.get_edge_data(0, "s")) == [0]
    assert list(h.get_edge_data("y", 1)) == [1]
    assert from_nx(h) == g


def test_from_nx_of_to_nx_is_lossless_for_a_rich_graph() -> None:
    big = np.arange(100, dtype=np.float32).reshape(10, 10)  # stored as base64
    g = graph(
        [node("MatMul", ["x", "W"], ["h"], name="fc"),
         node("Sum", ["h"], ["z"], name="total", axes=[0, -1], keepdims=True)],
        inputs=[{"name": "x", "dtype": "float32", "shape": ["N", 10]}],
        outputs=[{"name": "z", "dtype": "float32", "shape": [1, 1]}],
        constants=[{"name": "W", "trainable": True,
                    **graphkit.Tensor.from_numpy(big).model_dump(exclude_none=True)}],
        metadata={"author": "test", "lecture": 4, "tags": ["cs231n"]},
    )
    assert g.constants[0].base64 is not None
    assert from_nx(to_nx(g)) == g
    assert from_nx(to_nx(g)).model_dump() == g.model_dump()


UNARY = ["Neg", "Exp", "Tanh", "Identity", "Sigmoid"]
BINARY = ["Add", "Sub", "Mul", "Max"]


@st.composite
def random_dags(draw) -> Graph:
    """Random valid graphs of scalar and small-vector values, nodes in topological order."""
    n_inputs = draw(st.integers(1, 3))
    values = [f"in{i}" for i in range(n_inputs)]
    inputs = [{"name": v, "dtype": "float64"} for v in values]
    constants = []
    vector = draw(st.sampled_from([3, 70]))  # 70 elements: stored as base64
    for i in range(draw(st.integers(0, 2))):
        size = draw(st.sampled_from([1, vector]))  # scalars and vectors broadcast together
        data = draw(st.lists(st.floats(-1, 1), min_size=size, max_size=size))
        tensor = graphkit.Tensor.from_numpy(np.array(data) if size > 1 else data[0])
        constants.append({"name": f"k{i}", "trainable": draw(st.booleans()),
                          **tensor.model_dump(exclude_none=True)})
        values.append(f"k{i}")
    nodes = []
    for i in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["unary", "binary", "sum", "pow"]))
        if kind == "binary":
            op, args, attributes = draw(st.sampled_from(BINARY)), 2, {}
        elif kind == "unary":
            op, args, attributes = draw(st.sampled_from(UNARY)), 1, {}
        elif kind == "sum":
            op, args, attributes = "Sum", 1, {}
        else:
            op, args, attributes = "Pow", 1, {"exponent": draw(st.sampled_from([2.0, 3.0]))}
        chosen = draw(st.lists(st.sampled_from(values), min_size=args, max_size=args))
        spec = node(op, chosen, [f"v{i}"], name=f"n{i}", **attributes)
        nodes.append(spec)
        values.append(f"v{i}")
    outputs = draw(st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True))
    return Graph.model_validate({
        "name": "random", "inputs": inputs, "constants": constants, "nodes": nodes,
        "outputs": outputs, "metadata": draw(st.dictionaries(st.sampled_from("abc"),
                                                             st.integers(0, 9), max_size=2)),
    })


@given(g=random_dags())
def test_from_nx_of_to_nx_is_lossless(g: Graph) -> None:
    h = to_nx(g)
    assert from_nx(h) == g
    ops = [n for n, kind in h.nodes(data="kind") if kind == "op"]
    assert len(ops) == len(g.nodes)
    edges = sum(len(n.inputs) + len(n.outputs) for n in g.nodes)
    assert h.number_of_edges() == edges
    assert nx.is_directed_acyclic_graph(h)


@given(g=random_dags(), data=st.data())
def test_any_file_order_of_a_valid_graph_runs_the_same(g: Graph, data: st.DataObject) -> None:
    order = data.draw(st.permutations(range(len(g.nodes))), label="order")
    shuffled = g.model_copy(update={"nodes": [g.nodes[i] for i in order]})
    assert from_nx(to_nx(shuffled)) == shuffled
    resolved = validate(shuffled, REGISTRY)
    seen = {i["name"] for i in g.model_dump()["inputs"]} | {c.name for c in g.constants}
    for index in resolved.order:  # producers always run before their consumers
        assert all(v in seen for v in shuffled.nodes[index].inputs)
        seen.update(shuffled.nodes[index].outputs)
    inputs = {info.name: data.draw(st.floats(-1, 1), label=info.name) for info in g.inputs}
    with np.errstate(all="ignore"):
        a = execute(g, inputs, registry=REGISTRY)
        b = execute(shuffled, inputs, registry=REGISTRY)
    assert a.outputs.keys() == b.outputs.keys()
    for name in a.outputs:
        np.testing.assert_array_equal(a.outputs[name], b.outputs[name])
