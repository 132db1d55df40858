"""The registry routes on a real server: upload, dedup, download, lists, deletes, problems,
tokens, limits, CORS, and what the server logs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import graphkit
from graphkit.io.onnx_export import to_onnx
from graphkit.io.onnx_import import from_onnx, parse_model
from tests.service.server_fixtures import (
    JSON_TYPE,
    ONNX_TYPE,
    TOKEN,
    LiveServer,
    canonical,
    chain,
    example,
    variant,
)

PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The default server: a token for writes, reads open, the default limits, no CORS."""
    live = LiveServer(tmp_path_factory.mktemp("registry")).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with small limits, reads needing the token, and one CORS origin."""
    live = LiveServer(tmp_path_factory.mktemp("strict"), "--max-body-bytes", "20000",
                      "--max-nodes", "50", "--read-token",
                      "--cors-origin", "https://app.example.com").start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def tokenless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server started without any token."""
    live = LiveServer(tmp_path_factory.mktemp("tokenless"), token=None).start()
    yield live
    live.stop()


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    """An RFC 9457 problem with every member, for this status and the request's path."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert PROBLEM_MEMBERS <= set(body), body
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def test_upload_json_then_identical_content_returns_the_same_version(
        client: httpx.Client) -> None:
    data = (Path(__file__).parents[2] / "examples" / "add_mul.json").read_bytes()
    first = client.post("/graphs/addmul/versions?description=first&tag=stage=test&tag=team=ml",
                        content=data, headers=JSON_TYPE)
    assert first.status_code == 201, first.text
    info = first.json()
    assert first.headers["location"] == f"/graphs/addmul/versions/{info['version']}"
    stored = canonical(data)
    assert info["sha256"] == hashlib.sha256(stored).hexdigest()
    assert info["size"] == len(stored) and info["nodes"] == 2
    assert info["description"] == "first" and info["tags"] == {"stage": "test", "team": "ml"}
    # the same graph reformatted (whitespace, key order) is the same content
    reformatted = json.dumps(json.loads(data), indent=4, sort_keys=True).encode()
    again = client.post("/graphs/addmul/versions", content=reformatted, headers=JSON_TYPE)
    assert again.status_code == 200
    assert again.json()["version"] == info["version"]
    assert "location" not in again.headers


def test_upload_onnx_and_download_both_formats(client: httpx.Client) -> None:
    graph = example("sigmoid_neuron")
    onnx_bytes = to_onnx(graph).SerializeToString()
    created = client.post("/graphs/neuron/versions", content=onnx_bytes, headers=ONNX_TYPE)
    assert created.status_code == 201, created.text
    version = created.json()["version"]
    # octet-stream is read as ONNX too, and the same graph sent as JSON is the same version
    same = client.post("/graphs/neuron/versions", content=onnx_bytes,
                       headers={"Content-Type": "application/octet-stream"})
    assert (same.status_code, same.json()["version"]) == (200, version)

    as_json = client.get(f"/graphs/neuron/versions/{version}")
    assert as_json.status_code == 200
    assert as_json.headers["content-type"] == "application/json"
    assert as_json.headers["etag"] == f'"{hashlib.sha256(as_json.content).hexdigest()}"'
    stored = graphkit.loads(as_json.content)
    as_json_upload = client.post("/graphs/neuron/versions", content=as_json.content,
                                 headers=JSON_TYPE)
    assert (as_json_upload.status_code, as_json_upload.json()["version"]) == (200, version)

    for request in ({"headers": {"Accept": "application/onnx"}},
                    {"params": {"format": "onnx"}}):
        as_onnx = client.get(f"/graphs/neuron/versions/{version}", **request)  # type: ignore
        assert as_onnx.status_code == 200
        assert as_onnx.headers["content-type"] == "application/onnx"
        assert from_onnx(parse_model(as_onnx.content)) == stored
    latest = client.get("/graphs/neuron/versions/latest", params={"format": "json"})
    assert latest.content == as_json.content
    assert latest.headers["graphkit-version"] == str(version)
    # a client holding the current copy gets 304
    cached = client.get(f"/graphs/neuron/versions/{version}",
                        headers={"If-None-Match": as_json.headers["etag"]})
    assert cached.status_code == 304


def test_lists_page_with_tokens(client: httpx.Client) -> None:
    for number in range(5):
        assert client.post("/graphs/paged/versions", content=variant(number),
                           headers=JSON_TYPE).status_code == 201
    for number in range(3):
        assert client.post(f"/graphs/list-{number}/versions", content=variant(number),
                           headers=JSON_TYPE).status_code == 201
    versions, token, pages = [], None, 0
    while True:
        params = {"page_size": 2, **({"page_token": token} if token else {})}
        page = client.get("/graphs/paged", params=params).json()
        assert page["latest"] == 5
        versions += [v["version"] for v in page["versions"]]
        pages += 1
        token = page["next_page_token"]
        if token is None:
            break
    assert versions == [1, 2, 3, 4, 5] and pages == 3
    names, token = [], None
    while True:
        params = {"page_size": 2, **({"page_token": token} if token else {})}
        page = client.get("/graphs", params=params).json()
        assert len(page["graphs"]) <= 2
        names += [g["name"] for g in page["graphs"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert names == sorted(set(names))
    assert {"paged", "list-0", "list-1", "list-2"} <= set(names)
    assert_problem(client.get("/graphs", params={"page_token": "garbage!"}), 400)


def test_delete_version_and_graph(client: httpx.Client) -> None:
    for number in range(3):
        client.post("/graphs/doomed/versions", content=variant(number), headers=JSON_TYPE)
    assert client.delete("/graphs/doomed/versions/2").status_code == 204
    assert_problem(client.get("/graphs/doomed/versions/2"), 404)
    assert_problem(client.delete("/graphs/doomed/versions/2"), 404)
    assert [v["version"] for v in client.get("/graphs/doomed").json()["versions"]] == [1, 3]
    # numbers are never reused: the next upload is 4, even after deleting the whole graph
    assert client.post("/graphs/doomed/versions", content=variant(7),
                       headers=JSON_TYPE).json()["version"] == 4
    assert client.delete("/graphs/doomed").status_code == 204
    assert_problem(client.get("/graphs/doomed"), 404)
    assert_problem(client.get("/graphs/doomed/versions/latest"), 404)
    assert client.post("/graphs/doomed/versions", content=variant(8),
                       headers=JSON_TYPE).json()["version"] == 5


def test_invalid_graph_is_refused_with_every_problem_listed(client: httpx.Client) -> None:
    bad = {"format_version": 1, "name": "bad", "inputs": [{"name": "x", "shape": []}],
           "outputs": ["y"],
           "nodes": [{"op": "NoSuchOp", "inputs": ["x"], "outputs": ["h"]},
                     {"op": "Add", "inputs": ["h", "undefined"], "outputs": ["y"]}]}
    response = client.post("/graphs/bad/versions", json=bad)
    body = assert_problem(response, 422)
    errors = body["errors"]
    assert isinstance(errors, list) and len(errors) >= 2
    assert any("NoSuchOp" in e for e in errors) and any("undefined" in e for e in errors)
    assert body["type"] != "about:blank"
    assert_problem(client.get("/graphs/bad"), 404)  # nothing was stored
    malformed = client.post("/graphs/bad/versions", content=b"{not json", headers=JSON_TYPE)
    assert assert_problem(malformed, 422)["errors"]
    not_onnx = client.post("/graphs/bad/versions", content=b"\x00garbage", headers=ONNX_TYPE)
    assert_problem(not_onnx, 422)


def test_an_onnx_upload_naming_a_server_file_is_refused(client: httpx.Client) -> None:
    """Clients never name server-side paths: external tensor data is refused, not read."""
    import onnx

    model = to_onnx(example("two_layer_net"))
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    del tensor.float_data[:]
    del tensor.double_data[:]
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    response = client.post("/graphs/sneaky/versions", content=model.SerializeToString(),
                           headers=ONNX_TYPE)
    assert "external" in assert_problem(response, 422)["detail"]  # type: ignore[operator]
    assert_problem(client.get("/graphs/sneaky"), 404)


def test_unsupported_types_and_bad_requests_are_problems(client: httpx.Client) -> None:
    data = variant(1)
    response = client.post("/graphs/x/versions", content=data,
                           headers={"Content-Type": "text/plain"})
    assert "application/onnx" in assert_problem(response, 415)["detail"]  # type: ignore
    assert_problem(client.post("/graphs/x/versions?tag=novalue", content=data,
                               headers=JSON_TYPE), 422)
    assert_problem(client.get("/graphs/neuron/versions/1", headers={"Accept": "text/html"}), 406)
    assert_problem(client.get("/graphs/neuron/versions/0"), 422)
    assert_problem(client.get("/graphs/.hidden"), 422)


def test_writes_need_the_token(server: LiveServer) -> None:
    with server.client(token=None) as anonymous:
        response = anonymous.post("/graphs/x/versions", content=variant(1), headers=JSON_TYPE)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert anonymous.get("/graphs").status_code == 200  # reads are open by default
        assert_problem(anonymous.delete("/graphs/neuron"), 401)
    with server.client(token="wrong") as wrong:
        response = wrong.post("/graphs/x/versions", content=variant(1), headers=JSON_TYPE)
        assert_problem(response, 401)
        assert "invalid_token" in response.headers["www-authenticate"]


def test_a_server_without_a_token_refuses_writes_and_says_how_to_allow_them(
        tokenless: LiveServer) -> None:
    with tokenless.client(token="anything") as http:
        body = assert_problem(http.post("/graphs/x/versions", content=variant(1),
                                        headers=JSON_TYPE), 403)
        assert "--token-file" in body["detail"] and "GRAPHKIT_TOKEN" in body["detail"]  # type: ignore
        assert http.get("/graphs").status_code == 200


def test_read_token_body_and_node_limits(strict: LiveServer) -> None:
    with strict.client(token=None) as anonymous:
        response = anonymous.get("/graphs")
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    with strict.client() as http:
        assert http.get("/graphs").status_code == 200
        big = b" " * 30000 + variant(1)
        body = assert_problem(http.post("/graphs/big/versions", content=big,
                                        headers=JSON_TYPE), 413)
        assert "20000" in body["detail"]  # type: ignore[operator]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
            for _ in range(10):
                yield b" " * 4000
            yield variant(1)

        assert_problem(http.post("/graphs/big/versions", content=chunks(),
                                 headers=JSON_TYPE), 413)
        body = assert_problem(http.post("/graphs/long/versions", content=chain(60),
                                        headers=JSON_TYPE), 413)
        assert "60 nodes" in body["detail"] and "50" in body["detail"]  # type: ignore
        assert http.post("/graphs/short/versions", content=chain(50),
                         headers=JSON_TYPE).status_code == 201


def test_cors_is_off_by_default_and_on_for_named_origins(server: LiveServer,
                                                          strict: LiveServer) -> None:
    origin = {"Origin": "https://app.example.com"}
    preflight = {**origin, "Access-Control-Request-Method": "GET"}
    with server.client() as http:
        assert "access-control-allow-origin" not in http.get("/graphs", headers=origin).headers
        assert "access-control-allow-origin" not in http.options(
            "/graphs", headers=preflight).headers
    with strict.client() as http:
        allowed = http.get("/graphs", headers=origin)
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
        other = http.get("/graphs", headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in other.headers


def test_tokens_never_appear_in_the_server_output(server: LiveServer,
                                                  strict: LiveServer) -> None:
    with server.client() as http:
        http.post("/graphs/logged/versions", content=variant(1), headers=JSON_TYPE)
        http.get("/graphs/logged/versions/latest")
    with server.client(token="wrong-token-also-secret") as http:
        http.post("/graphs/logged/versions", content=variant(2), headers=JSON_TYPE)
    output = server.output() + strict.output()
    assert "POST /graphs/logged/versions" in output  # the access log is on and captured
    assert TOKEN not in output
    assert "wrong-token-also-secret" not in output
    assert "Bearer" not in output
