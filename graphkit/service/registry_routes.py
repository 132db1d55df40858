"""The registry routes: upload, list, download and delete named, numbered graph versions.

An upload's body is the graph itself, JSON (`Content-Type: application/json`) or ONNX
(`application/onnx`, or `application/octet-stream` as curl and generic clients send bytes);
`?description=` and repeated `?tag=KEY=VALUE` describe the version. Every upload is parsed and
validated against the server's op registry; what is stored is the canonical JSON
(graphkit.dumps of the validated graph) and its sha256, so the same graph uploaded as JSON or as
ONNX, formatted any way, is one version. Parsing, validating and converting run in a worker
thread (anyio.to_thread), never on the event loop.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from anyio import to_thread
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

import graphkit
from graphkit.model import Graph
from graphkit.service.auth import require_read, require_write
from graphkit.service.problems import ProblemError, problem_responses
from graphkit.service.store import GraphInfo, Store, VersionInfo

JSON = "application/json"
ONNX = "application/onnx"
OCTET = "application/octet-stream"
MAX_TAGS = 64
MAX_DESCRIPTION = 4096

NAME_RULE = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$"
"""A graph name as the URL takes it: the store's rule (1-128 of [A-Za-z0-9._-]), not starting
with '.' (so '.' and '..' never reach a path)."""

Name = Annotated[str, Path(pattern=NAME_RULE, description="the graph's name",
                           examples=["neuron"])]
Number = Annotated[int, Path(ge=1, le=2**62, description="a version number (1, 2, 3 ...)")]
PageSize = Annotated[int, Query(ge=1, le=1000, description="items per page")]
PageToken = Annotated[str | None, Query(max_length=1024,
                                        description="next_page_token of the previous page")]
Format = Annotated[Literal["json", "onnx"] | None, Query(
    description="download format; overrides the Accept header")]

router = APIRouter(tags=["registry"])


class GraphVersion(BaseModel):
    """One immutable version of a graph."""

    name: str
    version: int = Field(description="server-assigned, 1, 2, 3 ...; never reused")
    sha256: str = Field(description="sha256 of the canonical JSON (also the download's ETag)")
    size: int = Field(description="bytes of the canonical JSON")
    nodes: int = Field(description="number of nodes")
    created: datetime
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def of(cls, info: VersionInfo) -> GraphVersion:
        return cls(name=info.name, version=info.version, sha256=info.sha256, size=info.size,
                   nodes=info.nodes, created=info.created, description=info.description,
                   tags=dict(info.tags))


class GraphSummary(BaseModel):
    """A named graph: how many versions it has and which is the latest."""

    name: str
    latest: int
    versions: int
    created: datetime
    updated: datetime

    @classmethod
    def of(cls, info: GraphInfo) -> GraphSummary:
        return cls(name=info.name, latest=info.latest, versions=info.versions,
                   created=info.created, updated=info.updated)


class GraphList(BaseModel):
    """A page of graphs, by name."""

    graphs: list[GraphSummary]
    next_page_token: str | None = Field(
        None, description="pass as page_token for the next page; null on the last page")


class GraphDetails(BaseModel):
    """A graph and a page of its versions, oldest first."""

    name: str
    latest: int
    versions: list[GraphVersion]
    next_page_token: str | None = None


def _store(request: Request) -> Store:
    return request.app.state.store


def _limits(request: Request) -> Any:
    return request.app.state.settings


# --- upload ---------------------------------------------------------------------------------

_UPLOAD_BODY = {
    "required": True,
    "content": {
        JSON: {"schema": {"$ref": "#/components/schemas/Graph"}},
        ONNX: {"schema": {"type": "string", "format": "binary"}},
        OCTET: {"schema": {"type": "string", "format": "binary"}},
    },
}


@router.post(
    "/graphs/{name}/versions",
    status_code=201,
    response_model=GraphVersion,
    dependencies=[Depends(require_write)],
    summary="Upload a version of a graph (JSON or ONNX)",
    openapi_extra={"requestBody": _UPLOAD_BODY},
    responses={
        200: {"model": GraphVersion,
              "description": "identical content is already stored: the existing version"},
        201: {"description": "a new version was stored",
              "headers": {"Location": {"description": "the new version's URL",
                                       "schema": {"type": "string"}}}},
        **problem_responses(400, 401, 403, 413, 415, 422, 503),
    },
)
async def upload(
    name: Name, request: Request, response: Response,
    description: Annotated[str | None, Query(max_length=MAX_DESCRIPTION,
                                             description="what this version is")] = None,
    tag: Annotated[list[str] | None, Query(
        description="KEY=VALUE, repeatable", examples=["stage=test"])] = None,
) -> GraphVersion:
    """Store a new version: 201 and its Location; identical content gives the existing one, 200.

    A graph that does not parse or validate is refused with 422, every problem listed in
    `errors`.
    """
    tags = _parse_tags(tag or [])
    kind = _upload_kind(request.headers.get("content-type"))
    body = await request.body()
    settings = _limits(request)
    canonical, sha256, nodes = await to_thread.run_sync(
        _canonical, body, kind, settings.max_nodes, f"upload of {name}")
    info, new = await to_thread.run_sync(
        lambda: _store(request).add_version(name, canonical, sha256, nodes, description, tags))
    if new:
        response.status_code = 201
        response.headers["Location"] = f"/graphs/{info.name}/versions/{info.version}"
    else:
        response.status_code = 200
    return GraphVersion.of(info)


def _parse_tags(raw: list[str]) -> dict[str, str]:
    if len(raw) > MAX_TAGS:
        raise ProblemError(422, f"{len(raw)} tags; at most {MAX_TAGS}", "invalid-request")
    tags: dict[str, str] = {}
    problems = []
    for item in raw:
        key, equals, value = item.partition("=")
        if not equals or not key:
            problems.append(f"tag {item[:80]!r}: write KEY=VALUE")
        elif key in tags:
            problems.append(f"tag {key[:80]!r} given twice")
        else:
            tags[key] = value
    if problems:
        raise ProblemError(422, "invalid tags: " + "; ".join(problems), "invalid-request",
                           errors=problems)
    return tags


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def _upload_kind(content_type: str | None) -> str:
    media = _media_type(content_type)
    if media == JSON or (media.startswith("application/") and media.endswith("+json")):
        return "json"
    if media in {ONNX, OCTET}:
        return "onnx"
    raise ProblemError(
        415, f"cannot upload {media or 'a body without Content-Type'}: send the graph as "
             f"{JSON} (graphkit JSON) or {ONNX} (an ONNX model; {OCTET} is read as ONNX too)",
        "unsupported-media-type", headers={"Accept-Post": f"{JSON}, {ONNX}, {OCTET}"})


def _canonical(body: bytes, kind: str, max_nodes: int, source: str) -> tuple[bytes, str, int]:
    """Parse, bound, validate and canonicalise an upload (in a worker thread)."""
    graph = _parse(body, kind, source)
    if len(graph.nodes) > max_nodes:
        raise ProblemError(
            413, f"the graph has {len(graph.nodes)} nodes, over this server's limit of "
                 f"{max_nodes}", "too-many-nodes")
    graphkit.validate(graph)  # GraphValidationError: 422 listing every problem
    canonical = graphkit.dumps(graph).encode("utf-8")
    return canonical, hashlib.sha256(canonical).hexdigest(), len(graph.nodes)


def _parse(body: bytes, kind: str, source: str) -> Graph:
    if kind == "json":
        return graphkit.loads(body, source)
    from graphkit.io.onnx_import import from_onnx, parse_model

    # bytes only: external data (files named by the model) is refused, never read
    return from_onnx(parse_model(body, source), source=source)


# --- reads ----------------------------------------------------------------------------------

@router.get("/graphs", response_model=GraphList, dependencies=[Depends(require_read)],
            summary="List graphs by name", responses=problem_responses(400, 401, 422, 503))
async def list_graphs(request: Request, page_size: PageSize = 50,
                      page_token: PageToken = None) -> GraphList:
    """A page of graphs, by name; follow `next_page_token` for the next."""
    items, token = await to_thread.run_sync(
        lambda: _store(request).list_graphs(page_size, page_token))
    return GraphList(graphs=[GraphSummary.of(i) for i in items], next_page_token=token)


@router.get("/graphs/{name}", response_model=GraphDetails,
            dependencies=[Depends(require_read)], summary="A graph and a page of its versions",
            responses=problem_responses(400, 401, 404, 422, 503))
async def graph_details(name: Name, request: Request, page_size: PageSize = 50,
                        page_token: PageToken = None) -> GraphDetails:
    """The graph's latest version number and a page of its versions, oldest first."""
    def read() -> tuple[list[VersionInfo], str | None, int]:
        store = _store(request)
        items, token = store.list_versions(name, page_size, page_token)
        if token is None and items:  # the last page ends with the latest version
            return items, token, items[-1].version
        return items, token, store.get(name)[0].version

    items, token, latest = await to_thread.run_sync(read)
    return GraphDetails(name=name, latest=latest, versions=[GraphVersion.of(i) for i in items],
                        next_page_token=token)


_DOWNLOAD = {
    200: {
        "description": "the graph, as JSON or ONNX",
        "headers": {"ETag": {"description": 'the canonical JSON\'s sha256, quoted ("-onnx" '
                                            "appended for the ONNX form)",
                             "schema": {"type": "string"}}},
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/Graph"}},
                    ONNX: {"schema": {"type": "string", "format": "binary"}}},
    },
    304: {"description": "If-None-Match matched: the client's copy is current"},
    **problem_responses(400, 401, 404, 406, 422, 503),
}


@router.get("/graphs/{name}/versions/latest", response_class=Response, responses=_DOWNLOAD,
            dependencies=[Depends(require_read)], summary="Download the latest version")
async def download_latest(name: Name, request: Request, format: Format = None) -> Response:
    """The newest version, as `download` gives a numbered one."""
    return await _download(request, name, None, format)


@router.get("/graphs/{name}/versions/{version}", response_class=Response, responses=_DOWNLOAD,
            dependencies=[Depends(require_read)], summary="Download a version")
async def download(name: Name, version: Number, request: Request,
                   format: Format = None) -> Response:
    """The version as JSON (the canonical form) or ONNX (exported by graphkit), chosen by
    `?format=` or else the Accept header; ETag is the sha256 of the canonical JSON."""
    return await _download(request, name, version, format)


async def _download(request: Request, name: str, version: int | None,
                    format: str | None) -> Response:
    chosen = format or _negotiate(request.headers.get("accept"))
    info, content = await to_thread.run_sync(lambda: _store(request).get(name, version))
    etag = f'"{info.sha256}"' if chosen == "json" else f'"{info.sha256}-onnx"'
    headers = {"ETag": etag, "Vary": "Accept", "Graphkit-Version": str(info.version),
               "Content-Location": f"/graphs/{info.name}/versions/{info.version}"}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    if chosen == "json":
        return Response(content, media_type=JSON, headers=headers)
    data = await to_thread.run_sync(_to_onnx, content, f"{info.name} version {info.version}")
    return Response(data, media_type=ONNX, headers=headers)


def _to_onnx(canonical: bytes, source: str) -> bytes:
    from graphkit.io.onnx_export import ExportError, to_onnx

    try:
        return to_onnx(graphkit.loads(canonical, source)).SerializeToString()
    except ExportError as exc:
        raise ProblemError(406, f"{source} has no ONNX form: {exc}; download it as {JSON}",
                           "not-exportable") from None


_ACCEPT_ITEM = re.compile(r"\s*([^;,\s]+)\s*((?:;[^,]*)?)")


def _negotiate(accept: str | None) -> str:
    """"json" or "onnx" for an Accept header (JSON when absent or indifferent); 406 otherwise."""
    if not accept or not accept.strip():
        return "json"
    best: tuple[float, int, int] | None = None
    chosen = "json"
    for position, part in enumerate(accept.split(",")):
        match = _ACCEPT_ITEM.match(part)
        if not match:
            continue
        media, params = match.group(1).lower(), match.group(2)
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if not quality > 0:
            continue
        if media in {JSON, "application/*", "*/*"} or media.endswith("+json"):
            kind = "json"
        elif media in {ONNX, OCTET}:
            kind = "onnx"
        else:
            continue
        # higher q first, then an exact type over a wildcard, then the earlier in the header
        rank = (quality, 0 if "*" in media else 1, -position)
        if best is None or rank > best:
            best, chosen = rank, kind
    if best is None:
        raise ProblemError(406, f"cannot answer with any of {accept[:200]!r}: this route "
                                f"serves {JSON} and {ONNX} (or ask with ?format=json|onnx)",
                           "not-acceptable")
    return chosen


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


# --- deletes --------------------------------------------------------------------------------

@router.delete("/graphs/{name}/versions/{version}", status_code=204, response_class=Response,
               dependencies=[Depends(require_write)], summary="Delete a version",
               responses={204: {"description": "deleted; its number is never reused"},
                          **problem_responses(400, 401, 403, 404, 422, 503)})
async def delete_version(name: Name, version: Number, request: Request) -> Response:
    """Delete one version; later uploads get new numbers, never this one."""
    await to_thread.run_sync(lambda: _store(request).delete_version(name, version))
    return Response(status_code=204)


@router.delete("/graphs/{name}", status_code=204, response_class=Response,
               dependencies=[Depends(require_write)], summary="Delete a graph",
               responses={204: {"description": "deleted with every version"},
                          **problem_responses(400, 401, 403, 404, 422, 503)})
async def delete_graph(name: Name, request: Request) -> Response:
    """Delete a graph and every version of it."""
    await to_thread.run_sync(lambda: _store(request).delete_graph(name))
    return Response(status_code=204)


__all__ = ["GraphDetails", "GraphList", "GraphSummary", "GraphVersion", "router"]
