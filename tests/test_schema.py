"""The checked-in JSON Schema: current, valid Draft 2020-12, and in agreement with the loader."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphkit import dumps, loads
from graphkit.errors import FormatError
from graphkit.io import schema as schema_module
from graphkit.model import Constant, Graph, Node, OpRef, Tensor, ValueInfo

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "schemas" / "graph.schema.json"
EXAMPLES = sorted(
    p for p in (ROOT / "examples").glob("*.json") if not p.name.endswith(".inputs.json")
)


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def schema_errors(document: Any) -> list[str]:
    return [error.message for error in validator().iter_errors(document)]


def minimal() -> dict[str, Any]:
    return {
        "format_version": 1,
        "name": "g",
        "inputs": ["x"],
        "outputs": ["f"],
        "nodes": [{"op": "Neg", "inputs": ["x"], "outputs": ["f"]}],
    }


def rich_graph() -> Graph:
    def constant(name: str, value: Any, **extra: Any) -> Constant:
        tensor = Tensor.from_numpy(value).model_dump(exclude_none=True)
        return Constant(name=name, **tensor, **extra)

    return Graph(
        name="rich",
        metadata={"nested": {"list": [1, 2.5, None, True, "s"]}},
        inputs=[
            ValueInfo(name="X", dtype="float32", shape=["N", 3]),
            ValueInfo(name="s", shape=[]),
        ],
        outputs=[ValueInfo(name="out", dtype="float64")],
        constants=[
            constant("W", np.ones((3, 2), dtype=np.float32), trainable=True),
            constant("big", np.arange(200, dtype=np.int64)),
            constant("odd", [np.nan, np.inf]),
            constant("flag", True),
        ],
        nodes=[
            Node(name="mm", op="MatMul", inputs=["X", "W"], outputs=["h"]),
            Node(name="out", op=OpRef(domain="ai.onnx", name="Relu", version=14),
                 inputs=["h"], outputs=["out"], attributes={"alpha": 0.1}),
        ],
    )


def test_checked_in_schema_is_current() -> None:
    checked_in = SCHEMA_FILE.read_text(encoding="utf-8")
    assert checked_in == schema_module.render(), (
        f"{SCHEMA_FILE.relative_to(ROOT)} is stale: the models changed since it was generated. "
        "Regenerate it with `make schema` "
        "(python -m graphkit.io.schema > schemas/graph.schema.json) and commit the result."
    )


def test_schema_module_prints_the_schema() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "graphkit.io.schema"],
        cwd=ROOT, capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    ).stdout
    assert printed == schema_module.render()


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == schema_module.SCHEMA_ID
    assert jsonschema.validators.validator_for(schema) is jsonschema.Draft202012Validator
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["required"] == ["name", "outputs"]
    assert schema["additionalProperties"] is False


def test_examples_are_found() -> None:
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_validates_against_the_schema(path: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    assert schema_errors(document) == []
    loads(path.read_bytes(), str(path))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_saved_example_validates_against_the_schema(path: Path) -> None:
    assert schema_errors(json.loads(dumps(loads(path.read_bytes())))) == []


def test_saved_graph_with_every_feature_validates() -> None:
    text = dumps(rich_graph())
    assert schema_errors(json.loads(text)) == []
    assert loads(text) == rich_graph()


@settings(max_examples=60, deadline=None)
@given(
    domain=st.from_regex(r"[A-Za-z0-9_.\-]{0,8}", fullmatch=True),
    name=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
    version=st.integers(1, 10**6),
)
def test_every_op_reference_is_valid_in_both_forms(domain: str, name: str, version: int) -> None:
    op = OpRef(domain=domain, name=name, version=version)
    for form in (str(op), {"domain": domain, "name": name, "version": version}):
        document = minimal()
        document["nodes"][0]["op"] = form
        assert schema_errors(document) == [], form
        assert loads(json.dumps(document)).nodes[0].op == op


def set_path(document: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


def drop(document: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    target = changed
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return changed


INVALID = {
    "unknown top-level key": set_path(minimal(), ("author",), "me"),
    "missing name": drop(minimal(), ("name",)),
    "empty name": set_path(minimal(), ("name",), ""),
    "missing outputs": drop(minimal(), ("outputs",)),
    "no outputs": set_path(minimal(), ("outputs",), []),
    "format version zero": set_path(minimal(), ("format_version",), 0),
    "format version a string": set_path(minimal(), ("format_version",), "one"),
    "node without outputs": drop(minimal(), ("nodes", 0, "outputs")),
    "node with empty outputs": set_path(minimal(), ("nodes", 0, "outputs"), []),
    "node without op": drop(minimal(), ("nodes", 0, "op")),
    "node with unknown key": set_path(minimal(), ("nodes", 0, "kind"), "gate"),
    "node inputs not a list": set_path(minimal(), ("nodes", 0, "inputs"), "x"),
    "op starting with a digit": set_path(minimal(), ("nodes", 0, "op"), "1Add"),
    "op with a space": set_path(minimal(), ("nodes", 0, "op"), "Add Mul"),
    "op with two domains": set_path(minimal(), ("nodes", 0, "op"), "a::b::Add"),
    "op with a bad version": set_path(minimal(), ("nodes", 0, "op"), "Add@x"),
    "op with an empty version": set_path(minimal(), ("nodes", 0, "op"), "Add@"),
    "op with an empty domain": set_path(minimal(), ("nodes", 0, "op"), "::Add"),
    "op empty": set_path(minimal(), ("nodes", 0, "op"), ""),
    "op a number": set_path(minimal(), ("nodes", 0, "op"), 3),
    "op object with a bad name": set_path(minimal(), ("nodes", 0, "op"), {"name": "a b"}),
    "op object with a bad domain": set_path(
        minimal(), ("nodes", 0, "op"), {"domain": "a b", "name": "Add"}),
    "op object with version 0": set_path(
        minimal(), ("nodes", 0, "op"), {"name": "Add", "version": 0}),
    "op object with unknown key": set_path(
        minimal(), ("nodes", 0, "op"), {"name": "Add", "opset": 3}),
    "input an object without name": set_path(minimal(), ("inputs", 0), {"dtype": "float64"}),
    "input of unknown dtype": set_path(minimal(), ("inputs", 0), {"name": "x", "dtype": "f16"}),
    "negative dim": set_path(minimal(), ("inputs", 0), {"name": "x", "shape": [-1]}),
    "bad symbolic dim": set_path(minimal(), ("inputs", 0), {"name": "x", "shape": ["1N"]}),
    "dim a float": set_path(minimal(), ("inputs", 0), {"name": "x", "shape": [1.5]}),
    "input a number": set_path(minimal(), ("inputs", 0), 7),
    "constant without shape": set_path(minimal(), ("constants",), [{"name": "c", "data": 1}]),
    "constant with unknown key": set_path(
        minimal(), ("constants",), [{"name": "c", "shape": [], "data": 1, "unit": "m"}]),
    "constant trainable a list": set_path(
        minimal(), ("constants",), [{"name": "c", "shape": [], "data": 1, "trainable": []}]),
    "metadata a list": set_path(minimal(), ("metadata",), ["a"]),
    "attributes a list": set_path(minimal(), ("nodes", 0, "attributes"), [1]),
    "document a list": [minimal()],
}


@pytest.mark.parametrize("document", list(INVALID.values()), ids=list(INVALID))
def test_invalid_documents_are_refused_by_schema_and_loader(document: Any) -> None:
    assert schema_errors(document), "the schema accepts it"
    with pytest.raises(FormatError, match=r"^bad\.json: "):
        loads(json.dumps(document), "bad.json")


def test_the_minimal_document_is_valid_for_both() -> None:
    assert schema_errors(minimal()) == []
    assert loads(json.dumps(minimal())).nodes[0].name == "f"
