"""Fuzzing the loader: whatever the bytes, loads returns a Graph or raises FormatError.

Nothing else may escape (KeyError, TypeError, RecursionError, UnicodeDecodeError, pydantic's
ValidationError...), every error names the source given to loads, and whatever loads accepts
can be saved and loaded back unchanged.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphkit.io.json as io_json
from graphkit import dumps, loads
from graphkit.errors import FormatError
from graphkit.model import Graph

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {
    p.name: p.read_bytes()
    for p in sorted((ROOT / "examples").glob("*.json"))
    if not p.name.endswith(".inputs.json")
}
SOURCE = "fuzz/g.json"
PLACEHOLDER = "\u0000graphkit fuzz placeholder\u0000"

# "source: " then at most MAX_ERRORS_SHOWN problems of MAX_ERROR_CHARS, "; "-joined, "and N more"
MESSAGE_LIMIT = len(SOURCE) + 2 + io_json.MAX_ERRORS_SHOWN * (io_json.MAX_ERROR_CHARS + 2) + 30

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check(data: bytes | str) -> Graph | None:
    """Load `data`: a Graph that saves and loads back the same, or a FormatError naming SOURCE.

    Any other exception propagates and fails the test.
    """
    try:
        graph = loads(data, SOURCE)
    except FormatError as exc:
        assert str(exc).startswith(f"{SOURCE}: "), str(exc)
        assert len(str(exc)) <= MESSAGE_LIMIT, "the message quotes too much of the input"
        return None
    assert isinstance(graph, Graph)
    text = dumps(graph)
    assert loads(text, "again.json") == graph
    assert dumps(loads(text)) == text
    return graph


def example_names() -> st.SearchStrategy[str]:
    return st.sampled_from(sorted(EXAMPLES))


def test_examples_are_found_and_load() -> None:
    assert len(EXAMPLES) >= 5
    for raw in EXAMPLES.values():
        assert check(raw) is not None


def test_check_fails_on_foreign_exceptions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The oracle itself: an exception other than FormatError is not swallowed."""

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(io_json.Graph, "model_validate_json", broken)
    try:
        check(b"{}")
    except KeyError:
        return
    raise AssertionError("check() swallowed a KeyError")


# ---------------------------------------------------------------------------------------------
# (a) truncated files


@FUZZ
@given(data=st.data())
def test_truncated_examples(data: st.DataObject) -> None:
    raw = EXAMPLES[data.draw(example_names())]
    cut = data.draw(st.integers(0, len(raw)))
    graph = check(raw[:cut])
    if cut < len(raw.rstrip()):
        assert graph is None, "a strict prefix of a document loaded"
    else:
        assert graph == loads(raw)


@FUZZ
@given(data=st.data())
def test_truncated_examples_as_text(data: st.DataObject) -> None:
    text = EXAMPLES[data.draw(example_names())].decode("utf-8")
    cut = data.draw(st.integers(0, len(text.rstrip()) - 1))
    assert check(text[:cut]) is None


# ---------------------------------------------------------------------------------------------
# (b) byte mutations

TOKENS = [b"{", b"}", b"[", b"]", b'"', b",", b":", b"-", b"0", b"1e999", b"NaN", b"null",
          b"true", b"\\", b"\\u0000", b"\\ud800", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00",
          b" ", b"\n", b"\xef\xbb\xbf", b"[" * 300]
MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "insert", "delete", "replace", "token"]),
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
        elif position < len(data):
            if kind == "flip":
                data[position] ^= 1 << (value % 8)
            elif kind == "delete":
                del data[position]
            else:
                data[position] = value
    return bytes(data)


@FUZZ
@given(name=example_names(), mutations=MUTATIONS)
def test_byte_mutated_examples(name: str, mutations: list[tuple[str, int, int]]) -> None:
    check(mutate(EXAMPLES[name], mutations))


def test_mutate_changes_bytes() -> None:
    raw = b'{"a": 1}'
    assert mutate(raw, [("flip", 2, 0)]) == b'{"`": 1}'
    assert mutate(raw, [("delete", 0, 0)]) == b'"a": 1}'
    assert mutate(raw, [("insert", 8, 65)]) == b'{"a": 1}A'
    assert mutate(raw, [("token", 0, 0)]) == b'{{"a": 1}'


# ---------------------------------------------------------------------------------------------
# (c) wrongly typed documents


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every position in a JSON document, the root () included."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list) else "dict"


def get(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


SMALL = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=5)
REPLACEMENTS: dict[str, st.SearchStrategy[str]] = {
    "number": st.one_of(
        st.integers(-(2**70), 2**70),
        st.floats(),  # nan and inf become NaN and Infinity, which the parser reads
        st.sampled_from([0, -1, 2**63, 2**64, 1e308, 5e-324, -0.0]),
    ).map(json.dumps),
    "string": st.one_of(
        st.text(max_size=20),
        st.sampled_from(
            ["", "float32", "Add", "1bad", "N", "AAAA", "a::b@0", "x" * 300, "1 " * 5000]
        ),
    ).map(json.dumps),
    "list": st.lists(SMALL, max_size=5).map(json.dumps),
    "dict": st.dictionaries(st.text(max_size=6) | st.sampled_from(["name", "op", "shape"]),
                            SMALL, max_size=4).map(json.dumps),
    "null": st.just("null"),
    "bool": st.booleans().map(json.dumps),
    "deep": st.integers(100, 5_000).map(lambda depth: "[" * depth + "]" * depth),
}


def replaced(document: Any, path: tuple[Any, ...], text: str) -> str:
    """The document as JSON text with the value at `path` replaced by the JSON `text`."""
    if not path:
        return text
    changed = copy.deepcopy(document)
    get(changed, path[:-1])[path[-1]] = PLACEHOLDER
    return json.dumps(changed).replace(json.dumps(PLACEHOLDER), text, 1)


@FUZZ
@given(data=st.data())
def test_wrongly_typed_documents(data: st.DataObject) -> None:
    document = json.loads(EXAMPLES[data.draw(example_names())])
    path = data.draw(st.sampled_from(list(paths(document))), label="path")
    kind = json_type(get(document, path))
    other = data.draw(st.sampled_from(sorted(k for k in REPLACEMENTS if k != kind)), label="type")
    text = data.draw(REPLACEMENTS[other], label="value")
    check(replaced(document, path, text))


@FUZZ
@given(data=st.data())
def test_documents_with_a_part_left_out(data: st.DataObject) -> None:
    document = json.loads(EXAMPLES[data.draw(example_names())])
    path = data.draw(st.sampled_from([p for p in paths(document) if p]), label="path")
    del get(document, path[:-1])[path[-1]]
    check(json.dumps(document))


def test_replaced_puts_the_text_in_place() -> None:
    document = {"a": [1, {"b": 2}], "c": "x"}
    assert replaced(document, ("a", 1, "b"), "[[]]") == '{"a": [1, {"b": [[]]}], "c": "x"}'
    assert replaced(document, (), "null") == "null"
    assert document == {"a": [1, {"b": 2}], "c": "x"}
    assert sorted(paths(document)) == sorted(
        [(), ("a",), ("a", 0), ("a", 1), ("a", 1, "b"), ("c",)]
    )


# ---------------------------------------------------------------------------------------------
# (d) random JSON values

LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**80), 2**80),
    st.floats(),
    st.sampled_from([float("nan"), float("inf"), -float("inf")]),  # NaN, Infinity in the text
    st.text(max_size=12),
)
RANDOM_JSON = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=5),
    max_leaves=25,
)

KEYS = ["format_version", "name", "inputs", "outputs", "constants", "nodes", "metadata", "op",
        "dtype", "shape", "data", "base64", "trainable", "domain", "version", "attributes"]
WORDS = ["g", "x", "f", "N", "Add", "ai.onnx::Relu@2", "float32", "float64", "int32", "int64",
         "bool", "float16", "AAAAAAAAAAA=", "AAAA", "", "1bad", "a::b::c"]
GRAPHISH_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 70),
    st.sampled_from([2**63, 2**70, 0.5, -1.0, float("nan"), float("inf")]),
    st.sampled_from(WORDS),
)
GRAPHISH = st.recursive(
    GRAPHISH_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner,
                                                                 max_size=6),
    max_leaves=30,
)
GRAPHISH_DOCUMENTS = st.fixed_dictionaries(
    {"name": st.sampled_from(["g", ""]) | GRAPHISH, "outputs": GRAPHISH},
    optional={key: GRAPHISH for key in KEYS if key not in ("name", "outputs")},
)


@FUZZ
@given(value=RANDOM_JSON)
def test_random_json_values(value: Any) -> None:
    text = json.dumps(value)
    check(text)
    check(text.encode("utf-8"))


@FUZZ
@given(document=GRAPHISH_DOCUMENTS)
def test_random_graph_shaped_documents(document: dict[str, Any]) -> None:
    check(json.dumps(document))


# Nearly valid graphs: names and the document's structure are valid seven times in eight, so
# that the fuzzing gets past them; tensors and op references are odd half of the time.


def mostly(valid: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # three fair coins (one_of with repeated branches is not weighted by the repeats)
    coins = st.tuples(st.booleans(), st.booleans(), st.booleans())
    return coins.flatmap(lambda flags: odd if all(flags) else valid)


def half(valid: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.booleans().flatmap(lambda flag: odd if flag else valid)


NAME_ISH = mostly(
    st.sampled_from(["x", "f", "c", "é", " "]),
    st.sampled_from(["", "x" * 257, 1, None]) | st.text(max_size=4),
)
DTYPE_ISH = mostly(
    st.sampled_from(["float32", "float64", "int32", "int64", "bool"]),
    st.sampled_from(["float16", "", 1, None]),
)
ODD_DIMS = st.sampled_from([2**32, 2**62, 2**63, 2**64, 2**70, -1, "N", 1.5])
SHAPE_ISH = st.lists(mostly(st.integers(0, 3), ODD_DIMS), max_size=3)
NUMBER_ISH = mostly(
    st.integers(-3, 3) | st.floats(allow_nan=False, allow_infinity=False) | st.booleans(),
    st.floats() | st.sampled_from([2**31, 2**63, 2**64, 2**70, 1e300, 1e-320, None, "1.5", {}]),
)
DATA_ISH = st.recursive(NUMBER_ISH, lambda inner: st.lists(inner, max_size=3), max_leaves=8)
BASE64_ISH = mostly(
    st.binary(max_size=24).map(lambda raw: base64.b64encode(raw).decode("ascii")),
    st.sampled_from(["AAAAAAAAAAA", "é", "AA AA", "====", None, 3]),
)
VALID_TENSORS = st.sampled_from([
    {"shape": [], "data": 1.5},
    {"dtype": "int32", "shape": [2], "data": [1, 2]},
    {"dtype": "bool", "shape": [1, 1], "data": [[True]]},
    {"dtype": "float32", "shape": [1], "base64": "AADAfw=="},  # nan
    {"dtype": "int64", "shape": [0, 2], "base64": ""},
])
TENSOR_ISH = st.builds(
    lambda name, tensor, extra: {"name": name, **tensor, **extra},
    NAME_ISH,
    half(VALID_TENSORS, st.builds(
        lambda shape, payload, dtype: {"shape": shape, **payload, **dtype},
        st.lists(half(st.integers(0, 3), ODD_DIMS), max_size=3),
        st.one_of(
            st.fixed_dictionaries({"data": DATA_ISH}),
            st.fixed_dictionaries({"base64": BASE64_ISH}),
            st.fixed_dictionaries({}, optional={"data": DATA_ISH, "base64": BASE64_ISH}),
        ),
        st.fixed_dictionaries({}, optional={"dtype": DTYPE_ISH}),
    )),
    st.fixed_dictionaries({}, optional={"trainable": mostly(st.booleans(), RANDOM_JSON)}),
)
OP_ISH = half(
    st.sampled_from(["Add", "ai.onnx::Relu@2", "x.y-z::_Y@10", {"name": "Add"},
                     {"domain": "d", "name": "N", "version": 2}]),
    st.one_of(
        st.sampled_from(["x::Y@0", "Add@", "1x", "a b", "Add\n", "Add@٣", "::Add", ""]),
        st.text(max_size=8),
        st.fixed_dictionaries(
            {"name": st.sampled_from(["Add", "a b", "", "1x"]) | st.text(max_size=4)},
            optional={
                "domain": st.sampled_from(["", "ai.onnx", "a b", "a::b"]) | st.text(max_size=4),
                "version": st.integers(-1, 3) | st.sampled_from([2**70, "2", 1.0, None]),
            },
        ),
    ),
)
NODE_ISH = st.fixed_dictionaries(
    {"op": OP_ISH, "outputs": mostly(st.lists(NAME_ISH, min_size=1, max_size=2), RANDOM_JSON)},
    optional={"name": NAME_ISH, "inputs": st.lists(NAME_ISH, max_size=3),
              "attributes": mostly(st.dictionaries(st.text(max_size=4), RANDOM_JSON, max_size=3),
                                   RANDOM_JSON)},
)
VALUE_INFO_ISH = NAME_ISH | st.fixed_dictionaries(
    {"name": NAME_ISH}, optional={"dtype": DTYPE_ISH, "shape": SHAPE_ISH}
)
NEARLY_VALID = st.fixed_dictionaries(
    {"name": NAME_ISH, "outputs": st.lists(VALUE_INFO_ISH, min_size=1, max_size=2)},
    optional={
        "format_version": mostly(st.just(1), st.sampled_from([1.0, 0, 2, 2**70, "1", True, None])),
        "inputs": st.lists(VALUE_INFO_ISH, max_size=2),
        "constants": st.lists(TENSOR_ISH, max_size=2),
        "nodes": st.lists(NODE_ISH, max_size=2),
        "metadata": mostly(st.dictionaries(st.text(max_size=4), RANDOM_JSON, max_size=3),
                           RANDOM_JSON),
    },
)


@FUZZ
@given(document=NEARLY_VALID)
def test_nearly_valid_documents(document: dict[str, Any]) -> None:
    check(json.dumps(document))


def with_part(**parts: Any) -> str:
    """A small valid graph with some parts replaced, as JSON text."""
    document = {"name": "g", "inputs": ["x"], "outputs": ["f"],
                "nodes": [{"op": "Neg", "inputs": ["x"], "outputs": ["f"]}]}
    return json.dumps({**document, **parts})


@FUZZ
@given(
    op=st.one_of(
        st.text(max_size=12),
        st.from_regex(r"([A-Za-z0-9_.\- ]{0,4}::){0,2}[A-Za-z0-9_]{0,4}(@[0-9٣x-]{0,3})?\n?",
                      fullmatch=True),
        st.fixed_dictionaries(
            {"name": st.text(max_size=5)},
            optional={"domain": st.text(max_size=5), "version": RANDOM_JSON},
        ),
    )
)
def test_random_op_references(op: Any) -> None:
    check(with_part(nodes=[{"op": op, "inputs": ["x"], "outputs": ["f"]}]))


@FUZZ
@given(
    shape=st.lists(st.integers(0, 4) | st.integers(0, 2**80) | ODD_DIMS, max_size=3),
    dtype=st.sampled_from(["float32", "float64", "int32", "int64", "bool"]),
    payload=st.one_of(
        st.fixed_dictionaries({"data": DATA_ISH}),
        st.fixed_dictionaries({"base64": BASE64_ISH}),
    ),
)
def test_random_tensors(shape: list[Any], dtype: str, payload: dict[str, Any]) -> None:
    check(with_part(constants=[{"name": "c", "dtype": dtype, "shape": shape, **payload}]))


@FUZZ
@given(metadata=RANDOM_JSON, attributes=RANDOM_JSON)
def test_random_metadata_and_attributes(metadata: Any, attributes: Any) -> None:
    check(with_part(metadata=metadata))
    check(with_part(metadata={"key": metadata}))
    check(with_part(nodes=[{"op": "Neg", "inputs": ["x"], "outputs": ["f"],
                            "attributes": {"a": attributes}}]))


@FUZZ
@given(raw=st.binary(max_size=200))
def test_random_bytes(raw: bytes) -> None:
    check(raw)


@FUZZ
@given(
    prefix=st.sampled_from(['{"name": "', '{"name": "g", "outputs": ["', '["', ""]),
    text=st.text(st.characters(codec=None, exclude_categories=()), max_size=30),
)
def test_random_text_with_surrogates(prefix: str, text: str) -> None:
    check(prefix + text)
    check(prefix + text + '"], "name": "g"}')
