"""Decoding inference requests: what a client may send, and the 4xx answer to what it may not."""

from __future__ import annotations

import gzip
import json
from typing import Any

import numpy as np
import pytest

from graphkit.model import ValueInfo
from graphkit.service.tensors import (
    OIPError,
    decode_request,
    encode_response,
    split_body,
)

INPUTS = {
    "X": ValueInfo(name="X", dtype="float32", shape=["N", 2]),
    "k": ValueInfo(name="k", dtype="int32", shape=[]),
    "any": ValueInfo(name="any"),
}


def request(**tensors: dict[str, Any]) -> dict[str, Any]:
    return {"inputs": [{"name": name, **spec} for name, spec in tensors.items()]}


BASE = {"X": {"shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]},
        "k": {"shape": [], "datatype": "INT32", "data": 3},
        "any": {"shape": [3], "datatype": "INT64", "data": [1, 2, 3]}}


def decode(document: dict[str, Any], tail: bytes = b"", limit: int = 100) -> Any:
    return decode_request(document, tail, INPUTS, limit)


def refused(document: dict[str, Any], tail: bytes = b"", limit: int = 100) -> OIPError:
    with pytest.raises(OIPError) as raised:
        decode(document, tail, limit)
    return raised.value


def test_json_data_flat_or_nested_row_major() -> None:
    flat = decode(request(**BASE))
    nested = decode(request(**{**BASE, "X": {**BASE["X"], "data": [[1, 2], [3, 4]]}}))
    for decoded in (flat, nested):
        assert decoded.inputs["X"].dtype == np.float32
        assert decoded.inputs["X"].tolist() == [[1.0, 2.0], [3.0, 4.0]]
        assert decoded.inputs["k"].dtype == np.int32 and decoded.inputs["k"].shape == ()
    # an input declared without a dtype takes the datatype the client states
    assert flat.inputs["any"].dtype == np.int64
    assert flat.outputs is None and flat.binary_default is False and flat.wrt is None


def test_integers_written_as_floats_are_accepted_but_fractions_and_overflow_are_not() -> None:
    assert decode(request(**{**BASE, "k": {**BASE["k"], "data": [3.0]}})).inputs["k"] == 3
    error = refused(request(**{**BASE, "k": {**BASE["k"], "data": [3.5]}}))
    assert error.status == 400 and "'k'" in error.message and "not INT32" in error.message
    error = refused(request(**{**BASE, "k": {**BASE["k"], "data": [2**31]}}))
    assert "out of INT32 range" in error.message
    error = refused(request(**{**BASE, "X": {**BASE["X"], "data": [True, False, True, True]}}))
    assert "'X'" in error.message and "holds bool values" in error.message


def test_binary_tensors_follow_the_header_in_input_order() -> None:
    X = np.array([[1, 2], [3, 4]], dtype="<f4")
    document = request(X={"shape": [2, 2], "datatype": "FP32",
                          "parameters": {"binary_data_size": 16}},
                       k={"shape": [], "datatype": "INT32", "parameters": {"binary_data_size": 4}},
                       any={"shape": [1], "datatype": "BOOL", "data": [True]})
    tail = X.tobytes() + np.int32(7).tobytes()
    decoded = decode(document, tail)
    assert np.array_equal(decoded.inputs["X"], X) and decoded.inputs["k"] == 7
    assert decoded.inputs["any"].dtype == np.bool_
    assert "1 bytes of binary data that no input" in refused(document, tail + b"x").message
    assert "body ends before" in refused(document, tail[:-1]).message
    wrong = json.loads(json.dumps(document))
    wrong["inputs"][1]["parameters"]["binary_data_size"] = 8
    assert "binary_data_size is 8 bytes, but shape [] of INT32 needs 4" in \
        refused(wrong, tail).message


def test_size_limit_names_the_tensor_with_413() -> None:
    error = refused(request(**{**BASE, "X": {"shape": [60, 2], "datatype": "FP32",
                                             "data": [0] * 120}}))
    assert error.status == 413 and "'X' has 120 elements" in error.message


def test_datatypes_graphkit_has_no_values_of() -> None:
    error = refused(request(**{**BASE, "any": {"shape": [1], "datatype": "BYTES",
                                               "data": ["a"]}}))
    assert error.status == 400 and "no string tensors" in error.message
    error = refused(request(**{**BASE, "any": {"shape": [1], "datatype": "UINT8",
                                               "data": [1]}}))
    assert "takes FP32, FP64, INT32, INT64, BOOL" in error.message


def test_gradient_parameters() -> None:
    document = request(**BASE, seed={"shape": [], "datatype": "FP64", "data": 1.0})
    document["parameters"] = {"graphkit_gradients": "X, any", "graphkit_gradients_of": "f",
                              "graphkit_gradients_seed": "seed"}
    decoded = decode(document)
    assert decoded.wrt == ["X", "any"] and decoded.of == "f"
    assert decoded.seed is not None and decoded.seed.shape == () and "seed" not in decoded.inputs
    document["parameters"]["graphkit_gradients_seed"] = "k"
    assert "is an input of the model" in refused(document).message
    document["parameters"] = {"graphkit_gradients": ["X"]}
    assert "must be a string" in refused(document).message
    document["parameters"] = {"graphkit_gradients_of": "f"}
    assert "need graphkit_gradients" in refused(document).message
    document["parameters"] = {"graphkit_gradients": "all"}
    assert "no input 'seed'" in refused(document).message
    del document["inputs"][-1]
    assert decode(document).wrt == "all"


def test_requested_outputs_and_binary_choice() -> None:
    document = {**request(**BASE), "parameters": {"binary_data_output": True},
                "outputs": [{"name": "f"}, {"name": "g", "parameters": {"binary_data": False}}]}
    decoded = decode(document)
    assert [(o.name, o.binary) for o in decoded.outputs] == [("f", True), ("g", False)]
    document["outputs"] = [{"name": "f", "parameters": {"classification": 3}}]
    assert "classification" in refused(document).message


def test_split_body_by_header_length_and_encoding() -> None:
    head = json.dumps({"inputs": []}).encode()
    document, tail = split_body(head + b"\x01\x02", {
        "inference-header-content-length": str(len(head))}, 1000)
    assert document == {"inputs": []} and tail == b"\x01\x02"
    document, tail = split_body(gzip.compress(head), {"content-encoding": "gzip"}, 1000)
    assert document == {"inputs": []} and tail == b""
    with pytest.raises(OIPError) as raised:  # a compressed body inflating past the limit
        split_body(gzip.compress(b" " * 5000 + head), {"content-encoding": "gzip"}, 1000)
    assert raised.value.status == 413
    with pytest.raises(OIPError) as raised:
        split_body(head, {"content-encoding": "br"}, 1000)
    assert raised.value.status == 415


def test_encode_response_json_and_binary() -> None:
    f = np.array([[1.5, -2.0]])
    body, headers = encode_response({"model_name": "m"}, [("f", f, False)])
    assert headers == {"content-type": "application/json"}
    assert json.loads(body)["outputs"] == [{"name": "f", "datatype": "FP64", "shape": [1, 2],
                                            "data": [1.5, -2.0]}]
    body, headers = encode_response({"model_name": "m"}, [("f", f, True),
                                                          ("b", np.array(True), True)])
    length = int(headers["inference-header-content-length"])
    assert headers["content-type"] == "application/octet-stream"
    described = json.loads(body[:length])["outputs"]
    assert [o["parameters"]["binary_data_size"] for o in described] == [16, 1]
    assert np.array_equal(np.frombuffer(body[length:length + 16], "<f8").reshape(1, 2), f)
    assert body[length + 16:] == b"\x01"
