"""The fast paths of loading and validation give what the general paths give.

The ONNX importer works out a node's op and attributes once per distinct kind of node and
builds nodes without validating them again; validation resolves a graph in running order in
one sweep, validating each distinct set of attributes once; the collector is paused meanwhile.
Each is checked here against the general path (forced by patching the shortcut away), on
graphs that exercise what a shortcut could get wrong: equal-looking values that differ (0.0
and -0.0, 0.01 as written and as float32), non-ASCII, long and missing names, constant inputs.
"""

from __future__ import annotations

import gc
import itertools
import math
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphkit
import graphkit.graph as graph_module
import graphkit.io.onnx_import as onnx_import
import graphkit.sweep as sweep
from graphkit import Graph, GraphValidationError, validate
from graphkit.errors import FormatError
from graphkit.gcpause import gc_paused
from graphkit.io.onnx_export import to_onnx
from graphkit.io.onnx_import import from_onnx, load_onnx
from graphkit.model import Constant, Node, OpRef, Tensor, ValueInfo, trusted_node

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.json") if ".inputs" not in p.name)
LONG = "c" * 200
OPSET = 17


def mixed_graph() -> Graph:
    """Repeated and near-repeated attributes, constant inputs, odd names."""
    w = Tensor.from_numpy(np.arange(6, dtype=np.float64).reshape(3, 2))
    return Graph(
        name="mixed",
        inputs=[ValueInfo(name="x", dtype="float64", shape=[2, 3])],
        outputs=[ValueInfo(name=name, dtype="float64") for name in ("i", "n")],
        constants=[Constant(name="W", **w.model_dump(exclude_none=True))],
        nodes=[
            Node(op="LeakyRelu", inputs=["x"], outputs=["a"], attributes={"alpha": 0.01}),
            Node(name="λ-b", op="LeakyRelu", inputs=["a"], outputs=["b"],
                 attributes={"alpha": 0.01}),
            Node(name=LONG, op="LeakyRelu", inputs=["b"], outputs=["c"],
                 attributes={"alpha": 0.1}),
            Node(op="Pow", inputs=["c"], outputs=["d"], attributes={"exponent": 2.0}),
            Node(op="Pow", inputs=["d"], outputs=["e"], attributes={"exponent": 2.0}),
            Node(op="Pow", inputs=["e"], outputs=["f"], attributes={"exponent": 3.0}),
            Node(op="Reshape", inputs=["f"], outputs=["g"], attributes={"shape": [3, 2]}),
            Node(op="Reshape", inputs=["g"], outputs=["h"], attributes={"shape": [2, 3]}),
            Node(op="Sum", inputs=["h"], outputs=["i"], attributes={"axes": [1],
                                                                  "keepdims": True}),
            Node(op="Gemm", inputs=["x", "W"], outputs=["k"], attributes={"alpha": 0.0}),
            Node(op="Gemm", inputs=["x", "W"], outputs=["l"], attributes={"alpha": -0.0}),
            Node(op="Gemm", inputs=["x", "W"], outputs=["l2"], attributes={"alpha": -0.0}),
            Node(op="Add", inputs=["k", "l"], outputs=["m"]),
            Node(op="Add", inputs=["m", "l2"], outputs=["n"]),
        ],
    )


def chain_graph(n: int = 30) -> Graph:
    g = graphkit.GraphBuilder("chain")
    value = g.input("x", dtype="float64", shape=[])
    for i in range(n):
        value = g.op(("Add", "Mul", "Tanh")[i % 3], value, *([value] if i % 3 < 2 else []))
    g.output(value, "y")
    return g.build()


def dag_graph(n: int = 40) -> Graph:
    rng = np.random.default_rng(1)
    names = ["x0", "x1", "x2"]
    nodes = []
    for i in range(n):
        b, c = (names[int(u * len(names))] for u in rng.random(2))
        nodes.append(Node(name=f"v{i}", op="Gemm", inputs=[names[-1], b, c],
                          outputs=[f"v{i}"], attributes={"alpha": 0.5, "beta": 0.5}))
        names.append(f"v{i}")
    return Graph(name="dag", inputs=[ValueInfo(name=x, dtype="float64", shape=[1, 1])
                                     for x in names[:3]],
                 outputs=[ValueInfo(name=names[-1], dtype="float64", shape=[1, 1])],
                 nodes=nodes)


GRAPHS = {"mixed": mixed_graph, "chain": chain_graph, "dag": dag_graph}


def general_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the importer treat every node as a kind of its own (the path before the cache)."""
    counter = itertools.count()
    monkeypatch.setattr(onnx_import, "_bytes_key", lambda *args: None)
    monkeypatch.setattr(onnx_import, "_fields_key", lambda node: next(counter))


def same_nodes(fast: Graph, slow: Graph, fields_set: bool = True) -> None:
    assert fast == slow
    for a, b in zip(fast.nodes, slow.nodes, strict=True):
        assert a.__dict__ == b.__dict__
        assert not fields_set or a.model_fields_set == b.model_fields_set
        assert a.__pydantic_extra__ == b.__pydantic_extra__
        assert a.__pydantic_private__ == b.__pydantic_private__
        for key, value in a.attributes.items():  # floats to the bit: -0.0 is not 0.0
            if isinstance(value, float):
                assert math.copysign(1, value) == math.copysign(1, b.attributes[key])


# -- ONNX -------------------------------------------------------------------------------------


def test_this_protobuf_writes_fields_in_order() -> None:
    """Else the importer's shortcut (`_bytes_key`) is never taken and these tests prove little."""
    assert onnx_import._serialization_is_ordered()


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_fast_import_equals_the_general_one_and_round_trips(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = GRAPHS[name]()
    model = to_onnx(graph, opset=OPSET)
    trusted: list[str] = []
    with monkeypatch.context() as patch:
        patch.setattr(onnx_import, "trusted_node",
                      lambda name, *rest: (trusted.append(name), trusted_node(name, *rest))[1])
        fast = from_onnx(model)
    assert trusted, "no node took the shortcut"
    assert fast == graph
    with monkeypatch.context() as patch:
        general_path(patch)
        slow = from_onnx(model)
    same_nodes(fast, slow)
    same_nodes(fast, graph, fields_set=False)  # (the original left out some defaults)


def test_fast_import_keeps_what_differs_and_shares_nothing_mutable() -> None:
    graph = from_onnx(to_onnx(mixed_graph(), opset=OPSET))
    by_output = {node.outputs[0]: node for node in graph.nodes}
    assert by_output["a"].attributes == {"alpha": 0.01}  # as written, not float32's 0.00999...
    assert by_output["c"].attributes == {"alpha": 0.1}
    assert math.copysign(1, by_output["k"].attributes["alpha"]) == 1
    assert math.copysign(1, by_output["l"].attributes["alpha"]) == -1
    assert math.copysign(1, by_output["l2"].attributes["alpha"]) == -1
    assert by_output["b"].name == "λ-b" and by_output["c"].name == LONG
    assert [n.attributes["shape"] for n in graph.nodes if n.op.name == "Reshape"] == [
        [3, 2], [2, 3]]
    shapes = [n.attributes for n in graph.nodes if n.op.name == "Pow"]
    assert shapes == [{"exponent": 2.0}, {"exponent": 2.0}, {"exponent": 3.0}]
    dag = from_onnx(to_onnx(dag_graph(), opset=OPSET))
    dag.nodes[0].attributes["alpha"] = 2.0
    assert all(n.attributes == {"alpha": 0.5, "beta": 0.5} for n in dag.nodes[1:])
    assert dag.nodes[1].attributes is not dag.nodes[2].attributes


def relu_model(nodes: list[onnx.NodeProto], output: str) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info(output, TensorProto.FLOAT, [2])
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", OPSET)])
    return model


def test_foreign_models_with_odd_names_import_the_same_either_way(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """No names, empty names set explicitly, repeated names, names over 127 characters."""
    nodes = [helper.make_node("Relu", ["x"], ["r0"]),
             helper.make_node("Relu", ["r0"], ["r1"], name=""),
             helper.make_node("LeakyRelu", ["r1"], ["r2"], name="same", alpha=0.25),
             helper.make_node("LeakyRelu", ["r2"], ["r3"], name="same", alpha=0.25),
             helper.make_node("LeakyRelu", ["r3"], ["r4"], name="s" * 200, alpha=0.25),
             helper.make_node("Relu", ["r4"], ["o" * 130], name="é")]
    nodes[1].name = ""  # present, and empty (make_node leaves it out)
    model = relu_model(nodes, "o" * 130)
    assert model.graph.node[1].HasField("name") and not model.graph.node[0].HasField("name")
    fast = from_onnx(model)
    with monkeypatch.context() as patch:
        general_path(patch)
        slow = from_onnx(model)
    same_nodes(fast, slow)
    assert [n.name for n in fast.nodes][:4] == ["r0", "r1", "same", "same_3"]
    assert fast.nodes[3].attributes == {"alpha": 0.25}
    graphkit.execute(fast, {"x": np.array([1.0, -2.0], np.float32)})


def test_refused_attributes_name_every_node_at_fault() -> None:
    nodes = [helper.make_node("LeakyRelu", ["x"], ["a"], name="first", alpha="steep"),
             helper.make_node("LeakyRelu", ["a"], ["b"], name="second", alpha="steep")]
    with pytest.raises(FormatError) as info:
        from_onnx(relu_model(nodes, "b"), source="bad.onnx")
    message = str(info.value)
    assert message.startswith("bad.onnx: ")
    assert "node 'first' (LeakyRelu)" in message and "node 'second' (LeakyRelu)" in message


def test_invalid_names_are_refused_also_after_a_cached_node() -> None:
    """The first node of a kind fills the cache; a later one with an output name pydantic
    refuses (too long) is still refused, naming it."""
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="ok"),
             helper.make_node("Relu", ["a"], ["b" * 300], name="too_long")]
    with pytest.raises(FormatError, match=r"node 'too_long' \(Relu\)"):
        from_onnx(relu_model(nodes, "b" * 300), source="m.onnx")


def test_metadata_that_does_not_round_trip_is_not_trusted() -> None:
    """Attributes in graphkit's metadata are used only if they export to the very node."""
    model = to_onnx(dag_graph(3), opset=OPSET)
    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.name == "alpha":
                attribute.f = 0.25
    graph = from_onnx(model)
    assert [n.attributes["alpha"] for n in graph.nodes] == [0.25, 0.25, 0.25]


def test_external_data_in_repeated_node_attributes_is_read_for_each(tmp_path: Path) -> None:
    """Nodes whose bytes are equal before their external data is read are still read apart."""
    values = [np.full((2,), 1.5, np.float32), np.full((2,), 2.5, np.float32)]
    nodes = [helper.make_node("Constant", [], [f"k{i}"],
                              value=numpy_helper.from_array(values[i], f"k{i}"))
             for i in range(2)]
    nodes += [helper.make_node("Add", ["x", "k0"], ["s"]), helper.make_node("Add", ["s", "k1"],
                                                                            ["y"])]
    model = relu_model(nodes, "y")
    path = tmp_path / "m.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="w.bin", size_threshold=0, convert_attribute=True)
    graph = load_onnx(path)
    assert [c.to_numpy().tolist() for c in graph.constants] == [[1.5, 1.5], [2.5, 2.5]]
    with pytest.raises(FormatError, match="keeps its data in an external file"):
        from_onnx(onnx.load_model(str(path), load_external_data=False))


# -- models ------------------------------------------------------------------------------------


def test_trusted_node_equals_a_validated_one() -> None:
    ref = OpRef(name="Gemm")
    made = trusted_node("n", ref, ["a", "b"], ["n"], {"alpha": 0.5})
    validated = Node(name="n", op=ref, inputs=["a", "b"], outputs=["n"],
                     attributes={"alpha": 0.5})
    same_nodes(Graph(name="g", outputs=["n"], nodes=[made]),
               Graph(name="g", outputs=["n"], nodes=[validated]))
    assert made.model_dump() == validated.model_dump()
    assert made.model_copy(update={"name": "m"}).name == "m"


def test_a_node_name_defaults_to_its_first_output_and_is_set() -> None:
    node = Node.model_validate_json('{"op": "Add", "inputs": ["x", "y"], "outputs": ["z"]}')
    assert node.name == "z" and "name" in node.model_fields_set
    assert Node(op="Neg", inputs=["x"], outputs=["q"]).name == "q"
    with pytest.raises(ValueError, match="at least 1 character"):
        Node(name="", op="Neg", inputs=["x"], outputs=["q"])
    with pytest.raises(ValueError, match="outputs"):
        Node(op="Neg", inputs=["x"], outputs=[])


def test_op_references_are_validated_once_and_shared() -> None:
    graph = graphkit.loads('{"name": "g", "inputs": ["x"], "outputs": ["b"], "nodes": ['
                           '{"op": "ai.onnx::Neg@2", "inputs": ["x"], "outputs": ["a"]},'
                           '{"op": "ai.onnx::Neg@2", "inputs": ["a"], "outputs": ["b"]}]}')
    assert graph.nodes[0].op is graph.nodes[1].op
    assert graph.nodes[0].op == OpRef(domain="ai.onnx", name="Neg", version=2)
    with pytest.raises(FormatError, match="not of the form"):
        graphkit.loads('{"name": "g", "outputs": ["b"], "nodes": ['
                       '{"op": "a b", "outputs": ["b"]}]}')
    with pytest.raises(FormatError, match=r"nodes\[0\]\.op\.name: String should have at most"):
        graphkit.loads('{"name": "g", "outputs": ["b"], "nodes": ['
                       '{"op": "' + "N" * 300 + '", "outputs": ["b"]}]}')


# -- validation -------------------------------------------------------------------------------


def all_graphs() -> list[Graph]:
    return [graphkit.load(p) for p in EXAMPLES] + [make() for make in GRAPHS.values()]


@pytest.mark.parametrize("index", range(len(EXAMPLES) + len(GRAPHS)))
def test_one_sweep_resolves_as_the_rule_by_rule_check(index: int) -> None:
    graph = all_graphs()[index]
    registry = graphkit.builtin_registry(strict=True)
    fast = sweep.resolve_in_order(graph, registry)
    assert fast is not None
    assert fast == graph_module._validate(graph, registry)
    assert validate(graph, registry) == fast


@pytest.mark.parametrize("index", range(len(all_graphs())))
def test_a_plan_from_validations_slots_equals_one_that_looks_names_up(index: int) -> None:
    """The sweep numbers values as it checks them and the plan reuses those numbers; the
    rule-by-rule check does not, and the plan looks every name up: the same plan either way."""
    from graphkit.plan import compile_plan

    graph = all_graphs()[index]
    registry = graphkit.builtin_registry(strict=True)
    numbered = sweep.resolve_in_order(graph, registry)
    assert numbered is not None and numbered.node_slots is not None
    looked_up = graph_module._validate(graph, registry)
    assert looked_up.node_slots is None
    a, b = compile_plan(numbered), compile_plan(looked_up)
    assert a.slots == b.slots and list(a.slots) == list(b.slots)
    assert [(s.ins, s.out, s.node) for s in a.steps] == [(s.ins, s.out, s.node) for s in b.steps]
    assert a.free_after == b.free_after and a.outputs == b.outputs


def test_the_sweep_resolves_attributes_to_the_bit_and_shares_nothing() -> None:
    resolved = validate(mixed_graph(), graphkit.builtin_registry(strict=True))
    alphas = [a["alpha"] for a, op in zip(resolved.attributes, resolved.ops, strict=True)
              if op.name == "Gemm"]
    assert [math.copysign(1, a) for a in alphas] == [1, -1, -1]
    first, second = (a for a, op in zip(resolved.attributes, resolved.ops, strict=True)
                     if op.name == "Gemm" and math.copysign(1, a["alpha"]) == -1)
    assert first == second and first is not second


def test_frozen_attribute_values_tell_apart_what_validation_may() -> None:
    keys = [sweep._frozen(v) for v in (1, 1.0, True, 0.0, -0.0, "1", [1], {"a": 1})]
    assert len(set(keys)) == len(keys)


def test_a_graph_out_of_order_or_invalid_takes_the_rule_by_rule_check() -> None:
    registry = graphkit.builtin_registry(strict=True)
    graph = chain_graph(6)
    shuffled = graph.model_copy(update={"nodes": graph.nodes[::-1]})
    assert sweep.resolve_in_order(shuffled, registry) is None
    assert validate(shuffled, registry).order == list(range(len(graph.nodes)))[::-1]
    broken = graph.model_copy(update={"nodes": [*graph.nodes, graph.nodes[0]]})
    assert sweep.resolve_in_order(broken, registry) is None
    with pytest.raises(GraphValidationError, match="is used by 2 nodes"):
        validate(broken, registry)


# -- the garbage collector ----------------------------------------------------------------------


def test_load_and_validate_pause_the_collector_and_restore_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collector_on: None
) -> None:
    graph = dag_graph(5)
    graphkit.save(graph, tmp_path / "g.json")
    graphkit.save(graph, tmp_path / "g.onnx")
    seen: list[bool] = []
    run, resolve = onnx_import._Importer.run, sweep.resolve_in_order
    monkeypatch.setattr(onnx_import._Importer, "run",
                        lambda self: (seen.append(gc.isenabled()), run(self))[1])
    monkeypatch.setattr(sweep, "resolve_in_order",
                        lambda *args: (seen.append(gc.isenabled()), resolve(*args))[1])
    assert graphkit.load(tmp_path / "g.onnx") == graphkit.load(tmp_path / "g.json") == graph
    validate(graph)
    assert seen == [False, False] and gc.isenabled()
    gc.disable()
    graphkit.load(tmp_path / "g.onnx")
    validate(graph)
    assert not gc.isenabled()


@pytest.mark.parametrize("suffix", [".json", ".onnx"])
def test_the_collector_is_restored_after_an_error(
    tmp_path: Path, suffix: str, collector_on: None
) -> None:
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(b'{"name": "g"}' if suffix == ".json" else b"\x08\x07garbage")
    with pytest.raises(FormatError):
        graphkit.load(path)
    assert gc.isenabled()
    with pytest.raises(GraphValidationError):
        validate(chain_graph(3).model_copy(update={"outputs": [ValueInfo(name="nowhere")]}))
    assert gc.isenabled()


def test_pauses_nest_and_the_outermost_restores(collector_on: None) -> None:
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
        with pytest.raises(ZeroDivisionError), gc_paused():
            1 / 0  # noqa: B018
        assert not gc.isenabled()
    assert gc.isenabled()


def test_concurrent_pauses_share_one(collector_on: None) -> None:
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with gc_paused():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    inside.wait(10)
    with gc_paused():
        pass
    assert not gc.isenabled(), "the other thread's pause is still on"
    release.set()
    thread.join(10)
    assert gc.isenabled()


@pytest.mark.parametrize(("value", "where"), [
    ("NaN", "nodes[1].attributes.a"),
    ('[1.0, {"b": [Infinity]}]', "nodes[1].attributes.a[1].b[0]"),
    ('{"b": -Infinity}', "nodes[1].attributes.a.b"),
    ("1e999", "nodes[1].attributes.a"),
])
def test_non_finite_attributes_are_found_where_they_are(value: str, where: str) -> None:
    """The quick scan of attributes lets no NaN or infinity through, nested or not."""
    text = ('{"name": "g", "inputs": ["x"], "outputs": ["z"], "nodes": ['
            '{"op": "Neg", "inputs": ["x"], "outputs": ["y"], "attributes": {"a": [1.5, true]}},'
            '{"op": "Neg", "inputs": ["y"], "outputs": ["z"], "attributes": {"a": ' + value
            + '}}]}')
    with pytest.raises(FormatError) as info:
        graphkit.loads(text, "f.json")
    assert str(info.value) == f"f.json: {where}: not a finite number (JSON has no NaN, Infinity)"


def test_unsupported_ops_named_like_the_importers_roles_are_unsupported() -> None:
    nodes = [helper.make_node(op_type, ["x"], [f"y{i}"], name=f"n{i}")
             for i, op_type in enumerate(["constant", "op", "cast_like", "unsupported"])]
    nodes.append(helper.make_node("Relu", ["y0"], ["y"]))
    with pytest.raises(FormatError) as info:
        from_onnx(relu_model(nodes, "y"), source="odd.onnx")
    assert str(info.value) == ("odd.onnx: unsupported ONNX ops: cast_like (1 node), "
                               "constant (1 node), op (1 node), unsupported (1 node)")


def test_big_constant_nodes_and_huge_names_import_as_the_general_path_does(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nodes over the key size limit (a tensor, a huge name) skip the lookup, and import or
    are refused as before."""
    big = np.linspace(-1, 1, 2048, dtype=np.float32)
    nodes = [helper.make_node("Constant", [], [f"k{i}"],
                              value=numpy_helper.from_array(big * (i + 1), f"k{i}"))
             for i in range(2)]
    nodes += [helper.make_node("Add", ["k0", "k1"], ["s"]),
              helper.make_node("LeakyRelu", ["s"], ["a"], alpha=0.5, name="a" * 5000),
              helper.make_node("LeakyRelu", ["a"], ["y"], alpha=0.5, name="y" * 5000)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2048])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2048])
    model = helper.make_model(helper.make_graph(nodes[:3] + [
        helper.make_node("Add", ["s", "x"], ["y"])], "g", [x], [out]),
        opset_imports=[helper.make_opsetid("", OPSET)])
    assert len(model.graph.node[0].SerializeToString()) > onnx_import._KEY_LIMIT
    fast = from_onnx(model)
    with monkeypatch.context() as patch:
        general_path(patch)
        slow = from_onnx(model)
    same_nodes(fast, slow)
    np.testing.assert_array_equal(fast.constant("k1").to_numpy(), big * 2)
    with pytest.raises(FormatError, match="String should have at most 256"):
        from_onnx(relu_model(nodes[3:], "y"))
