"""The JSON file layer: lossless round trips, a readable layout, refusals, atomic bounded I/O."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import tempfile
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphkit
import graphkit.io.atomic
import graphkit.io.json
import graphkit.io.reading
from graphkit import dumps, load, loads, save
from graphkit.errors import FormatError, GraphkitError
from graphkit.model import (
    FORMAT_VERSION,
    INLINE_LIMIT,
    Constant,
    Graph,
    Node,
    OpRef,
    Tensor,
    ValueInfo,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(
    p for p in (ROOT / "examples").glob("*.json") if not p.name.endswith(".inputs.json")
)
DTYPES = ["float32", "float64", "int32", "int64", "bool"]

# ---------------------------------------------------------------------------------------------
# helpers


def assert_same_tensor(a: Tensor, b: Tensor) -> None:
    """Same dtype, shape and values, bit for bit (so nan == nan and -0.0 != 0.0)."""
    assert (a.dtype, a.shape) == (b.dtype, b.shape)
    x, y = a.to_numpy(), b.to_numpy()
    assert x.dtype == y.dtype == np.dtype(a.dtype)
    assert list(x.shape) == list(y.shape) == a.shape
    assert x.tobytes() == y.tobytes()


def assert_same_graph(a: Graph, b: Graph) -> None:
    assert a == b
    assert len(a.constants) == len(b.constants)
    for x, y in zip(a.constants, b.constants, strict=True):
        assert_same_tensor(x, y)


def save_and_load(graph: Graph) -> Graph:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "graph.json"
        save(graph, path)
        assert os.listdir(folder) == ["graph.json"]
        return load(path)


def constant(name: str, value: object, dtype: str | None = None, **extra: object) -> Constant:
    tensor = Tensor.from_numpy(value, dtype=dtype)
    return Constant(name=name, **tensor.model_dump(exclude_none=True), **extra)


def node_lines(text: str) -> list[str]:
    """The lines of the saved `nodes` list, between its brackets."""
    lines = text.splitlines()
    start = lines.index('  "nodes": [')
    end = lines.index("  ]", start)
    return lines[start + 1 : end]


def full_graph() -> Graph:
    """A graph using every feature of the format."""
    return Graph(
        name="everything",
        metadata={"description": "all features", "nested": {"a": [1, 2.5, None, True, "é"]}},
        inputs=[
            ValueInfo(name="X", dtype="float32", shape=["N", 3]),
            ValueInfo(name="scalar", shape=[]),
            ValueInfo(name="anything"),
        ],
        outputs=[ValueInfo(name="out"), ValueInfo(name="aux", dtype="int64")],
        constants=[
            constant("small", [[1.0, 2.0], [3.0, 4.0]]),
            constant("big", np.arange(100, dtype=np.float32).reshape(10, 10), trainable=True),
            constant("weird", [np.nan, -np.inf, np.inf, -0.0]),
            constant("flags", [True, False, True]),
            constant("counts", np.arange(7, dtype=np.int32)),
            constant("empty", np.zeros((0, 3), dtype=np.int64)),
            constant("zero_d", 7, dtype="int64"),
        ],
        nodes=[
            Node(name="first", op="MatMul", inputs=["X", "small"], outputs=["xs"]),
            Node(name="y", op=OpRef(domain="my.ops", name="Scale", version=3),
                 inputs=["xs"], outputs=["y", "aux"], attributes={"factor": 2.5, "axes": [0, 1]}),
            Node(name="out", op="ai.onnx::Relu@2", inputs=["y"], outputs=["out"]),
        ],
    )


# ---------------------------------------------------------------------------------------------
# strategies

NAMES = st.text(min_size=1, max_size=12)
SYMBOLS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
DIMS = st.one_of(st.integers(0, 2**40), SYMBOLS)
JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
OP_REFS = st.builds(
    OpRef,
    domain=st.just("") | st.from_regex(r"[A-Za-z0-9_.\-]{1,10}", fullmatch=True),
    name=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True),
    version=st.integers(1, 10**9),
)


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6))
    # the default elements include nan, +-inf, -0.0 and subnormals for the float dtypes
    return draw(hnp.arrays(np.dtype(dtype), shape))


@st.composite
def constants(draw: st.DrawFn) -> Constant:
    tensor = Tensor.from_numpy(draw(arrays()))
    return Constant(name=draw(NAMES), trainable=draw(st.booleans()),
                    **tensor.model_dump(exclude_none=True))


VALUE_INFOS = st.builds(
    ValueInfo,
    name=NAMES,
    dtype=st.none() | st.sampled_from(DTYPES),
    shape=st.none() | st.lists(DIMS, max_size=4),
)


@st.composite
def nodes(draw: st.DrawFn) -> Node:
    outputs = draw(st.lists(NAMES, min_size=1, max_size=3))
    return Node(
        name=draw(st.just(outputs[0]) | NAMES),
        op=draw(OP_REFS | OP_REFS.map(str)),
        inputs=draw(st.lists(NAMES, max_size=3)),
        outputs=outputs,
        attributes=draw(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=3)),
    )


GRAPHS = st.builds(
    Graph,
    name=NAMES,
    inputs=st.lists(VALUE_INFOS, max_size=3),
    outputs=st.lists(VALUE_INFOS, min_size=1, max_size=3),
    constants=st.lists(constants(), max_size=4),
    nodes=st.lists(nodes(), max_size=4),
    metadata=st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4),
)

ROUND_TRIP = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# ---------------------------------------------------------------------------------------------
# round trips


def test_examples_are_found() -> None:
    assert len(EXAMPLES) >= 5
    assert all(p.is_file() for p in EXAMPLES)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_round_trip_is_lossless(path: Path, tmp_path: Path) -> None:
    graph = load(path)
    target = tmp_path / path.name
    save(graph, target)
    again = load(target)
    assert_same_graph(graph, again)
    assert target.read_text(encoding="utf-8") == dumps(again)  # saving is a fixpoint
    original = json.loads(path.read_bytes())
    assert again.name == original["name"]
    assert len(again.nodes) == len(original.get("nodes", []))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_constants_keep_their_values(path: Path) -> None:
    original = json.loads(path.read_bytes())
    graph = save_and_load(load(path))
    for raw, loaded in zip(original.get("constants", []), graph.constants, strict=True):
        expected = np.asarray(raw["data"], dtype=raw.get("dtype", "float64"))
        assert loaded.to_numpy().tobytes() == expected.tobytes()
        assert loaded.trainable == raw.get("trainable", False)


def test_every_feature_round_trips() -> None:
    graph = full_graph()
    again = save_and_load(graph)
    assert_same_graph(graph, again)
    assert again.nodes[1].op == OpRef(domain="my.ops", name="Scale", version=3)
    assert again.nodes[2].op.key == ("ai.onnx", "Relu", 2)
    assert again.inputs[0].shape == ["N", 3]
    assert again.inputs[1].shape == []
    assert again.inputs[2].shape is None and again.inputs[2].dtype is None
    weird = again.constant("weird").to_numpy()
    assert np.isnan(weird[0]) and weird[1] == -np.inf and weird[2] == np.inf
    assert np.signbit(weird[3])
    assert again.constant("empty").to_numpy().shape == (0, 3)
    assert again.constant("zero_d").to_numpy().shape == ()


@ROUND_TRIP
@given(graph=GRAPHS)
def test_generated_graphs_round_trip_losslessly(graph: Graph) -> None:
    again = save_and_load(graph)
    assert_same_graph(graph, again)
    assert dumps(again) == dumps(graph)


@ROUND_TRIP
@given(array=arrays())
def test_tensors_keep_dtype_shape_and_bits(array: np.ndarray) -> None:
    tensor = Tensor.from_numpy(array)
    again = loads(dumps(Graph(name="t", outputs=["t"], constants=[
        Constant(name="c", **tensor.model_dump(exclude_none=True))])), "t.json").constants[0]
    decoded = again.to_numpy()
    assert decoded.dtype == array.dtype
    assert decoded.shape == array.shape
    assert decoded.tobytes() == np.ascontiguousarray(array).tobytes()
    finite = array.dtype.kind != "f" or bool(np.isfinite(array).all())
    inline = array.size <= INLINE_LIMIT and finite and 0 not in array.shape[:-1]
    assert (again.data is not None) == inline
    assert (again.base64 is not None) == (not inline)


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_tensors_are_inline_and_big_ones_base64(dtype: str) -> None:
    small = Tensor.from_numpy(np.ones(INLINE_LIMIT, dtype=dtype))
    big = Tensor.from_numpy(np.ones(INLINE_LIMIT + 1, dtype=dtype))
    assert small.data is not None and small.base64 is None
    assert big.base64 is not None and big.data is None
    raw = base64.b64decode(big.base64)
    assert len(raw) == (INLINE_LIMIT + 1) * np.dtype(dtype).itemsize
    assert np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).tolist() == [1] * 65


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_non_finite_tensors_go_to_base64(value: float, dtype: str) -> None:
    tensor = Tensor.from_numpy([1.0, value], dtype=dtype)
    assert tensor.data is None and tensor.base64 is not None
    text = dumps(Graph(name="g", outputs=["f"], constants=[
        Constant(name="c", **tensor.model_dump(exclude_none=True))]))
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the output"))
    decoded = loads(text).constants[0].to_numpy()
    assert decoded.tobytes() == np.asarray([1.0, value], dtype=dtype).tobytes()


@pytest.mark.parametrize("shape", [(0, 3), (3, 0, 2), (0,), (2, 0), (0, 0)])
def test_empty_tensors_of_any_shape_round_trip(shape: tuple[int, ...]) -> None:
    tensor = Tensor.from_numpy(np.zeros(shape, dtype=np.int32))
    graph = Graph(name="g", outputs=["f"], constants=[
        Constant(name="c", **tensor.model_dump(exclude_none=True))])
    assert save_and_load(graph).constants[0].to_numpy().shape == shape


# ---------------------------------------------------------------------------------------------
# the saved file is readable


def test_format_version_is_always_written_first() -> None:
    graph = Graph(name="g", outputs=["f"])
    text = dumps(graph)
    assert text.splitlines()[1] == f'  "format_version": {FORMAT_VERSION},'
    document = json.loads(text)
    assert next(iter(document)) == "format_version"
    assert document == {"format_version": FORMAT_VERSION, "name": "g", "outputs": [{"name": "f"}]}


def test_defaults_are_left_out() -> None:
    graph = Graph(
        name="g",
        outputs=["f"],
        constants=[constant("c", [1.0, 2.0])],
        nodes=[Node(name="f", op="Neg", inputs=["c"], outputs=["f"])],
    )
    document = json.loads(dumps(graph))
    assert document["constants"] == [{"name": "c", "shape": [2], "data": [1.0, 2.0]}]
    assert document["nodes"] == [{"op": "Neg", "inputs": ["c"], "outputs": ["f"]}]
    assert "metadata" not in document and "inputs" not in document
    for absent in ('"dtype": "float64"', '"trainable": false', '"attributes"', '"base64"',
                   '"domain"', '"version"', "null"):
        assert absent not in dumps(graph)


def test_non_defaults_are_written() -> None:
    document = json.loads(dumps(full_graph()))
    first, second, third = document["nodes"]
    assert first["name"] == "first"  # differs from its first output, so it is kept
    assert "name" not in second and "name" not in third
    assert second["op"] == "my.ops::Scale@3" and third["op"] == "ai.onnx::Relu@2"
    assert second["attributes"] == {"factor": 2.5, "axes": [0, 1]}
    big = next(c for c in document["constants"] if c["name"] == "big")
    assert big["dtype"] == "float32" and big["trainable"] is True and "data" not in big
    assert all(next(iter(c)) == "name" for c in document["constants"])


def test_one_line_per_node_input_output_and_constant() -> None:
    graph = full_graph()
    text = dumps(graph)
    lines = node_lines(text)
    assert len(lines) == len(graph.nodes)
    for line, node in zip(lines, graph.nodes, strict=True):
        item = json.loads(line.strip().removesuffix(","))
        assert Node.model_validate(item) == node
    for key in ("inputs", "outputs", "constants"):
        start = text.splitlines().index(f'  "{key}": [')
        count = len(getattr(graph, key))
        block = text.splitlines()[start + 1 : start + 1 + count]
        assert [json.loads(b.strip().removesuffix(","))["name"] for b in block] == [
            v.name for v in getattr(graph, key)
        ]
    assert text.endswith("}\n") and text.count("\n") == len(text.splitlines())


def test_strings_stay_on_one_line_and_readable() -> None:
    graph = Graph(name="g", outputs=["f"], metadata={"note": "two\nlines and é ∂"},
                  nodes=[Node(name="f", op="Id", outputs=["f"], attributes={"s": "a\nb"})])
    text = dumps(graph)
    assert "é ∂" in text  # not escaped to \\u00e9
    assert len(node_lines(text)) == 1
    assert loads(text) == graph


# ---------------------------------------------------------------------------------------------
# refusals


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    newer = FORMAT_VERSION + 1
    text = json.dumps({"format_version": newer, "name": "g", "outputs": ["f"]})
    with pytest.raises(FormatError, match=rf"^g\.json: format version {newer} is newer"):
        loads(text, "g.json")
    path = tmp_path / "future.json"
    path.write_text(text)
    with pytest.raises(FormatError) as caught:
        load(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert "upgrade graphkit-backprop" in str(caught.value)


def test_newer_version_wins_over_other_problems() -> None:
    text = json.dumps({"format_version": 99, "name": "", "outputs": [], "extra": 1})
    with pytest.raises(FormatError, match="format version 99 is newer than this graphkit reads"):
        loads(text, "g.json")


@pytest.mark.parametrize("version", [0, -1, "x", 1.5, None])
def test_bad_format_version_is_refused(version: object) -> None:
    with pytest.raises(FormatError, match=r"^g\.json: format_version"):
        loads(json.dumps({"format_version": version, "name": "g", "outputs": ["f"]}), "g.json")


@pytest.mark.parametrize("name", ["graph.yaml", "graph.txt", "graph", "graph.json.bak"])
def test_unknown_extension_is_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(dumps(full_graph()))
    with pytest.raises(FormatError, match="unknown file type") as caught:
        load(path)
    assert str(caught.value).startswith(f"{path}: ")
    with pytest.raises(FormatError, match="unknown file type") as caught:
        save(full_graph(), tmp_path / ("new_" + name))
    assert str(tmp_path / ("new_" + name)) in str(caught.value)
    assert not (tmp_path / ("new_" + name)).exists()


def test_extension_is_case_insensitive(tmp_path: Path) -> None:
    path = tmp_path / "g.JSON"
    save(full_graph(), path)
    assert load(path) == full_graph()


def test_missing_file_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "missing.json"
    with pytest.raises(FormatError, match="no such file") as caught:
        load(path)
    assert str(caught.value).startswith(f"{path}: ")
    with pytest.raises(FormatError, match="no such file"):
        load(tmp_path / "no_folder" / "missing.json")


def test_folder_instead_of_file_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "folder.json"
    path.mkdir()
    with pytest.raises(FormatError, match="folder") as caught:
        load(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_unreadable_path_is_a_format_error(tmp_path: Path) -> None:
    (tmp_path / "file.json").write_text("{}")
    with pytest.raises(FormatError, match="cannot read") as caught:
        load(tmp_path / "file.json" / "inner.json")  # a file used as a folder
    assert "inner.json" in str(caught.value)
    with pytest.raises(FormatError, match="cannot read"):
        load(str(tmp_path / "nul\0.json"))


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('{"name": "g", "outputs": ["f"], "metadata": {"a": NaN}}', "metadata.a: not a finite"),
        ('{"name": "g", "outputs": ["f"], "metadata": {"a": [1, {"b": -Infinity}]}}',
         r"metadata.a\[1\].b: not a finite"),
        ('{"name": "g", "outputs": ["f"], "metadata": {"a": 1e999}}', "metadata.a: not a finite"),
        ('{"name": "g", "outputs": ["f"], "nodes": [{"op": "A", "outputs": ["f"], '
         '"attributes": {"x": Infinity}}]}', r"nodes\[0\].attributes.x: not a finite"),
        ('{"name": "g", "outputs": ["f"], "constants": [{"name": "c", "shape": [1], '
         '"data": [NaN]}]}', r"constants\[0\]: data holds nan"),
    ],
)
def test_non_finite_numbers_are_refused(document: str, message: str) -> None:
    with pytest.raises(FormatError, match=rf"^g\.json: {message}"):
        loads(document, "g.json")


def test_graph_with_non_finite_metadata_cannot_be_saved(tmp_path: Path) -> None:
    graph = Graph(name="g", outputs=["f"], metadata={"x": float("nan")})
    with pytest.raises(FormatError, match="cannot be written as JSON"):
        dumps(graph)
    with pytest.raises(FormatError):
        save(graph, tmp_path / "g.json")
    assert os.listdir(tmp_path) == []


def test_graph_with_lone_surrogate_cannot_be_saved(tmp_path: Path) -> None:
    graph = Graph(name="g", outputs=["f"], metadata={"note": "half a pair: \ud800"})
    with pytest.raises(FormatError, match="UTF-8") as caught:
        save(graph, tmp_path / "g.json")
    assert str(tmp_path / "g.json") in str(caught.value)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        ({"shape": [2**70], "data": [1]}, "data has shape"),
        ({"shape": [2**32, 2**32], "base64": ""}, "base64 payload has 0 bytes"),
        ({"shape": [2**62, 4], "base64": ""}, "base64 payload has 0 bytes"),
        ({"shape": [], "data": "1.5"}, "not exactly float64"),
        ({"dtype": "bool", "shape": [], "data": "no"}, "not exactly bool"),
        ({"dtype": "bool", "shape": [1], "data": [2]}, "not exactly bool"),
        ({"dtype": "int32", "shape": [2], "data": [1, 1.5]}, "not exactly int32"),
        ({"dtype": "int32", "shape": [1], "data": [2**31]}, "not a int32 array"),
        ({"dtype": "int64", "shape": [1], "data": [None]}, "not a int64 array"),
        ({"dtype": "float32", "shape": [1], "data": [1e300]}, "out of range for float32"),
        ({"shape": [1], "data": [None]}, "data holds nan"),
        ({"shape": [2], "data": [[1], [2, 3]]}, "not a float64 array"),
        ({"shape": [1], "data": [1], "base64": "AAAAAAAAAAA="}, "exactly one of"),
        ({"shape": [1]}, "exactly one of"),
        ({"shape": [1], "base64": "AAAA"}, "needs 8"),
        ({"shape": [1], "base64": "AAAAAAAAAAA"}, "not valid base64"),
        ({"shape": [1], "base64": "é"}, "not valid base64"),
        ({"dtype": "float16", "shape": [1], "data": [1]}, "dtype"),
    ],
)
def test_bad_tensors_are_format_errors(tensor: dict, message: str) -> None:
    document = {"name": "g", "outputs": ["f"], "constants": [{"name": "c", **tensor}]}
    with pytest.raises(FormatError, match=r"^g\.json: constants\[0\]") as caught:
        loads(json.dumps(document), "g.json")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "tensor",
    [
        {"dtype": "bool", "shape": [2], "data": [0, 1]},
        {"dtype": "int64", "shape": [2], "data": [1.0, True]},
        {"dtype": "int64", "shape": [2], "data": [-(2**63), 2**63 - 1]},
        {"shape": [1], "data": [2**70]},
        {"dtype": "float32", "shape": [], "data": 0.1},
        {"shape": [2, 0], "data": [[], []]},
    ],
)
def test_exact_tensors_are_accepted(tensor: dict) -> None:
    document = {"name": "g", "outputs": ["f"], "constants": [{"name": "c", **tensor}]}
    graph = loads(json.dumps(document), "g.json")
    assert loads(dumps(graph)) == graph


def test_many_problems_are_summarised() -> None:
    document = {"name": "g", "outputs": ["f"], "nodes": [{"op": "1bad", "outputs": ["x"]}] * 8}
    with pytest.raises(FormatError) as caught:
        loads(json.dumps(document), "g.json")
    message = str(caught.value)
    assert message.startswith("g.json: nodes[0].op: op reference '1bad'")
    assert message.count("op reference") == graphkit.io.json.MAX_ERRORS_SHOWN
    assert message.endswith("and 3 more")


@pytest.mark.parametrize(
    "document",
    [
        {"name": "g", "outputs": ["f"], "nodes": [{"op": "x y" * 50_000, "outputs": ["f"]}]},
        {"name": "g", "outputs": ["f"],
         "constants": [{"name": "c", "shape": [1], "data": ["x" * 100_000]}]},
        {"name": "g", "outputs": ["f"], "metadata": {"k" * 100_000: float("inf")}},
        {"format_version": int("9" * 4000), "name": "g", "outputs": ["f"]},
        {"name": "g", "outputs": ["f"], "nodes": [{"op": "x y" * 1000, "outputs": ["f"]}] * 9},
    ],
    ids=["op", "data", "metadata-key", "version", "many"],
)
def test_messages_do_not_quote_huge_inputs(document: dict) -> None:
    with pytest.raises(FormatError) as caught:
        loads(json.dumps(document), "g.json")
    message = str(caught.value)
    assert message.startswith("g.json: ")
    limit = graphkit.io.json.MAX_ERROR_CHARS
    assert len(message) <= len("g.json: ") + graphkit.io.json.MAX_ERRORS_SHOWN * (limit + 2) + 20
    assert "characters)" in message


def test_errors_name_the_default_source() -> None:
    with pytest.raises(FormatError, match=r"^<string>: Invalid JSON"):
        loads("{")


# ---------------------------------------------------------------------------------------------
# atomic writes


def folder_listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


@pytest.fixture
def existing(tmp_path: Path) -> Path:
    path = tmp_path / "graph.json"
    save(Graph(name="old", outputs=["f"]), path)
    return path


def test_save_replaces_an_existing_file(existing: Path) -> None:
    save(full_graph(), existing)
    assert load(existing) == full_graph()
    assert folder_listing(existing.parent) == ["graph.json"]


def test_failed_rename_leaves_old_file_and_no_temporary(
    existing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = existing.read_bytes()

    def broken_replace(source: str, target: object) -> None:
        assert Path(source).read_bytes() == dumps(full_graph()).encode()  # fully written
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(graphkit.io.atomic.os, "replace", broken_replace)
    with pytest.raises(GraphkitError, match="No space left on device") as caught:
        save(full_graph(), existing)
    assert str(existing) in str(caught.value)
    assert existing.read_bytes() == before
    assert folder_listing(existing.parent) == ["graph.json"]


def test_failed_write_midway_leaves_old_file_and_no_temporary(
    existing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = existing.read_bytes()
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, stream) -> None:
            self.stream = stream

        def __enter__(self):
            return self

        def __exit__(self, *exc: object) -> None:
            self.stream.close()

        def write(self, data: bytes) -> int:
            self.stream.write(data[: len(data) // 2])
            self.stream.flush()
            raise OSError(5, "Input/output error")

        def __getattr__(self, name: str):
            return getattr(self.stream, name)

    monkeypatch.setattr(
        graphkit.io.atomic.os, "fdopen", lambda *a, **k: HalfWriter(real_fdopen(*a, **k))
    )
    with pytest.raises(GraphkitError, match="Input/output error"):
        save(full_graph(), existing)
    assert existing.read_bytes() == before
    assert folder_listing(existing.parent) == ["graph.json"]


def test_failed_flush_leaves_old_file_and_no_temporary(
    existing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = existing.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError(122, "Disk quota exceeded")

    monkeypatch.setattr(graphkit.io.atomic.os, "fsync", broken_fsync)
    with pytest.raises(GraphkitError, match="Disk quota exceeded"):
        save(full_graph(), existing)
    assert existing.read_bytes() == before
    assert folder_listing(existing.parent) == ["graph.json"]


def test_interrupted_save_cleans_up_and_reraises(
    existing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = existing.read_bytes()

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(graphkit.io.atomic.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save(full_graph(), existing)
    assert existing.read_bytes() == before
    assert folder_listing(existing.parent) == ["graph.json"]


def test_save_into_missing_folder_names_the_path(tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "graph.json"
    with pytest.raises(GraphkitError) as caught:
        save(full_graph(), target)
    assert str(target) in str(caught.value)
    assert "does not exist" in str(caught.value)
    assert not (tmp_path / "nowhere").exists()


def test_save_over_a_folder_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "graph.json"
    target.mkdir()
    with pytest.raises(GraphkitError, match="folder") as caught:
        save(full_graph(), target)
    assert str(target) in str(caught.value)
    assert folder_listing(tmp_path) == ["graph.json"] and target.is_dir()


def test_save_to_a_bare_file_name_uses_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    save(full_graph(), "here.json")
    assert load(tmp_path / "here.json") == full_graph()
    assert folder_listing(tmp_path) == ["here.json"]


def test_new_file_gets_the_usual_permissions(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        save(full_graph(), tmp_path / "g.json")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "g.json").stat().st_mode) == 0o644


def test_replaced_file_keeps_its_permissions(existing: Path) -> None:
    existing.chmod(0o640)
    save(full_graph(), existing)
    assert stat.S_IMODE(existing.stat().st_mode) == 0o640


# ---------------------------------------------------------------------------------------------
# size and depth bounds


def test_file_over_the_size_limit_is_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "g.json"
    save(full_graph(), path)
    size = path.stat().st_size
    monkeypatch.setenv("GRAPHKIT_MAX_FILE_BYTES", str(size))
    assert load(path) == full_graph()

    def no_parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was parsed")

    monkeypatch.setenv("GRAPHKIT_MAX_FILE_BYTES", str(size - 1))
    monkeypatch.setattr(graphkit.io.json.Graph, "model_validate_json", no_parsing)
    with pytest.raises(FormatError, match=f"{size} bytes is over the limit of {size - 1}") as e:
        load(path)
    assert str(e.value).startswith(f"{path}: ")
    with pytest.raises(FormatError, match=r"^g\.json: .* over the limit"):
        loads(path.read_bytes(), "g.json")


@pytest.mark.parametrize("value", ["", "abc", "-5", "1e3", "²", " 10"])
def test_unusable_size_limit_falls_back_to_the_default(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPHKIT_MAX_FILE_BYTES", value)
    assert graphkit.io.reading.max_file_bytes() == graphkit.io.reading.MAX_FILE_BYTES
    assert loads(dumps(full_graph())) == full_graph()


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


@pytest.mark.parametrize(
    "document",
    [
        nested(10_000),
        "{" + '"a": {' * 10_000 + "}" * 10_001,
        '{"name": "g", "outputs": ["f"], "metadata": {"deep": ' + nested(10_000) + "}}",
        '{"name": "g", "outputs": ["f"], "constants": [{"name": "c", "shape": [1], "data": '
        + nested(10_000) + "}]}",
        '{"name": "g", "outputs": ["f"], "nodes": [{"op": "A", "outputs": ["f"], '
        '"attributes": {"x": ' + nested(10_000) + "}}]}",
        nested(10_000, ""),
    ],
    ids=["list", "object", "metadata", "tensor", "attributes", "empty-lists"],
)
def test_deep_nesting_is_a_format_error(document: str) -> None:
    with pytest.raises(FormatError, match=r"^deep\.json: "):
        loads(document, "deep.json")


def test_moderate_nesting_still_loads() -> None:
    document = '{"name": "g", "outputs": ["f"], "metadata": {"deep": ' + nested(100) + "}}"
    graph = loads(document)
    assert loads(dumps(graph)) == graph


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ('{"format_version": true, "name": "a", "outputs": ["x"]}', "format_version"),
        ('{"format_version": "1", "name": "a", "outputs": ["x"]}', "format_version"),
        ('{"name": "a", "outputs": ["x"], "constants": '
         '[{"name": "c", "shape": [], "data": 1, "trainable": "yes"}]}', "constants[0].trainable"),
    ],
)
def test_versions_and_flags_are_not_coerced(document: str, where: str) -> None:
    with pytest.raises(FormatError, match=rf"^g\.json: {re.escape(where)}: "):
        graphkit.loads(document, "g.json")
