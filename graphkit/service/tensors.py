"""Tensors over the Open Inference Protocol: requests in, responses out.

A request body is either one JSON object (tensor data in `data`, flat or nested, row-major) or,
with the binary tensor extension, a JSON header of `Inference-Header-Content-Length` bytes
followed by the raw little-endian bytes of the inputs that give `parameters.binary_data_size`,
in input order. That is what `tritonclient` sends by default, without a Content-Type, so the
Content-Type is never needed: the header length alone says which form a body has.

Every problem with a request is an `OIPError` carrying its HTTP status and a message that
names the input or output concerned; the router answers it as `{"error": message}`.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphkit.model import ValueInfo

HEADER_LENGTH = "Inference-Header-Content-Length"
"""The binary tensor extension's header: how many leading body bytes are the JSON header."""

GRADIENTS = "graphkit_gradients"
"""Request parameter of the gradient extension: the values to differentiate, comma-separated
(or "all"); `graphkit_gradients_of` names the output, `graphkit_gradients_seed` the extra input
tensor that carries the upstream gradient."""
GRADIENTS_OF = "graphkit_gradients_of"
GRADIENTS_SEED = "graphkit_gradients_seed"
GRAD_PREFIX = "grad:"
"""A gradient comes back as an extra output named `grad:<value>` (e.g. `grad:w0`)."""

TO_NUMPY: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "INT8": np.dtype("<i1"), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
}
"""Every V2 datatype with a numpy equivalent (responses may carry any of them)."""
FROM_NUMPY: dict[str, str] = {dtype.name: v2 for v2, dtype in TO_NUMPY.items()}
GRAPH_DTYPES: dict[str, str] = {
    "float32": "FP32", "float64": "FP64", "int32": "INT32", "int64": "INT64", "bool": "BOOL",
}
"""graphkit's dtypes and their V2 names: the only datatypes an input may have."""
ACCEPTED = ", ".join(GRAPH_DTYPES.values())


class OIPError(Exception):
    """A request the server refuses: the HTTP status and the `{"error": ...}` message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Requested:
    """One output to return and whether as binary data (`binary_data` parameter)."""

    name: str
    binary: bool


@dataclass
class InferRequest:
    """A decoded inference request: numpy inputs and what to send back."""

    id: str | None
    inputs: dict[str, np.ndarray]
    outputs: list[Requested] | None
    """None: every output (and gradient), encoded as `binary_default` says."""
    binary_default: bool
    wrt: list[str] | str | None = None
    of: str | None = None
    seed: np.ndarray | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


def v2_datatype(dtype: str | None) -> str:
    """The V2 datatype a graph value is declared with (untyped values take FP64 by default)."""
    return GRAPH_DTYPES[dtype] if dtype is not None else "FP64"


def v2_shape(shape: Sequence[int | str] | None) -> list[int]:
    """A declared shape for metadata: -1 for a symbolic dim, `[-1]` for an unknown shape."""
    if shape is None:
        return [-1]
    return [d if isinstance(d, int) else -1 for d in shape]


def split_body(body: bytes, headers: Mapping[str, str], max_bytes: int) -> tuple[Any, bytes]:
    """The JSON header (parsed) and the binary tail of a request body.

    `Content-Encoding: gzip|deflate` bodies (tritonclient's request compression) are inflated,
    at most to `max_bytes`.
    """
    encoding = (headers.get("content-encoding") or "identity").strip().lower()
    if encoding in ("gzip", "deflate"):
        body = _inflate(body, encoding, max_bytes)
    elif encoding != "identity":
        raise OIPError(415, f"Content-Encoding {encoding!r} is not supported (gzip, deflate)")
    length_text = headers.get(HEADER_LENGTH.lower())
    if length_text is None:
        head, tail = body, b""
    else:
        try:
            length = int(length_text)
        except ValueError:
            raise OIPError(400, f"{HEADER_LENGTH} must be an integer, got {length_text!r}") \
                from None
        if not 0 <= length <= len(body):
            raise OIPError(400, f"{HEADER_LENGTH} is {length} but the body has {len(body)} bytes")
        head, tail = body[:length], body[length:]
    try:
        document = json.loads(head)
    except (ValueError, UnicodeDecodeError) as exc:
        where = " header" if length_text is not None else ""
        raise OIPError(400, f"the request{where} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise OIPError(400, "the inference request must be a JSON object")
    return document, tail


def _inflate(body: bytes, encoding: str, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise OIPError(400, f"the {encoding} body cannot be decompressed: {exc}") from None
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise OIPError(413, f"the decompressed body is larger than {max_bytes} bytes")
    return data


def decode_request(
    document: dict[str, Any],
    tail: bytes,
    graph_inputs: Mapping[str, ValueInfo],
    max_elements: int,
) -> InferRequest:
    """Check an inference request against the graph's inputs and turn it into numpy arrays."""
    parameters = _object(document.get("parameters", {}), "request 'parameters'")
    if not isinstance(document.get("inputs"), list):
        raise OIPError(400, "the inference request needs an 'inputs' list")
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise OIPError(400, "the request 'id' must be a string")
    wrt, of, seed_name = _gradient_parameters(parameters, graph_inputs)

    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for position, item in enumerate(document["inputs"]):
        tensor = _object(item, f"inputs[{position}]")
        name = tensor.get("name")
        if not isinstance(name, str):
            raise OIPError(400, f"inputs[{position}] needs a 'name' string")
        if name in arrays:
            raise OIPError(400, f"input {name!r} is given twice")
        info = graph_inputs.get(name)
        if info is None and name != seed_name:
            known = ", ".join(graph_inputs) or "none"
            raise OIPError(400, f"the model has no input {name!r} (inputs: {known})")
        shape = _shape(tensor.get("shape"), name)
        datatype = _datatype(tensor.get("datatype"), name, info, seed=name == seed_name)
        count = math.prod(shape)
        if count > max_elements:
            raise OIPError(413, f"input {name!r} has {count} elements; this server takes at "
                                f"most {max_elements} per tensor")
        if info is not None:
            _check_shape(shape, info)
        tensor_parameters = _object(tensor.get("parameters", {}), f"input {name!r} 'parameters'")
        if any(key.startswith("shared_memory") for key in tensor_parameters):
            raise OIPError(400, f"input {name!r}: shared memory is not supported over HTTP here")
        size = tensor_parameters.get("binary_data_size")
        dtype = TO_NUMPY[datatype]
        if size is not None:
            if "data" in tensor:
                raise OIPError(400, f"input {name!r} has both 'data' and binary_data_size")
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise OIPError(400, f"input {name!r}: binary_data_size must be a non-negative "
                                    "integer")
            expected = count * dtype.itemsize
            if size != expected:
                raise OIPError(400, f"input {name!r}: binary_data_size is {size} bytes, but "
                                    f"shape {shape} of {datatype} needs {expected}")
            if offset + size > len(tail):
                raise OIPError(400, f"input {name!r}: the body ends before its {size} bytes of "
                                    f"binary data ({len(tail) - offset} left)")
            array = np.frombuffer(tail, dtype=dtype, count=count, offset=offset).reshape(shape)
            offset += size
        else:
            if "data" not in tensor:
                raise OIPError(400, f"input {name!r} has neither 'data' nor binary_data_size")
            array = _from_json(tensor["data"], shape, datatype, name)
        arrays[name] = array.astype(dtype.newbyteorder("="), copy=False)
    if offset != len(tail):
        raise OIPError(400, f"the body has {len(tail) - offset} bytes of binary data that no "
                            "input's binary_data_size accounts for")
    missing = [name for name in graph_inputs if name not in arrays]
    if missing:
        raise OIPError(400, f"the request has no input {', '.join(map(repr, missing))}")
    seed = None
    if seed_name is not None:
        seed = arrays.pop(seed_name, None)
        if seed is None:
            raise OIPError(400, f"{GRADIENTS_SEED} names input {seed_name!r}, which the request "
                                "does not give")

    binary_default = parameters.get("binary_data_output", False)
    if not isinstance(binary_default, bool):
        raise OIPError(400, "parameter binary_data_output must be true or false")
    outputs = None
    if document.get("outputs") is not None:
        outputs = _requested(document["outputs"], binary_default)
    return InferRequest(request_id, arrays, outputs, binary_default, wrt, of, seed, parameters)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise OIPError(400, f"{what} must be a JSON object")
    return value


def _gradient_parameters(
    parameters: Mapping[str, Any], graph_inputs: Mapping[str, ValueInfo]
) -> tuple[list[str] | str | None, str | None, str | None]:
    """The gradient extension's three string parameters (see GRADIENTS)."""
    text = parameters.get(GRADIENTS)
    of = parameters.get(GRADIENTS_OF)
    seed = parameters.get(GRADIENTS_SEED)
    for key, value in ((GRADIENTS, text), (GRADIENTS_OF, of), (GRADIENTS_SEED, seed)):
        if value is not None and not isinstance(value, str):
            raise OIPError(400, f"parameter {key} must be a string (see the gradient extension "
                                "in docs/service.md)")
    if text is None:
        if of is not None or seed is not None:
            raise OIPError(400, f"{GRADIENTS_OF} and {GRADIENTS_SEED} need {GRADIENTS} (the "
                                "values to differentiate)")
        return None, None, None
    wrt: list[str] | str = "all" if text.strip() == "all" else \
        [part.strip() for part in text.split(",") if part.strip()]
    if not wrt:
        raise OIPError(400, f"parameter {GRADIENTS} names no value")
    if seed is not None and seed in graph_inputs:
        raise OIPError(400, f"{GRADIENTS_SEED} {seed!r} is an input of the model; name the seed "
                            "tensor something else")
    return wrt, of, seed


def _shape(value: Any, name: str) -> list[int]:
    if not isinstance(value, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value
    ):
        raise OIPError(400, f"input {name!r}: 'shape' must be a list of non-negative integers")
    return value


def _datatype(value: Any, name: str, info: ValueInfo | None, seed: bool) -> str:
    if value == "BYTES":
        raise OIPError(400, f"input {name!r} is BYTES: graphkit has no string tensors "
                            f"(datatypes: {ACCEPTED})")
    if value not in TO_NUMPY or TO_NUMPY[value].name not in GRAPH_DTYPES:
        raise OIPError(400, f"input {name!r} has datatype {value!r}; graphkit takes {ACCEPTED}")
    if seed and value not in ("FP32", "FP64"):
        raise OIPError(400, f"the gradient seed {name!r} must be FP32 or FP64, not {value}")
    if info is not None and info.dtype is not None and GRAPH_DTYPES[info.dtype] != value:
        raise OIPError(400, f"input {name!r} must be {GRAPH_DTYPES[info.dtype]}, got {value}")
    return str(value)


def _check_shape(shape: list[int], info: ValueInfo) -> None:
    if info.shape is None:
        return
    declared = v2_shape(info.shape)
    if len(shape) != len(declared) or any(
        d != -1 and d != actual for d, actual in zip(declared, shape, strict=True)
    ):
        raise OIPError(400, f"input {info.name!r} must have shape {declared} (-1: any size), "
                            f"got {shape}")


_KINDS = {"FP32": "iuf", "FP64": "iuf", "INT32": "iu", "INT64": "iu", "BOOL": "b"}


def _from_json(data: Any, shape: list[int], datatype: str, name: str) -> np.ndarray:
    """JSON tensor data, flat or nested, checked to be `datatype` values filling `shape`."""
    if not isinstance(data, list):
        data = [data]
    try:
        given = np.asarray(data)
    except ValueError as exc:
        raise OIPError(400, f"input {name!r}: 'data' is not a regular array: {exc}") from None
    count = math.prod(shape)
    if given.size != count:
        raise OIPError(400, f"input {name!r}: 'data' has {given.size} elements, shape {shape} "
                            f"needs {count}")
    if given.size and given.dtype.kind not in _KINDS[datatype]:
        if given.dtype.kind == "f" and datatype.startswith("INT") and bool(
            np.all(np.mod(given, 1) == 0)
        ):
            pass  # 2.0 for an integer: some clients write every number as a float
        else:
            raise OIPError(400, f"input {name!r}: 'data' holds {given.dtype.name} values, not "
                                f"{datatype}")
    dtype = TO_NUMPY[datatype]
    if datatype.startswith("INT") and given.size:
        info = np.iinfo(dtype)
        if given.dtype == object or given.min() < info.min or given.max() > info.max:
            raise OIPError(400, f"input {name!r}: 'data' holds values out of {datatype} range")
    return given.astype(dtype).reshape(shape)


def _requested(value: Any, binary_default: bool) -> list[Requested]:
    if not isinstance(value, list):
        raise OIPError(400, "the request 'outputs' must be a list")
    requested: list[Requested] = []
    for position, item in enumerate(value):
        output = _object(item, f"outputs[{position}]")
        name = output.get("name")
        if not isinstance(name, str):
            raise OIPError(400, f"outputs[{position}] needs a 'name' string")
        parameters = _object(output.get("parameters", {}), f"output {name!r} 'parameters'")
        if parameters.get("classification"):
            raise OIPError(400, f"output {name!r}: the classification extension is not supported")
        if any(key.startswith("shared_memory") for key in parameters):
            raise OIPError(400, f"output {name!r}: shared memory is not supported over HTTP here")
        binary = parameters.get("binary_data", binary_default)
        if not isinstance(binary, bool):
            raise OIPError(400, f"output {name!r}: binary_data must be true or false")
        requested.append(Requested(name, binary))
    return requested


def encode_response(
    header: dict[str, Any], outputs: Sequence[tuple[str, np.ndarray, bool]]
) -> tuple[bytes, dict[str, str]]:
    """The response body and headers: JSON, or JSON header plus binary tensors.

    Binary outputs carry `parameters.binary_data_size` and follow the header in output order;
    the `Inference-Header-Content-Length` header gives the JSON header's length (what
    tritonclient's InferResult reads).
    """
    described: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, value, binary in outputs:
        array = np.asarray(value)
        datatype = FROM_NUMPY.get(array.dtype.name)
        if datatype is None:
            raise OIPError(500, f"output {name!r} has dtype {array.dtype}, which the protocol "
                                "cannot carry")
        item: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if binary:
            raw = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
            item["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            item["data"] = array.ravel().tolist()
        described.append(item)
    header = {**header, "outputs": described}
    text = json.dumps(header, separators=(",", ":")).encode()
    if not chunks:
        return text, {"content-type": "application/json"}
    return b"".join([text, *chunks]), {
        "content-type": "application/octet-stream",
        HEADER_LENGTH.lower(): str(len(text)),
    }

