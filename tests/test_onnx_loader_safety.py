"""Loading untrusted ONNX files: whatever the file, the loader returns a Graph or raises a
GraphkitError (a FormatError naming the file).

The size is capped before parsing; empty bytes (ir_version 0) and unknown IR versions are
refused; external data is read only from plain files inside the model's folder (no `..`,
absolute paths, symbolic or hard links, nothing past the file's end) and never relative to the
working directory; every unsupported op is listed in one error with its node count;
initializers and Constant nodes become constants; model-local functions of unknown domains are
inlined onto ops graphkit has.

The import tests use a private registry of test ops with ONNX mappings, so they do not depend
on which built-in ops map to ONNX; the fuzz tests run against the built-in registry as well.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from pydantic import BaseModel, ConfigDict

import graphkit
import graphkit.io.onnx_import as onnx_import
from graphkit import dumps, execute, loads, validate
from graphkit.errors import FormatError, GraphkitError
from graphkit.hookspecs import hookimpl
from graphkit.io.onnx_export import to_onnx
from graphkit.io.onnx_import import from_onnx, load_onnx, parse_model
from graphkit.model import Graph, Node, ValueInfo
from graphkit.onnxmap import OnnxMapping, attribute_as_input, same_name
from graphkit.opdef import OpDef

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
)
FLOAT = TensorProto.FLOAT
OPSET = 17
IR_VERSION = min(helper.make_model(helper.make_graph([], "g", [], [])).ir_version,
                 onnx.IR_VERSION)
LOCAL = "local.fn"
"""A domain no registry knows: its model-local functions are inlined."""


# ---------------------------------------------------------------------------------------------
# the test ops: a registry of its own, independent of the built-in ops' ONNX mappings


class PowAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    exponent: float


_pow_export, _pow_read = attribute_as_input("exponent", "float32", 1, scalar=True)


def _scale_body(opset: int) -> onnx.FunctionProto:
    return helper.make_function(
        "test.ops", "Scale", ["a"], ["c"],
        [helper.make_node("Constant", [], ["two"], value_float=2.0),
         helper.make_node("Mul", ["a", "two"], ["c"])],
        [helper.make_opsetid("", opset)],
    )


TEST_OPS = [
    OpDef("Add", lambda a, b: a + b, num_inputs=2, onnx=same_name("Add")),
    OpDef("Mul", lambda a, b: a * b, num_inputs=2, onnx=same_name("Mul")),
    OpDef("Relu", lambda x: np.maximum(x, 0), onnx=same_name("Relu")),
    OpDef("Exp", np.exp, onnx=same_name("Exp")),
    OpDef("MatMul", lambda a, b: a @ b, num_inputs=2, onnx=same_name("MatMul")),
    OpDef("Identity", lambda x: x, onnx=same_name("Identity")),
    OpDef("Pow", lambda x, exponent: x ** np.asarray(exponent, x.dtype),
          attributes=PowAttributes,
          onnx=OnnxMapping("Pow", export=_pow_export, read=_pow_read)),
    # only from opset 18 on: a model of opset 17 cannot use it
    OpDef("Celu", lambda x: x, onnx=same_name("Celu", since=18)),
    # a custom domain graphkit knows: its nodes are imported as they are, not inlined
    OpDef("Scale", lambda x: 3 * x, domain="test.ops",
          onnx=OnnxMapping("Scale", domain="test.ops", function=_scale_body)),
]


class _TestOps:
    @hookimpl
    def graphkit_register_ops(self, register: Callable[[OpDef], None]) -> None:
        for op in TEST_OPS:
            register(op)


def make_test_registry() -> graphkit.Registry:
    registry = graphkit.Registry(strict=True)
    info = registry.register_plugin(_TestOps(), name="onnx-test-ops")
    assert not info.errors and len(info.ops) == len(TEST_OPS)
    return registry


OPS = make_test_registry()
BUILTIN = graphkit.builtin_registry(strict=True)


# ---------------------------------------------------------------------------------------------
# building models by hand


def vi(name: str, shape: Sequence[int | str | None] | None, elem: int = FLOAT
       ) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def make_model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[onnx.ValueInfoProto],
    outputs: Sequence[onnx.ValueInfoProto],
    initializers: Sequence[onnx.TensorProto] = (),
    functions: Sequence[onnx.FunctionProto] = (),
    domains: Sequence[tuple[str, int]] = (),
    opset: int = OPSET,
) -> onnx.ModelProto:
    graph = helper.make_graph(list(nodes), "g", list(inputs), list(outputs), list(initializers))
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset),
                       *(helper.make_opsetid(d, v) for d, v in domains)],
        functions=list(functions),
    )
    model.ir_version = IR_VERSION
    return model


def mul_add() -> onnx.FunctionProto:
    """LOCAL::MulAdd(a, b) = a * b + b, on standard ops."""
    return helper.make_function(
        LOCAL, "MulAdd", ["a", "b"], ["c"],
        [helper.make_node("Mul", ["a", "b"], ["t"]), helper.make_node("Add", ["t", "b"], ["c"])],
        [helper.make_opsetid("", OPSET)],
    )


def rich_model() -> onnx.ModelProto:
    """Initializers, Constant nodes, a local function, symbolic and unknown dims, metadata."""
    w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "w")
    nodes = [
        helper.make_node("Constant", [], ["k"],
                         value=numpy_helper.from_array(np.ones((2, 3), np.float32))),
        helper.make_node("Add", ["x", "w"], ["s"]),
        helper.make_node("Mul", ["s", "k"], ["p"]),
        helper.make_node("MulAdd", ["p", "k"], ["q"], domain=LOCAL),
        helper.make_node("Relu", ["q"], ["y"]),
        helper.make_node("Exp", ["x"], ["e"]),
    ]
    model = make_model(nodes, [vi("x", ["N", 3])], [vi("y", ["N", 3]), vi("e", [None, 3])],
                       [w], functions=[mul_add()], domains=[(LOCAL, 1)])
    helper.set_model_props(model, {"graphkit.metadata": '{"lecture": 4}',
                                   "graphkit.trainable": '["w"]'})
    return model


def exported_model() -> onnx.ModelProto:
    """What graphkit's own exporter writes: node metadata, an attribute as an extra input."""
    graph = Graph(
        name="exported",
        inputs=[ValueInfo(name="x", dtype="float32", shape=["N", 2])],
        outputs=[ValueInfo(name="y", dtype="float32", shape=["N", 2])],
        constants=[{"name": "b", "dtype": "float32", "shape": [2], "data": [1.0, -1.0],
                    "trainable": True}],
        nodes=[Node(name="sq", op="Pow", inputs=["x"], outputs=["s"],
                    attributes={"exponent": 2.0}),
               Node(name="shift", op="Add", inputs=["s", "b"], outputs=["t"]),
               Node(name="y", op="test.ops::Scale", inputs=["t"], outputs=["y"])],
        metadata={"source": "test"},
    )
    return to_onnx(graph, opset=OPSET, registry=OPS)


SEEDS = {"rich": rich_model().SerializeToString(),
         "exported": exported_model().SerializeToString()}


def graph_end(raw: bytes) -> int:
    """Where the model's graph field ends (fields after it: opsets, metadata, functions)."""
    model = parse_model(raw)
    tail = onnx.ModelProto(opset_import=model.opset_import, metadata_props=model.metadata_props,
                           functions=model.functions).SerializeToString()
    assert raw.endswith(tail), "fields are serialized in field-number order"
    return len(raw) - len(tail)


def run(graph: Graph, registry: graphkit.Registry = OPS, **inputs: Any) -> dict[str, np.ndarray]:
    return execute(graph, inputs, registry=registry).outputs


# ---------------------------------------------------------------------------------------------
# the oracle


def check(data: bytes, registry: graphkit.Registry = OPS, source: str = "fuzz/m.onnx"
          ) -> Graph | None:
    """Import `data`: a Graph that is plain, savable data, or a GraphkitError naming `source`.

    Any other exception propagates and fails the test.
    """
    try:
        graph = from_onnx(parse_model(data, source), registry, source)
    except GraphkitError as exc:
        assert str(exc).startswith(f"{source}: "), str(exc)
        return None
    assert isinstance(graph, Graph)
    _usable(graph, registry)
    return graph


def _usable(graph: Graph, registry: graphkit.Registry) -> None:
    """An accepted graph saves as JSON and loads back equal, and validates or says why not."""
    try:
        text = dumps(graph)
    except FormatError as exc:  # NaN or Infinity in metadata or attributes: JSON has none
        assert "cannot be written as JSON" in str(exc), str(exc)
    else:
        assert loads(text, "again.json") == graph
    try:
        validate(graph, registry)
    except GraphkitError:
        pass


def test_seeds_import_and_run() -> None:
    rich = check(SEEDS["rich"])
    assert rich is not None
    x = np.array([[1, -2, 3], [-4, 5, -6]], np.float32)
    out = run(rich, x=x)
    k = np.ones((2, 3), np.float32)
    p = (x + np.arange(6, dtype=np.float32).reshape(2, 3)) * k
    np.testing.assert_allclose(out["y"], np.maximum(p * k + k, 0))
    np.testing.assert_allclose(out["e"], np.exp(x), rtol=1e-6)
    assert rich.metadata == {"lecture": 4}
    assert [c.name for c in rich.constants if c.trainable] == ["w"]
    exported = check(SEEDS["exported"])
    assert exported is not None
    x = np.array([[1, 2], [3, 4]], np.float32)
    np.testing.assert_allclose(run(exported, x=x)["y"], 3 * (x**2 + [1, -1]))
    assert [c.name for c in exported.constants] == ["b"], "the extra Pow input is dropped"
    assert exported.nodes[0].attributes == {"exponent": 2.0}
    assert exported.metadata == {"source": "test"}


def test_check_fails_on_foreign_exceptions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The oracle itself: an exception other than a GraphkitError is not swallowed."""

    def broken(self: Any) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(onnx_import._Importer, "run", broken)
    with pytest.raises(ZeroDivisionError):
        check(SEEDS["rich"])


def test_check_wants_the_source_in_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check(b"", source="named.onnx") is None

    def anonymous(self: Any) -> None:
        raise FormatError("a message that names no file")

    monkeypatch.setattr(onnx_import._Importer, "run", anonymous)
    with pytest.raises(AssertionError, match="names no file"):
        check(SEEDS["rich"])


# ---------------------------------------------------------------------------------------------
# size cap, empty files, IR versions


def _no_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was read or parsed")

    monkeypatch.setattr(pathlib.Path, "read_bytes", refuse)
    monkeypatch.setattr(onnx, "ModelProto", refuse)


def test_size_cap_is_checked_before_reading(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    raw = SEEDS["rich"]
    expected = check(raw)
    path = tmp_path / "big.onnx"
    path.write_bytes(raw)
    with monkeypatch.context() as patch:
        patch.setenv("GRAPHKIT_MAX_FILE_BYTES", str(len(raw) - 1))
        _no_parsing(patch)
        with pytest.raises(FormatError, match="over the limit") as info:
            load_onnx(path, OPS)
        assert str(info.value).startswith(f"{path}: {len(raw)} bytes")
        with pytest.raises(FormatError, match="over the limit"):
            parse_model(raw, "big.onnx")
        with pytest.raises(FormatError, match="over the limit"):
            graphkit.load(path)
    monkeypatch.setenv("GRAPHKIT_MAX_FILE_BYTES", str(len(raw)))
    assert load_onnx(path, OPS) == expected


def test_external_data_counts_against_the_cap(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """One tensor over the cap, or many that name the same bytes, are refused before reading."""
    path = save_external(tmp_path, [np.zeros(100, np.float32)])
    monkeypatch.setenv("GRAPHKIT_MAX_FILE_BYTES", "399")
    with pytest.raises(FormatError, match="over the limit of 399") as info:
        load_onnx(path, OPS)
    assert "tensor 'w0'" in str(info.value)
    monkeypatch.setenv("GRAPHKIT_MAX_FILE_BYTES", "400")
    assert load_onnx(path, OPS).constant("w0").shape == [100]
    # eight tensors, each 400 bytes, all naming the same 400 bytes of one file
    model = onnx.load_model(str(path), load_external_data=False)
    for n in range(1, 8):
        tensor = model.graph.initializer.add()
        tensor.CopyFrom(model.graph.initializer[0])
        tensor.name = f"w{n}"
    (tmp_path / "model.onnx").write_bytes(model.SerializeToString())
    monkeypatch.setenv("GRAPHKIT_MAX_FILE_BYTES", "2000")
    assert (tmp_path / "model.onnx").stat().st_size < 2000
    with pytest.raises(FormatError, match="external data in all is over the limit"):
        load_onnx(tmp_path / "model.onnx", OPS)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(FormatError, match="ir_version 0") as info:
        load_onnx(path, OPS)
    assert str(info.value).startswith(f"{path}: ")
    with pytest.raises(FormatError, match="ir_version 0"):
        parse_model(b"")
    with pytest.raises(FormatError, match="ir_version 0"):
        graphkit.load(path)


@pytest.mark.parametrize("version", [0, -1])
def test_ir_version_zero_or_less_is_refused(version: int) -> None:
    model = rich_model()
    model.ir_version = version
    with pytest.raises(FormatError, match=f"ir_version {version}"):
        parse_model(model.SerializeToString(), "v.onnx")


@pytest.mark.parametrize("version", [onnx.IR_VERSION + 1, 2**40])
def test_newer_ir_version_is_refused(tmp_path: Path, version: int) -> None:
    model = rich_model()
    model.ir_version = version
    path = tmp_path / "new.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(FormatError, match=f"ir_version {version} is newer") as info:
        load_onnx(path, OPS)
    assert str(info.value).startswith(f"{path}: ")
    model.ir_version = onnx.IR_VERSION
    assert check(model.SerializeToString()) is not None


def test_missing_file_and_folder_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="no such file") as info:
        load_onnx(tmp_path / "absent.onnx", OPS)
    assert str(tmp_path / "absent.onnx") in str(info.value)
    folder = tmp_path / "folder.onnx"
    folder.mkdir()
    with pytest.raises(FormatError, match="is a folder"):
        load_onnx(folder, OPS)


# ---------------------------------------------------------------------------------------------
# truncated, mutated and random bytes


def test_every_prefix_of_the_rich_model_is_refused() -> None:
    """The function is the model's last field, and the graph needs it: no strict prefix loads."""
    raw = SEEDS["rich"]
    for cut in range(len(raw)):
        assert check(raw[:cut]) is None, f"a prefix of {cut} bytes loaded"
        assert check(raw[:cut], BUILTIN) is None
    assert check(raw) is not None


@FUZZ
@given(data=st.data())
def test_truncated_models(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(SEEDS)), label="seed")
    raw = SEEDS[name]
    cut = data.draw(st.integers(0, len(raw)), label="cut")
    graph = check(raw[:cut])
    if cut < graph_end(raw):
        assert graph is None, "a model cut inside its graph loaded"
    if cut == len(raw):
        assert graph is not None
    check(raw[:cut], BUILTIN)


# bytes that mean something to protobuf: tags of the model's fields, varints, lengths
TOKENS = [b"\x08", b"\x08\x00", b"\x08\x7f", b"\x3a", b"\x3a\x00", b"\x3a\xff\xff\xff\xff\x0f",
          b"\x42\x02\x10\x01", b"\x72\x00", b"\xca\x01\x00", b"\x80", b"\xff" * 10, b"\x00",
          b"\x0a\x00", b"\x12\x05float", b"\x1a" + b"\x80" * 9 + b"\x01"]
MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "insert", "delete", "replace", "token", "cut"]),
        st.integers(0, 1 << 20),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=8,
)


def mutate(raw: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    data = bytearray(raw)
    for kind, where, value in mutations:
        position = where % (len(data) + 1)
        if kind == "insert":
            data[position:position] = bytes([value])
        elif kind == "token":
            data[position:position] = TOKENS[value % len(TOKENS)]
        elif kind == "cut":
            del data[position:position + value % 16 + 1]
        elif position < len(data):
            if kind == "flip":
                data[position] ^= 1 << (value % 8)
            elif kind == "delete":
                del data[position]
            else:
                data[position] = value
    return bytes(data)


def test_mutate_changes_bytes() -> None:
    raw = b"\x08\x07\x3a\x00"
    assert mutate(raw, [("flip", 1, 0)]) == b"\x08\x06\x3a\x00"
    assert mutate(raw, [("delete", 0, 0)]) == b"\x07\x3a\x00"
    assert mutate(raw, [("insert", 4, 65)]) == raw + b"A"
    assert mutate(raw, [("token", 0, 0)]) == b"\x08" + raw
    assert mutate(raw, [("cut", 1, 1)]) == b"\x08\x00"
    assert mutate(raw, [("replace", 9, 0)]) == b"\x08\x07\x3a\x00"


@FUZZ
@given(name=st.sampled_from(sorted(SEEDS)), mutations=MUTATIONS)
def test_byte_mutated_models(name: str, mutations: list[tuple[str, int, int]]) -> None:
    data = mutate(SEEDS[name], mutations)
    check(data)
    check(data, BUILTIN)


@FUZZ
@given(data=st.binary(max_size=600) | st.binary(max_size=300).map(lambda b: b"\x08\x07" + b))
def test_random_bytes(data: bytes) -> None:
    check(data)
    check(data, BUILTIN)


@pytest.fixture(scope="module")
def fuzz_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(name=st.sampled_from(sorted(SEEDS)), mutations=MUTATIONS)
def test_mutated_model_files(fuzz_folder: Path, name: str,
                             mutations: list[tuple[str, int, int]]) -> None:
    path = fuzz_folder / "mutated.onnx"
    path.write_bytes(mutate(SEEDS[name], mutations))
    try:
        graph = load_onnx(path, OPS)
    except GraphkitError as exc:
        assert str(exc).startswith(f"{path}: "), str(exc)
    else:
        _usable(graph, OPS)


# ---------------------------------------------------------------------------------------------
# external data


def save_external(folder: Path, arrays: Sequence[np.ndarray]) -> Path:
    """model.onnx computing x + w0 + w1 + ..., every initializer in folder/weights.bin."""
    names = [f"w{n}" for n in range(len(arrays))]
    nodes, last = [], "x"
    for n, name in enumerate(names):
        nodes.append(helper.make_node("Add", [last, name], [f"s{n}"]))
        last = f"s{n}"
    nodes.append(helper.make_node("Identity", [last], ["y"]))
    shape = list(arrays[0].shape)
    model = make_model(nodes, [vi("x", shape)], [vi("y", shape)],
                       [numpy_helper.from_array(a, n) for a, n in zip(arrays, names, strict=True)])
    path = folder / "model.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    return path


WEIGHTS = [np.arange(6, dtype=np.float32).reshape(2, 3),
           np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)]


def test_external_data_loads(tmp_path: Path) -> None:
    path = save_external(tmp_path, WEIGHTS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "weights.bin"]
    assert (tmp_path / "weights.bin").stat().st_size == 48
    stored = onnx.load_model(str(path), load_external_data=False)
    assert all(t.data_location == TensorProto.EXTERNAL for t in stored.graph.initializer)
    graph = load_onnx(path, OPS)
    for n, array in enumerate(WEIGHTS):
        np.testing.assert_array_equal(graph.constant(f"w{n}").to_numpy(), array)
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(run(graph, x=x)["y"], x + WEIGHTS[0] + WEIGHTS[1])
    assert graphkit.load(path).constants == graph.constants  # the default registry too


def test_external_data_in_constant_nodes_and_functions_loads(tmp_path: Path) -> None:
    """Constant nodes' tensors, also inside a model-local function, are read from the folder."""
    body = [helper.make_node("Constant", [], ["k"],
                             value=numpy_helper.from_array(WEIGHTS[1], "k")),
            helper.make_node("Add", ["a", "k"], ["c"])]
    function = helper.make_function(LOCAL, "AddK", ["a"], ["c"], body,
                                    [helper.make_opsetid("", OPSET)])
    nodes = [helper.make_node("Constant", [], ["c0"],
                              value=numpy_helper.from_array(WEIGHTS[0], "c0")),
             helper.make_node("Add", ["x", "c0"], ["s"]),
             helper.make_node("AddK", ["s"], ["y"], domain=LOCAL)]
    model = make_model(nodes, [vi("x", [2, 3])], [vi("y", [2, 3])], functions=[function],
                       domains=[(LOCAL, 1)])
    path = tmp_path / "model.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0, convert_attribute=True)
    stored = onnx.load_model(str(path), load_external_data=False)
    assert stored.graph.node[0].attribute[0].t.data_location == TensorProto.EXTERNAL
    assert stored.functions[0].node[0].attribute[0].t.data_location == TensorProto.EXTERNAL
    graph = load_onnx(path, OPS)
    x = np.full((2, 3), 0.5, np.float32)
    np.testing.assert_array_equal(run(graph, x=x)["y"], x + WEIGHTS[0] + WEIGHTS[1])


def _retarget(path: Path, **entries: str) -> Path:
    """The model at `path` with tensor w0's external_data entries changed (a new file)."""
    model = onnx.load_model(str(path), load_external_data=False)
    tensor = model.graph.initializer[0]
    kept = [(e.key, e.value) for e in tensor.external_data if e.key not in entries]
    del tensor.external_data[:]
    for key, value in [*kept, *entries.items()]:
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    tampered = path.with_name("tampered.onnx")
    tampered.write_bytes(model.SerializeToString())
    return tampered


def _outside(tmp_path: Path) -> Path:
    """A copy of the weights outside the model's folder."""
    outside = tmp_path / "outside.bin"
    outside.write_bytes((tmp_path / "model" / "weights.bin").read_bytes())
    return outside


def _parent(tmp_path: Path, path: Path) -> dict[str, str]:
    _outside(tmp_path)
    return {"location": "../outside.bin"}


def _dotted(tmp_path: Path, path: Path) -> dict[str, str]:
    (path.parent / "sub").mkdir()
    return {"location": "sub/../weights.bin"}


def _absolute(tmp_path: Path, path: Path) -> dict[str, str]:
    return {"location": str(_outside(tmp_path))}


def _absolute_inside(tmp_path: Path, path: Path) -> dict[str, str]:
    return {"location": str(path.parent / "weights.bin")}


def _symlink_outside(tmp_path: Path, path: Path) -> dict[str, str]:
    os.symlink(_outside(tmp_path), path.parent / "link.bin")
    return {"location": "link.bin"}


def _symlink_inside(tmp_path: Path, path: Path) -> dict[str, str]:
    os.symlink(path.parent / "weights.bin", path.parent / "link.bin")
    return {"location": "link.bin"}


def _symlinked_folder(tmp_path: Path, path: Path) -> dict[str, str]:
    _outside(tmp_path)
    os.symlink(tmp_path, path.parent / "up", target_is_directory=True)
    return {"location": "up/outside.bin"}


def _hard_link_outside(tmp_path: Path, path: Path) -> dict[str, str]:
    os.link(_outside(tmp_path), path.parent / "hard.bin")
    return {"location": "hard.bin"}


def _hard_link_inside(tmp_path: Path, path: Path) -> dict[str, str]:
    os.link(path.parent / "weights.bin", path.parent / "hard.bin")
    return {"location": "hard.bin"}


def _constant(**entries: str) -> Callable[[Path, Path], dict[str, str]]:
    return lambda tmp_path, path: entries


def _folder(tmp_path: Path, path: Path) -> dict[str, str]:
    (path.parent / "weights.dir").mkdir()
    return {"location": "weights.dir"}


def _fifo(tmp_path: Path, path: Path) -> dict[str, str]:
    os.mkfifo(path.parent / "pipe.bin")
    return {"location": "pipe.bin"}


TAMPERING: dict[str, tuple[Callable[[Path, Path], dict[str, str]], str]] = {
    "parent": (_parent, "relative path inside"),
    "dotdot-inside": (_dotted, "relative path inside"),
    "absolute": (_absolute, "relative path inside"),
    "absolute-inside": (_absolute_inside, "relative path inside"),
    "empty": (_constant(location=""), "relative path inside"),
    "symlink-outside": (_symlink_outside, "symbolic link"),
    "symlink-inside": (_symlink_inside, "symbolic link"),
    "symlinked-folder": (_symlinked_folder, "symbolic link"),
    "hard-link-outside": (_hard_link_outside, "plain file with one link"),
    "hard-link-inside": (_hard_link_inside, "plain file with one link"),
    "folder": (_folder, "plain file with one link"),
    "fifo": (_fifo, "plain file with one link"),
    "missing": (_constant(location="absent.bin"), "no such file"),
    "nul": (_constant(location="weights\0.bin"), "no such file"),
    "offset-beyond": (_constant(offset="49"), "outside the file"),
    "offset-at-end": (_constant(offset="48", length="24"), "outside the file"),
    "length-beyond": (_constant(offset="0", length="49"), "outside the file"),
    "offset-plus-length": (_constant(offset="40", length="24"), "outside the file"),
    "negative-offset": (_constant(offset="-4"), "outside the file"),
    "negative-length": (_constant(length="-24"), "outside the file"),
    "offset-not-a-number": (_constant(offset="abc"), "whole numbers"),
    "length-not-a-number": (_constant(length="1e3"), "whole numbers"),
    "huge-length": (_constant(length="9" * 5000), "whole numbers"),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampered_external_data_is_refused(tmp_path: Path, case: str) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    path = save_external(folder, WEIGHTS)
    assert load_onnx(_retarget(path), OPS).constant("w0").shape == [2, 3]
    tamper, expected = TAMPERING[case]
    tampered = _retarget(path, **tamper(tmp_path, path))
    with pytest.raises(FormatError) as info:
        load_onnx(tampered, OPS)
    message = str(info.value)
    assert message.startswith(f"{tampered}: tensor 'w0' keeps its data in "), message
    assert expected in message, message


def test_external_data_is_never_read_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """onnx reads external data relative to the working directory when given no folder: the
    importer must not let it, neither for a parsed model nor for a local function's body."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "secret.bin").write_bytes(np.array([42, 43], np.float32).tobytes())
    monkeypatch.chdir(cwd)

    def external(name: str) -> onnx.TensorProto:
        tensor = helper.make_tensor(name, FLOAT, [2], [0.0, 0.0])
        del tensor.float_data[:]
        tensor.data_location = TensorProto.EXTERNAL
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", "secret.bin"
        return tensor

    model = make_model([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", [2])],
                       [vi("y", [2])], [external("w")])
    with pytest.raises(FormatError, match="tensor 'w' keeps its data in an external file"):
        from_onnx(parse_model(model.SerializeToString()), OPS)

    body = [helper.make_node("Constant", [], ["k"], value=external("k")),
            helper.make_node("Add", ["a", "k"], ["c"])]
    function = helper.make_function(LOCAL, "AddK", ["a"], ["c"], body,
                                    [helper.make_opsetid("", OPSET)])
    model = make_model([helper.make_node("AddK", ["x"], ["y"], domain=LOCAL)], [vi("x", [2])],
                       [vi("y", [2])], functions=[function], domains=[(LOCAL, 1)])
    with pytest.raises(FormatError, match="tensor 'k' keeps its data in an external file"):
        from_onnx(parse_model(model.SerializeToString()), OPS)
    elsewhere = tmp_path / "models"
    elsewhere.mkdir()
    (elsewhere / "m.onnx").write_bytes(model.SerializeToString())
    with pytest.raises(FormatError, match="tensor 'k' keeps its data in 'secret.bin': no such"):
        load_onnx(elsewhere / "m.onnx", OPS)


ENTRY_VALUES = st.one_of(
    st.sampled_from(["weights.bin", "0", "24", "48", "-1", "", ".", "..", "/", "../weights.bin",
                     "model.onnx", "weights.bin/", "./weights.bin", "\0", "1e3", " 24", "٣",
                     "9" * 30]),
    st.integers(-100, 100).map(str),
    st.text(max_size=12),
)


@FUZZ
@given(entries=st.dictionaries(st.sampled_from(["location", "offset", "length", "checksum",
                                                "basepath"]) | st.text(max_size=4),
                               ENTRY_VALUES, max_size=4))
@example(entries={"offset": "abc"})
@example(entries={"location": "\0"})
def test_fuzzed_external_data_entries(fuzz_folder: Path, entries: dict[str, str]) -> None:
    folder = fuzz_folder / "external"
    path = folder / "model.onnx"
    if not path.exists():
        folder.mkdir()
        save_external(folder, WEIGHTS)
    tampered = _retarget(path, **entries)
    try:
        graph = load_onnx(tampered, OPS)
    except GraphkitError as exc:
        assert str(exc).startswith(f"{tampered}: "), str(exc)
    else:
        _usable(graph, OPS)


# ---------------------------------------------------------------------------------------------
# what is imported, and what is refused


def test_unsupported_ops_are_listed_in_one_error() -> None:
    nodes = [
        helper.make_node("Foo", ["x"], ["a"]),
        helper.make_node("Relu", ["a"], ["b"]),
        helper.make_node("Foo", ["b"], ["c"]),
        helper.make_node("Baz", ["c"], ["d"], domain="Bar"),
        helper.make_node("Foo", ["d"], ["e"]),
        helper.make_node("Celu", ["e"], ["f"]),  # supported only from opset 18
        helper.make_node("Scale", ["f"], ["y"], domain="test.ops"),
    ]
    model = make_model(nodes, [vi("x", [2])], [vi("y", [2])],
                       domains=[("Bar", 1), ("test.ops", 1)])
    with pytest.raises(FormatError) as info:
        from_onnx(model, OPS, "ops.onnx")
    assert str(info.value) == ("ops.onnx: unsupported ONNX ops: Bar::Baz (1 node), "
                               "Celu (1 node), Foo (3 nodes)")
    with pytest.raises(FormatError) as info:
        from_onnx(model, BUILTIN, "ops.onnx")
    message = str(info.value)
    assert message.startswith("ops.onnx: unsupported ONNX ops: Bar::Baz (1 node), ")
    assert "Foo (3 nodes)" in message and "test.ops::Scale (1 node)" in message
    assert message.count("Foo") == 1


def test_unsupported_ops_inside_an_inlined_function_are_listed() -> None:
    function = helper.make_function(
        LOCAL, "Odd", ["a"], ["c"],
        [helper.make_node("Foo", ["a"], ["t"]), helper.make_node("Foo", ["t"], ["c"])],
        [helper.make_opsetid("", OPSET)],
    )
    nodes = [helper.make_node("Odd", ["x"], ["t"], domain=LOCAL),
             helper.make_node("Odd", ["t"], ["y"], domain=LOCAL)]
    model = make_model(nodes, [vi("x", [2])], [vi("y", [2])], functions=[function],
                       domains=[(LOCAL, 1)])
    with pytest.raises(FormatError, match=r"^odd.onnx: unsupported ONNX ops: Foo \(4 nodes\)$"):
        from_onnx(model, OPS, "odd.onnx")


def test_the_op_of_an_opset_range_is_chosen() -> None:
    model = make_model([helper.make_node("Celu", ["x"], ["y"])], [vi("x", [2])],
                       [vi("y", [2])], opset=18)
    assert from_onnx(model, OPS).nodes[0].op.name == "Celu"


CONSTANT_NODES = {
    "tensor": (dict(value=numpy_helper.from_array(np.array([[1.5, -2]], np.float32))),
               np.array([[1.5, -2]], np.float32)),
    "tensor_int32": (dict(value=numpy_helper.from_array(np.array([3, 4], np.int32))),
                     np.array([3, 4], np.int32)),
    "tensor_bool": (dict(value=numpy_helper.from_array(np.array([True, False]))),
                    np.array([True, False])),
    "tensor_float64_scalar": (dict(value=numpy_helper.from_array(np.array(0.25))),
                              np.array(0.25)),
    "value_float": (dict(value_float=2.5), np.array(2.5, np.float32)),
    "value_floats": (dict(value_floats=[1.0, 2.0, 3.0]), np.array([1, 2, 3], np.float32)),
    "value_int": (dict(value_int=7), np.array(7, np.int64)),
    "value_ints": (dict(value_ints=[1, -2]), np.array([1, -2], np.int64)),
}


@pytest.mark.parametrize("kind", sorted(CONSTANT_NODES))
def test_constant_nodes_become_constants(kind: str) -> None:
    attributes, expected = CONSTANT_NODES[kind]
    nodes = [helper.make_node("Constant", [], ["k"], **attributes),
             helper.make_node("Identity", ["k"], ["y"])]
    elem = helper.np_dtype_to_tensor_dtype(expected.dtype)
    model = make_model(nodes, [], [vi("y", list(expected.shape), elem)])
    graph = from_onnx(model, OPS)
    assert [n.op.name for n in graph.nodes] == ["Identity"], "the Constant node is no node"
    constant = graph.constant("k")
    assert constant.dtype == str(expected.dtype) and constant.shape == list(expected.shape)
    assert not constant.trainable
    value = constant.to_numpy()
    assert value.dtype == expected.dtype
    np.testing.assert_array_equal(value, expected)
    np.testing.assert_array_equal(run(graph)["y"], expected)


def test_initializers_become_constants() -> None:
    arrays = {"f64": np.array([[0.5, 1.5]]), "i64": np.array([1, 2, 3], np.int64),
              "big": np.linspace(0, 1, 200, dtype=np.float32)}
    nodes = [helper.make_node("Identity", [name], [f"out_{name}"]) for name in arrays]
    outputs = [vi(f"out_{name}", list(a.shape), helper.np_dtype_to_tensor_dtype(a.dtype))
               for name, a in arrays.items()]
    initializers = [numpy_helper.from_array(a, name) for name, a in arrays.items()]
    # old IR versions list initializers among the inputs too: they stay constants
    model = make_model(nodes, [vi("f64", [1, 2], TensorProto.DOUBLE)], outputs, initializers)
    graph = from_onnx(model, OPS)
    assert graph.inputs == []
    assert {c.name for c in graph.constants} == set(arrays)
    outputs = run(graph)
    for name, array in arrays.items():
        assert graph.constant(name).to_numpy().dtype == array.dtype
        np.testing.assert_array_equal(outputs[f"out_{name}"], array)


@pytest.mark.parametrize("attributes, expected", [
    (dict(value_string="text"), "attribute 'value_string' is not supported"),
    (dict(value_strings=["a"]), "attribute 'value_strings' is not supported"),
    (dict(sparse_value=helper.make_sparse_tensor(
        helper.make_tensor("v", FLOAT, [1], [1.0]), helper.make_tensor("i", 7, [1], [0]), [2])),
     "attribute 'sparse_value' is not supported"),
    (dict(value_float=1.0, value_int=1), "needs exactly one value attribute"),
    (dict(value=numpy_helper.from_array(np.ones(2, np.float16))),
     "constant 'k' has element type FLOAT16"),
])
def test_unusable_constant_nodes_are_refused(attributes: dict[str, Any], expected: str) -> None:
    nodes = [helper.make_node("Constant", [], ["k"], name="const", **attributes),
             helper.make_node("Identity", ["k"], ["y"])]
    model = make_model(nodes, [], [vi("y", [2])])
    with pytest.raises(FormatError) as info:
        from_onnx(model, OPS, "c.onnx")
    assert str(info.value).startswith("c.onnx: ") and expected in str(info.value)


def test_local_function_of_an_unknown_domain_is_inlined_and_runs() -> None:
    # Outer(a, b) = MulAdd(a, b) * a, itself a local function calling another
    outer = helper.make_function(
        LOCAL, "Outer", ["a", "b"], ["c"],
        [helper.make_node("MulAdd", ["a", "b"], ["t"], domain=LOCAL),
         helper.make_node("Mul", ["t", "a"], ["c"])],
        [helper.make_opsetid("", OPSET), helper.make_opsetid(LOCAL, 1)],
    )
    nodes = [helper.make_node("MulAdd", ["x", "y"], ["p"], domain=LOCAL),
             helper.make_node("Outer", ["p", "y"], ["z"], domain=LOCAL)]
    model = make_model(nodes, [vi("x", [3]), vi("y", [3])], [vi("z", [3])],
                       functions=[mul_add(), outer], domains=[(LOCAL, 1)])
    onnx.checker.check_model(model, full_check=True)
    graph = from_onnx(model, OPS)
    assert {n.op.name for n in graph.nodes} == {"Mul", "Add"}
    assert len(graph.nodes) == 5
    x, y = np.array([1, -2, 3], np.float32), np.array([0.5, 2, -1], np.float32)
    p = x * y + y
    np.testing.assert_allclose(run(graph, x=x, y=y)["z"], (p * y + y) * p)
    validate(graph, OPS)


def test_function_of_a_known_domain_is_not_inlined() -> None:
    model = make_model([helper.make_node("Scale", ["x"], ["y"], domain="test.ops")],
                       [vi("x", [2])], [vi("y", [2])], functions=[_scale_body(OPSET)],
                       domains=[("test.ops", 1)])
    graph = from_onnx(model, OPS)
    assert [str(n.op) for n in graph.nodes] == ["test.ops::Scale"]
    np.testing.assert_array_equal(run(graph, x=np.array([1, 2], np.float32))["y"], [3, 6])


def test_recursive_local_function_is_refused() -> None:
    function = helper.make_function(
        LOCAL, "Loop", ["a"], ["c"], [helper.make_node("Loop", ["a"], ["c"], domain=LOCAL)],
        [helper.make_opsetid("", OPSET), helper.make_opsetid(LOCAL, 1)],
    )
    model = make_model([helper.make_node("Loop", ["x"], ["y"], domain=LOCAL)], [vi("x", [2])],
                       [vi("y", [2])], functions=[function], domains=[(LOCAL, 1)])
    with pytest.raises(FormatError, match="^loop.onnx: cannot import: .*recursive"):
        from_onnx(model, OPS, "loop.onnx")


def _pow_model(exponent: str, initializers: Sequence[onnx.TensorProto] = (),
               constant_node: bool = False) -> onnx.ModelProto:
    nodes = [helper.make_node("Pow", ["x", exponent], ["y"], name="power")]
    if constant_node:
        nodes.insert(0, helper.make_node("Constant", [], [exponent], value_float=3.0))
    inputs = [vi("x", [2])] + ([vi(exponent, [])] if not (initializers or constant_node) else [])
    return make_model(nodes, inputs, [vi("y", [2])], initializers)


def test_constant_input_becomes_an_attribute() -> None:
    x = np.array([2, 3], np.float32)
    graph = from_onnx(_pow_model("e", [numpy_helper.from_array(np.array(2, np.float32), "e")]),
                      OPS)
    assert graph.nodes[0].attributes == {"exponent": 2.0}
    assert graph.constants == [], "the initializer carried the attribute, and is dropped"
    np.testing.assert_array_equal(run(graph, x=x)["y"], x**2)
    graph = from_onnx(_pow_model("e", constant_node=True), OPS)
    assert graph.nodes[0].attributes == {"exponent": 3.0}
    np.testing.assert_array_equal(run(graph, x=x)["y"], x**3)


def test_non_constant_input_where_an_attribute_is_needed_is_refused() -> None:
    with pytest.raises(FormatError) as info:
        from_onnx(_pow_model("e"), OPS, "pow.onnx")
    message = str(info.value)
    assert message.startswith("pow.onnx: node 'power' (Pow): input 'e' must be a constant"), \
        message


@pytest.mark.parametrize("registry", [OPS, BUILTIN], ids=["test-ops", "builtin"])
@pytest.mark.parametrize("where", ["input", "output", "initializer"])
def test_float16_names_the_value(where: str, registry: graphkit.Registry) -> None:
    half = TensorProto.FLOAT16
    if where == "input":
        model = make_model([helper.make_node("Relu", ["halfx"], ["y"])],
                           [vi("halfx", [2], half)], [vi("y", [2])])
    elif where == "output":
        model = make_model([helper.make_node("Relu", ["x"], ["halfx"])], [vi("x", [2])],
                           [vi("halfx", [2], half)])
    else:
        model = make_model([helper.make_node("Add", ["x", "halfx"], ["y"])], [vi("x", [2])],
                           [vi("y", [2])],
                           [numpy_helper.from_array(np.ones(2, np.float16), "halfx")])
    with pytest.raises(FormatError) as info:
        from_onnx(model, registry, "half.onnx")
    message = str(info.value)
    assert message.startswith("half.onnx: ") and "'halfx'" in message, message
    assert "FLOAT16" in message and "float32" in message, message


def test_unknown_dims_become_symbolic() -> None:
    model = make_model(
        [helper.make_node("Add", ["x", "b"], ["s"]), helper.make_node("Relu", ["s"], ["y"])],
        [vi("x", [None, 3]), vi("b", [None, "2N"])],
        [vi("y", ["batch size", None])],
    )
    graph = from_onnx(model, OPS)
    x, b = graph.inputs
    (y,) = graph.outputs
    for value in (x, b, y):
        assert isinstance(value.shape[0], str) and value.shape[0].isidentifier()
    assert x.shape[1] == 3 and b.shape[1] == "d2N" and y.shape[0] == "batch_size"
    assert isinstance(y.shape[1], str) and y.shape[1].isidentifier()
    assert len({x.shape[0], b.shape[0], y.shape[1]}) == 3, "unknown dims are independent"
    validate(graph, OPS)
    for batch in (1, 4):
        values = run(graph, x=np.ones((batch, 3), np.float32), b=np.ones((batch, 3), np.float32))
        assert values["y"].shape == (batch, 3)
    unranked = make_model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", None)],
                          [vi("y", [2])])
    assert from_onnx(unranked, OPS).inputs[0].shape is None


def test_non_tensor_value_is_refused() -> None:
    sequence = helper.make_tensor_sequence_value_info("seq", FLOAT, [2])
    model = make_model([helper.make_node("Identity", ["seq"], ["y"])], [sequence],
                       [vi("y", [2])])
    with pytest.raises(FormatError, match="^s.onnx: value 'seq' is not a tensor"):
        from_onnx(model, OPS, "s.onnx")


# ---------------------------------------------------------------------------------------------
# the built-in ops' own ONNX mappings, through the default registry


def test_default_registry_imports_and_runs_standard_ops(tmp_path: Path) -> None:
    path = tmp_path / "rich.onnx"
    path.write_bytes(SEEDS["rich"])
    graph = graphkit.load(path)
    assert graph == load_onnx(path, BUILTIN) == check(SEEDS["rich"], BUILTIN)
    x = np.array([[1, -2, 3], [-4, 5, -6]], np.float32)
    expected = run(load_onnx(path, OPS), x=x)
    for name, value in execute(graph, {"x": x}).outputs.items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-6)


def test_default_registry_runs_an_unknown_domains_function_body() -> None:
    """The built-ins know no test.ops::Scale: its function body (2 * x) is inlined instead."""
    graph = check(SEEDS["exported"], BUILTIN)
    assert graph is not None
    assert {n.op.domain for n in graph.nodes} == {""}
    x = np.array([[1, 2], [3, 4]], np.float32)
    out = execute(graph, {"x": x}, registry=BUILTIN).outputs["y"]
    np.testing.assert_allclose(out, 2 * (x**2 + [1, -1]))


def test_default_registry_reshape_needs_a_constant_shape() -> None:
    def reshape(shape: onnx.ValueInfoProto | onnx.TensorProto) -> onnx.ModelProto:
        given = isinstance(shape, onnx.ValueInfoProto)
        return make_model([helper.make_node("Reshape", ["x", "shape"], ["y"], name="flat")],
                          [vi("x", [2, 3]), *([shape] if given else [])], [vi("y", [3, 2])],
                          [] if given else [shape])

    with pytest.raises(FormatError) as info:
        from_onnx(reshape(vi("shape", [2], TensorProto.INT64)), BUILTIN, "r.onnx")
    assert str(info.value).startswith(
        "r.onnx: node 'flat' (Reshape): input 'shape' must be a constant"), str(info.value)
    graph = from_onnx(reshape(numpy_helper.from_array(np.array([3, 2]), "shape")), BUILTIN)
    assert graph.constants == []
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(run(graph, BUILTIN, x=x)["y"], x.reshape(3, 2))


def test_default_registry_external_data(tmp_path: Path) -> None:
    path = save_external(tmp_path, WEIGHTS)
    graph = graphkit.load(path)
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(execute(graph, {"x": x}).outputs["y"],
                                  x + WEIGHTS[0] + WEIGHTS[1])


# ---------------------------------------------------------------------------------------------
# structured fuzzing: models assembled from plausible and implausible parts

ELEM_TYPES = [FLOAT, TensorProto.DOUBLE, TensorProto.INT64, TensorProto.INT32, TensorProto.BOOL,
              TensorProto.FLOAT16, TensorProto.STRING, TensorProto.UNDEFINED, 999]
ODD_NAMES = ["", "x", "k", "x::input1", "a b", "n" * 300]
DIMS = st.lists(st.sampled_from([2, 2, 2, None, "N", 0, -1, "", "1 x", "\u00e9"]), max_size=3)
ARITY = {"Add": 2, "Mul": 2, "Relu": 1, "Exp": 1, "MatMul": 2, "Identity": 1, "Pow": 2,
         "Constant": 0, "Foo": 1, "MulAdd": 2, "Scale": 1, "Celu": 1}
CONSTANT_VALUES = [{"value_float": 1.5}, {"value_floats": [1.0, 2.0]}, {"value_ints": [1, 2]},
                   {"value": numpy_helper.from_array(np.ones(2))},
                   {"value": numpy_helper.from_array(np.array(np.nan, np.float32))},
                   {"value_string": "s"}, {}]
ARRAYS = [np.ones(2, np.float32), np.array(2.0, np.float32), np.arange(3),
          np.ones(2, np.float16), np.array([np.nan, np.inf]), np.zeros((0, 2))]


def _value(draw: st.DrawFn, name: str) -> onnx.ValueInfoProto:
    """Mostly a float32 [2]; sometimes any element type and shape."""
    if draw(st.integers(0, 3)) == 0:
        return helper.make_tensor_value_info(name, draw(st.sampled_from(ELEM_TYPES)),
                                             draw(st.none() | DIMS))
    return vi(name, [2])


@st.composite
def assembled_models(draw: st.DrawFn) -> bytes:
    """A chain of nodes over x (and initializers), mostly well formed, sometimes not."""
    defined = ["x"]
    initializers = [numpy_helper.from_array(draw(st.sampled_from(ARRAYS)), name)
                    for name in draw(st.lists(st.sampled_from(["w", "b", "x", ""]),
                                              max_size=2))]
    defined += [t.name for t in initializers]
    nodes = []
    for index in range(draw(st.integers(0, 5))):
        op = draw(st.sampled_from(sorted(ARITY)))
        count = draw(st.sampled_from([ARITY[op]] * 4 + [0, 1, 3]))
        inputs = [draw(st.sampled_from(defined) | st.sampled_from(ODD_NAMES))
                  if draw(st.integers(0, 7)) == 0 else draw(st.sampled_from(defined))
                  for _ in range(count)]
        output = draw(st.sampled_from(ODD_NAMES)) if draw(st.integers(0, 7)) == 0 \
            else f"v{index}"
        attributes = draw(st.sampled_from(CONSTANT_VALUES)) if op == "Constant" else \
            draw(st.sampled_from([{}] * 6 + [{"exponent": 2.0}, {"value_float": 1.0}]))
        domain = {"MulAdd": LOCAL, "Scale": "test.ops"}.get(op)
        nodes.append(helper.make_node(op, inputs, [output], domain=domain, **attributes))
        defined.append(output)
    outputs = draw(st.lists(st.sampled_from(defined), min_size=draw(st.sampled_from([1, 1, 0])),
                            max_size=2))
    model = make_model(nodes, [_value(draw, "x")], [_value(draw, name) for name in outputs],
                       initializers,
                       functions=draw(st.sampled_from([[mul_add()], [mul_add()], [],
                                                       [mul_add(), _scale_body(OPSET)]])),
                       domains=[(LOCAL, 1), ("test.ops", 1)],
                       opset=draw(st.sampled_from([OPSET] * 6 + [18, 11])))
    props = draw(st.dictionaries(
        st.sampled_from(["graphkit.metadata", "graphkit.trainable", "graphkit.untyped",
                         "graphkit.unshaped", "graphkit.extra_inputs", "other"]),
        st.sampled_from(['["x"]', '["w", "b"]', '{"a": 1}', "[", "5", "null", '[["x"]]',
                         '{"a": NaN}', "", "[" * 5000 + "]" * 5000]),
        max_size=3))
    helper.set_model_props(model, props)
    return model.SerializeToString()


@FUZZ
@given(data=assembled_models())
def test_assembled_models(data: bytes) -> None:
    check(data)
    check(data, BUILTIN)
