"""The Open Inference Protocol as clients see it: a real server driven by tritonclient.

One server per module (uvicorn on a free port, a SQLite store), holding the lecture's sigmoid
neuron and the 2-layer net; every answer is checked against graphkit.execute run locally.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient
from oip_fixtures import EXAMPLES, OIPServer, oip_server
from tritonclient.utils import InferenceServerException

import graphkit
from graphkit.cli.main import version
from graphkit.service.settings import Settings

NEURON = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}
NEURON_GRADIENTS = {"w0": -0.20, "x0": 0.39, "w1": -0.39, "x1": -0.59, "w2": 0.20}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OIPServer]:
    with oip_server(tmp_path_factory.mktemp("oip")) as running:
        running.add_example("sigmoid_neuron")
        running.add_example("two_layer_net")
        yield running


@pytest.fixture(scope="module")
def client(server: OIPServer) -> Iterator[httpclient.InferenceServerClient]:
    triton = httpclient.InferenceServerClient(server.address)
    yield triton
    triton.close()


def neuron_inputs(binary: bool) -> list[httpclient.InferInput]:
    inputs = []
    for name, value in NEURON.items():
        tensor = httpclient.InferInput(name, [], "FP64")
        tensor.set_data_from_numpy(np.array(value), binary_data=binary)
        inputs.append(tensor)
    return inputs


def two_layer_inputs(X: np.ndarray, y: np.ndarray, binary: bool) -> list[httpclient.InferInput]:
    tensors = [httpclient.InferInput("X", list(X.shape), "FP64"),
               httpclient.InferInput("y", list(y.shape), "INT64")]
    tensors[0].set_data_from_numpy(X, binary_data=binary)
    tensors[1].set_data_from_numpy(y, binary_data=binary)
    return tensors


def post(server: OIPServer, path: str, body: bytes,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """A raw POST (no Content-Type unless given): status, headers (lower-case) and body."""
    host, port = server.address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("POST", path, body=body, headers=headers or {})
        response = connection.getresponse()
        return (response.status, {k.lower(): v for k, v in response.getheaders()},
                response.read())
    finally:
        connection.close()


# --- health and metadata ----------------------------------------------------------------------

def test_server_live_ready_and_metadata(client: httpclient.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    metadata = client.get_server_metadata()
    assert metadata["name"] == "graphkit"
    assert metadata["version"] == version()
    assert {"binary_tensor_data", "graphkit_gradients"} <= set(metadata["extensions"])


def test_model_metadata_gives_v2_datatypes_and_minus_one_for_symbolic_dims(
        client: httpclient.InferenceServerClient) -> None:
    neuron = client.get_model_metadata("sigmoid_neuron")
    assert neuron["name"] == "sigmoid_neuron" and neuron["platform"] == "graphkit"
    assert neuron["versions"] == ["1"]
    assert [(t["name"], t["datatype"], t["shape"]) for t in neuron["inputs"]] == [
        (name, "FP64", []) for name in NEURON]
    assert neuron["outputs"] == [{"name": "f", "datatype": "FP64", "shape": []}]
    net = client.get_model_metadata("two_layer_net", model_version="1")
    assert net["inputs"] == [{"name": "X", "datatype": "FP64", "shape": [-1, 4]},
                             {"name": "y", "datatype": "INT64", "shape": [-1]}]
    assert net["outputs"] == [{"name": "loss", "datatype": "FP64", "shape": []}]


def test_model_ready(client: httpclient.InferenceServerClient) -> None:
    assert client.is_model_ready("sigmoid_neuron")
    assert client.is_model_ready("two_layer_net", model_version="1")
    assert not client.is_model_ready("two_layer_net", model_version="9")
    assert not client.is_model_ready("no_such_model")


def test_unknown_model_and_version_are_404_in_the_protocols_format(
        client: httpclient.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException) as raised:
        client.get_model_metadata("no_such_model")
    assert raised.value.status() == "404" and "no_such_model" in raised.value.message()
    with pytest.raises(InferenceServerException) as raised:
        client.infer("sigmoid_neuron", neuron_inputs(True), model_version="7")
    assert raised.value.status() == "404" and "no version 7" in raised.value.message()
    with pytest.raises(InferenceServerException) as raised:
        client.infer("sigmoid_neuron", neuron_inputs(True), model_version="latest")
    assert raised.value.status() == "400" and "positive integer" in raised.value.message()
    with pytest.raises(InferenceServerException) as raised:
        client.get_model_metadata("sigmoid_neuron", model_version=str(10**30))
    assert raised.value.status() == "404"


# --- inference ------------------------------------------------------------------------------

@pytest.mark.parametrize("binary_in", [True, False])
@pytest.mark.parametrize("binary_out", [True, False])
def test_infer_the_sigmoid_neuron(client: httpclient.InferenceServerClient,
                                  binary_in: bool, binary_out: bool) -> None:
    result = client.infer("sigmoid_neuron", neuron_inputs(binary_in),
                          outputs=[httpclient.InferRequestedOutput("f", binary_data=binary_out)])
    f = result.as_numpy("f")
    assert f.dtype == np.float64 and f.shape == ()
    assert f == graphkit.execute(graphkit.load(EXAMPLES / "sigmoid_neuron.json"),
                                 NEURON).outputs["f"]
    assert round(float(f), 2) == 0.73
    response = result.get_response()
    assert response["model_name"] == "sigmoid_neuron" and response["model_version"] == "1"
    assert ("binary_data_size" in response["outputs"][0].get("parameters", {})) == binary_out


def test_infer_without_requested_outputs_returns_every_output_as_binary(
        client: httpclient.InferenceServerClient) -> None:
    result = client.infer("sigmoid_neuron", neuron_inputs(True), request_id="req-7")
    response = result.get_response()
    assert response["id"] == "req-7"
    assert [o["name"] for o in response["outputs"]] == ["f"]
    assert response["outputs"][0]["parameters"]["binary_data_size"] == 8


def test_gradient_extension_gives_the_lectures_gradients(
        client: httpclient.InferenceServerClient) -> None:
    names = list(NEURON)
    result = client.infer(
        "sigmoid_neuron", neuron_inputs(True),
        parameters={"graphkit_gradients": ",".join(names)},
        outputs=[httpclient.InferRequestedOutput("f"),
                 *(httpclient.InferRequestedOutput(f"grad:{n}", binary_data=n != "x1")
                   for n in names)])
    assert round(float(result.as_numpy("f")), 2) == 0.73
    got = {n: round(float(result.as_numpy(f"grad:{n}")), 2) for n in names}
    assert got == NEURON_GRADIENTS
    # without requested outputs: the outputs, then every gradient, in the order named
    everything = client.infer("sigmoid_neuron", neuron_inputs(False),
                              parameters={"graphkit_gradients": "x0, w0"})
    assert [o["name"] for o in everything.get_response()["outputs"]] == [
        "f", "grad:x0", "grad:w0"]


def test_two_layer_net_matches_local_execution_exactly(
        client: httpclient.InferenceServerClient) -> None:
    graph = graphkit.load(EXAMPLES / "two_layer_net.json")
    given = json.loads((EXAMPLES / "two_layer_net.inputs.json").read_text())
    rng = np.random.default_rng(7)
    batches = [(np.array(given["X"]), np.array(given["y"])),
               (rng.normal(size=(64, 4)), rng.integers(0, 3, size=64))]
    for X, y in batches:
        local = graphkit.execute(graph, {"X": X, "y": y}, wrt=["X", "W1", "b2"])
        for binary in (True, False):
            result = client.infer(
                "two_layer_net", two_layer_inputs(X, y, binary),
                parameters={"graphkit_gradients": "X,W1,b2"},
                outputs=[httpclient.InferRequestedOutput(name, binary_data=binary)
                         for name in ("loss", "grad:X", "grad:W1", "grad:b2")])
            assert np.array_equal(result.as_numpy("loss"), local.outputs["loss"])
            for name in ("X", "W1", "b2"):
                assert np.array_equal(result.as_numpy(f"grad:{name}"), local.gradients[name])


def test_gradient_seed_comes_as_an_extra_input(server: OIPServer,
                                               client: httpclient.InferenceServerClient) -> None:
    g = graphkit.GraphBuilder("matvec")
    W = g.input("W", shape=[2, 3])
    x = g.input("x", shape=[3])
    g.output(W @ x, "q")
    graph = g.build()
    server.add(graph)
    W_ = np.arange(6.0).reshape(2, 3)
    x_ = np.array([1.0, -2.0, 0.5])
    seed = np.array([0.5, -1.0])
    tensors = []
    for name, value in (("W", W_), ("x", x_), ("upstream", seed)):
        tensor = httpclient.InferInput(name, list(value.shape), "FP64")
        tensor.set_data_from_numpy(value)
        tensors.append(tensor)
    result = client.infer("matvec", tensors, parameters={
        "graphkit_gradients": "W,x", "graphkit_gradients_of": "q",
        "graphkit_gradients_seed": "upstream"})
    local = graphkit.execute(graph, {"W": W_, "x": x_}, wrt=["W", "x"], of="q", seed=seed)
    assert np.array_equal(result.as_numpy("grad:W"), local.gradients["W"])
    assert np.array_equal(result.as_numpy("grad:x"), local.gradients["x"])
    assert np.array_equal(local.gradients["x"], W_.T @ seed)


def test_gzip_compressed_request(client: httpclient.InferenceServerClient) -> None:
    result = client.infer("sigmoid_neuron", neuron_inputs(True),
                          request_compression_algorithm="gzip")
    assert round(float(result.as_numpy("f")), 2) == 0.73


def test_requests_without_content_type(server: OIPServer) -> None:
    body = {"inputs": [{"name": n, "shape": [], "datatype": "FP64", "data": [v]}
                       for n, v in NEURON.items()]}
    status, headers, content = post(server, "/v2/models/sigmoid_neuron/infer",
                                    json.dumps(body).encode())
    assert status == 200 and headers["content-type"] == "application/json"
    assert round(json.loads(content)["outputs"][0]["data"][0], 2) == 0.73
    # binary inputs and a binary output, with only Inference-Header-Content-Length to go by
    header = {"inputs": [{"name": n, "shape": [], "datatype": "FP64",
                          "parameters": {"binary_data_size": 8}} for n in NEURON],
              "parameters": {"binary_data_output": True}}
    head = json.dumps(header).encode()
    raw = b"".join(np.float64(v).tobytes() for v in NEURON.values())
    status, headers, content = post(server, "/v2/models/sigmoid_neuron/infer", head + raw,
                                    {"Inference-Header-Content-Length": str(len(head))})
    assert status == 200 and headers["content-type"] == "application/octet-stream"
    length = int(headers["inference-header-content-length"])
    answer = json.loads(content[:length])
    assert answer["outputs"][0]["parameters"]["binary_data_size"] == 8
    assert round(float(np.frombuffer(content[length:], "<f8")[0]), 2) == 0.73


# --- errors ---------------------------------------------------------------------------------

def _error(call: object) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as raised:
        call()  # type: ignore[operator]
    return raised.value


def test_wrong_shape_datatype_or_names_are_400_naming_the_tensor(
        client: httpclient.InferenceServerClient) -> None:
    X, y = np.zeros((5, 3)), np.zeros(5, dtype=np.int64)
    error = _error(lambda: client.infer("two_layer_net", two_layer_inputs(X, y, True)))
    assert error.status() == "400"
    assert "input 'X' must have shape [-1, 4]" in error.message() and "[5, 3]" in error.message()
    X32 = np.zeros((5, 4), dtype=np.float32)
    tensors = [httpclient.InferInput("X", [5, 4], "FP32"), httpclient.InferInput("y", [5], "INT64")]
    tensors[0].set_data_from_numpy(X32)
    tensors[1].set_data_from_numpy(y)
    error = _error(lambda: client.infer("two_layer_net", tensors))
    assert error.status() == "400" and "input 'X' must be FP64, got FP32" in error.message()
    error = _error(lambda: client.infer("two_layer_net", two_layer_inputs(
        np.zeros((5, 4)), np.zeros(4, dtype=np.int64), False)))
    assert error.status() == "400" and "'y'" in error.message() and "N" in error.message()
    error = _error(lambda: client.infer("sigmoid_neuron", neuron_inputs(True)[:4]))
    assert error.status() == "400" and "no input 'w2'" in error.message()
    error = _error(lambda: client.infer("sigmoid_neuron", neuron_inputs(True),
                                        outputs=[httpclient.InferRequestedOutput("g")]))
    assert error.status() == "400" and "no output 'g'" in error.message()
    error = _error(lambda: client.infer("sigmoid_neuron", neuron_inputs(True),
                                        outputs=[httpclient.InferRequestedOutput("grad:w0")]))
    assert error.status() == "400" and "graphkit_gradients" in error.message()
    text = httpclient.InferInput("w0", [1], "BYTES")
    text.set_data_from_numpy(np.array([b"2"], dtype=object))
    error = _error(lambda: client.infer("sigmoid_neuron", [text, *neuron_inputs(True)[1:]]))
    assert error.status() == "400" and "BYTES" in error.message()


def test_malformed_bodies_are_400_with_an_error_object(server: OIPServer) -> None:
    cases = [
        (b"{not json", {}, "not valid JSON"),
        (b"[]", {}, "JSON object"),
        (b'{"inputs": 3}', {}, "'inputs' list"),
        (b'{"inputs": []}', {"Inference-Header-Content-Length": "99"}, "body has 14 bytes"),
        (json.dumps({"inputs": [{"name": "w0", "shape": [], "datatype": "FP64",
                                 "parameters": {"binary_data_size": 8}}]}).encode(), {},
         "body ends before"),
        (json.dumps({"inputs": [{"name": "w0", "shape": [], "datatype": "FP64",
                                 "data": [1.0, 2.0]}]}).encode(), {}, "'data' has 2 elements"),
        (json.dumps({"inputs": [{"name": "w0", "shape": [], "datatype": "FP64",
                                 "data": "x"}]}).encode(), {}, "not FP64"),
    ]
    for body, headers, message in cases:
        status, answer_headers, content = post(server, "/v2/models/sigmoid_neuron/infer",
                                               body, headers)
        assert status == 400, (body, content)
        assert answer_headers["content-type"] == "application/json"
        assert message in json.loads(content)["error"], (message, content)


# --- the plan cache -------------------------------------------------------------------------

def test_repeated_infers_reuse_the_compiled_plan(server: OIPServer,
                                                 client: httpclient.InferenceServerClient) -> None:
    graph = graphkit.load(EXAMPLES / "sigmoid_neuron.json")
    server.add(graph, name="cached_neuron")
    cache = server.app.state.graphkit_oip.cache
    loads, hits = cache.loads, cache.hits
    for _ in range(20):
        client.infer("cached_neuron", neuron_inputs(True))
    assert cache.loads == loads + 1  # loaded, validated and planned once
    assert cache.hits == hits + 19
    # a new version becomes "latest", and is compiled once in its turn
    changed = graph.model_copy(update={"metadata": {"description": "v2"}})
    assert server.add(changed, name="cached_neuron") == 2
    result = client.infer("cached_neuron", neuron_inputs(True))
    assert result.get_response()["model_version"] == "2"
    client.infer("cached_neuron", neuron_inputs(True))
    assert cache.loads == loads + 2
    assert client.get_model_metadata("cached_neuron")["versions"] == ["1", "2"]
    assert cache.loads == loads + 2


# --- tokens ---------------------------------------------------------------------------------

def test_reads_need_the_token_when_the_server_says_so(tmp_path: Path) -> None:
    settings = Settings(token="s3cret", read_needs_token=True)
    with oip_server(tmp_path, settings) as running:
        running.add_example("sigmoid_neuron")
        triton = httpclient.InferenceServerClient(running.address)
        try:
            assert triton.is_server_live()
            error = _error(lambda: triton.infer("sigmoid_neuron", neuron_inputs(True)))
            assert error.status() == "401"
            result = triton.infer("sigmoid_neuron", neuron_inputs(True),
                                  headers={"Authorization": "Bearer s3cret"})
            assert round(float(result.as_numpy("f")), 2) == 0.73
        finally:
            triton.close()
