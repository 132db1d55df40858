"""The Open Inference Protocol V2 (KServe / Triton REST): health, metadata and inference.

Model name = graph name, model version = graph version. Every answer that is not a success is
`{"error": "..."}` with the status saying which kind: 400 a bad request, 404 an unknown model
or version, 413 a tensor over the size limit, 503 the store unavailable or a graph this server
cannot run, 504 the execution timeout.

Beyond the core protocol: the binary tensor data extension (what tritonclient sends by default;
tensors.py) and graphkit's gradient extension, `graphkit_gradients` (see GRADIENTS in
tensors.py and docs/service.md).

Everything that costs CPU or touches the database (reading the version, loading, validating and
planning it on a cache miss, decoding tensors, running, encoding) runs in a bounded pool of
worker threads, under `Settings.timeout_seconds`; the event loop only moves bytes, so it keeps
answering (health probes included) while graphs run. Python threads cannot be stopped: when a
request times out its client gets 504 at once, work still queued is dropped, and a run already
started finishes in its thread (its result is discarded). The pool's size bounds how much such
work can pile up.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

import graphkit
from graphkit.errors import GraphkitError
from graphkit.service.auth import require_read
from graphkit.service.plans import Model, PlanCache
from graphkit.service.settings import Settings
from graphkit.service.store import NotFound, Store, StoreError, validate_name
from graphkit.service.tensors import (
    GRAD_PREFIX,
    HEADER_LENGTH,
    InferRequest,
    OIPError,
    decode_request,
    encode_response,
    split_body,
)

SERVER_NAME = "graphkit"
PLATFORM = "graphkit"
EXTENSIONS = ["binary_tensor_data", "graphkit_gradients"]
"""What GET /v2 lists: Triton's binary tensor data extension and graphkit's gradients."""

WORKERS = max(4, 2 * (os.cpu_count() or 1))
"""Worker threads per server process: at most this many graph runs (or loads) at once; a
timed-out run keeps its thread until it ends, so this also bounds abandoned work."""

MAX_VERSION = 2**62
"""Larger version numbers cannot exist (the registry's bound); they are 404 without a query."""

VERSIONS_LISTED = 1000
"""Model metadata lists at most this many versions (the oldest first)."""

T = TypeVar("T")
logger = logging.getLogger("graphkit.service.oip")


# --- OpenAPI documentation of the answers ------------------------------------------------------

class OIPErrorBody(BaseModel):
    """Every failure on /v2 routes, as the protocol says."""

    error: str = Field(description="what went wrong, in words")


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class MetadataTensor(BaseModel):
    name: str
    datatype: str = Field(description="FP32, FP64, INT32, INT64 or BOOL")
    shape: list[int] = Field(description="-1 for a dimension of any size")


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": OIPErrorBody, "description": "see `error`"} for status in statuses}


_INFER_BODY = {
    "requestBody": {
        "description": "An inference request (JSON), or with `Inference-Header-Content-Length` "
                       "that many bytes of JSON followed by binary tensor data.",
        "required": True,
        "content": {
            "application/json": {"schema": {
                "type": "object",
                "required": ["inputs"],
                "properties": {
                    "id": {"type": "string"},
                    "parameters": {"type": "object"},
                    "inputs": {"type": "array", "items": {
                        "type": "object",
                        "required": ["name", "shape", "datatype"],
                        "properties": {
                            "name": {"type": "string"},
                            "shape": {"type": "array", "items": {"type": "integer",
                                                                 "minimum": 0}},
                            "datatype": {"type": "string"},
                            "parameters": {"type": "object"},
                            "data": {},
                        },
                    }},
                    "outputs": {"type": "array", "items": {
                        "type": "object", "required": ["name"],
                        "properties": {"name": {"type": "string"},
                                       "parameters": {"type": "object"}},
                    }},
                },
            }},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    },
}
_INFER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The outputs: JSON, or (binary outputs) JSON of "
                         "`Inference-Header-Content-Length` bytes then the tensors' bytes.",
          "content": {"application/json": {"schema": {"type": "object"}},
                      "application/octet-stream": {"schema": {"type": "string",
                                                              "format": "binary"}}}},
    **_errors(400, 401, 404, 413, 415, 500, 503, 504),
}
_HEALTH: dict[int | str, dict[str, Any]] = {
    200: {"description": "true (empty body)"}, **_errors(400)}

router = APIRouter(tags=["Open Inference Protocol V2"])


# --- per-app state --------------------------------------------------------------------------

@dataclass
class Runtime:
    """The plan cache and worker pool of one app (created with its first /v2 request)."""

    cache: PlanCache
    pool: concurrent.futures.ThreadPoolExecutor


_runtime_lock = threading.Lock()


def runtime(app: FastAPI) -> Runtime:
    """The app's Runtime, made on first use from its settings."""
    found: Runtime | None = getattr(app.state, "graphkit_oip", None)
    if found is None:
        with _runtime_lock:
            found = getattr(app.state, "graphkit_oip", None)
            if found is None:
                settings: Settings = app.state.settings
                found = Runtime(PlanCache(settings.plan_cache_size),
                                concurrent.futures.ThreadPoolExecutor(
                                    WORKERS, thread_name_prefix="graphkit-oip"))
                app.state.graphkit_oip = found
    return found


async def _off_loop(request: Request, work: Callable[[float], T]) -> T:
    """`work(deadline)` in the worker pool, under the execution timeout (OIPError 504)."""
    settings: Settings = request.app.state.settings
    timeout = settings.timeout_seconds
    deadline = time.monotonic() + timeout
    future = runtime(request.app).pool.submit(work, deadline)
    try:
        # cancelling on timeout drops the job if it has not started yet
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
    except TimeoutError:
        raise OIPError(504, f"the request took longer than this server's limit of {timeout:g} s "
                            "(--timeout)") from None


def _answer(error: Exception) -> JSONResponse:
    """A failure as the protocol's `{"error": ...}` with its status."""
    if isinstance(error, OIPError):
        status, message = error.status, error.message
    elif isinstance(error, NotFound):
        status, message = 404, str(error)
    elif isinstance(error, StoreError):
        status, message = 503, str(error)
    elif isinstance(error, GraphkitError):  # InputError, ExecutionError: the request's inputs
        status, message = 400, str(error)
    else:
        raise error
    return JSONResponse({"error": " ".join(message.split())}, status_code=status)


def _version(text: str | None) -> int | None:
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise OIPError(400, f"model version must be a positive integer, got {text!r}")
    if int(text) > MAX_VERSION:
        raise OIPError(404, f"there is no version {text}")
    return int(text)


def _model_name(name: str) -> str:
    try:
        return validate_name(name)
    except StoreError as exc:
        raise OIPError(400, str(exc)) from None


# --- health and server metadata ---------------------------------------------------------------

@router.get("/v2/health/live", response_class=Response, responses=_HEALTH)
async def server_live() -> Response:
    """200 while the server answers at all (a Kubernetes livenessProbe)."""
    return Response(status_code=200)


@router.get("/v2/health/ready", response_class=Response, responses=_HEALTH)
async def server_ready(request: Request) -> Response:
    """200 when the store answers and its schema is current; else 400 with the reason."""
    store: Store = request.app.state.store

    def check(_deadline: float) -> None:
        store.check_schema()

    try:
        await _off_loop(request, check)
    except (OIPError, GraphkitError) as exc:
        response = _answer(exc)
        response.status_code = 400
        return response
    return Response(status_code=200)


@router.get("/v2", response_model=ServerMetadata)
async def server_metadata() -> JSONResponse:
    """The server's name, version and protocol extensions."""
    from graphkit.cli.main import version

    return JSONResponse({"name": SERVER_NAME, "version": version(), "extensions": EXTENSIONS})


# --- model metadata and readiness ------------------------------------------------------------

async def _metadata(request: Request, name: str, version: str | None) -> Response:
    store: Store = request.app.state.store

    def work(_deadline: float) -> dict[str, Any]:
        model = runtime(request.app).cache.model(store, _model_name(name), _version(version))
        listed, _token = store.list_versions(model.info.name, limit=VERSIONS_LISTED)
        inputs, outputs = model.tensors()
        return {"name": model.info.name, "versions": [str(v.version) for v in listed],
                "platform": PLATFORM, "inputs": inputs, "outputs": outputs}

    try:
        return JSONResponse(await _off_loop(request, work))
    except (OIPError, GraphkitError) as exc:
        return _answer(exc)


@router.get("/v2/models/{name}", response_model=ModelMetadata,
            responses=_errors(400, 401, 404, 503, 504), dependencies=[Depends(require_read)])
async def model_metadata(request: Request, name: str) -> Response:
    """The latest version's inputs and outputs (datatype, shape with -1 for symbolic dims)."""
    return await _metadata(request, name, None)


@router.get("/v2/models/{name}/versions/{version}", response_model=ModelMetadata,
            responses=_errors(400, 401, 404, 503, 504), dependencies=[Depends(require_read)])
async def model_version_metadata(request: Request, name: str, version: str) -> Response:
    """One version's inputs and outputs."""
    return await _metadata(request, name, version)


async def _ready(request: Request, name: str, version: str | None) -> Response:
    store: Store = request.app.state.store

    def work(_deadline: float) -> None:
        runtime(request.app).cache.model(store, _model_name(name), _version(version))

    try:
        await _off_loop(request, work)
    except (OIPError, GraphkitError) as exc:
        response = _answer(exc)
        if response.status_code >= 500:  # ready or not is the answer; 4xx means "not"
            response.status_code = 400
        return response
    return Response(status_code=200)


@router.get("/v2/models/{name}/ready", response_class=Response,
            responses={**_HEALTH, **_errors(401, 404)}, dependencies=[Depends(require_read)])
async def model_ready(request: Request, name: str) -> Response:
    """200 when the latest version is loaded and planned (this loads it into the cache)."""
    return await _ready(request, name, None)


@router.get("/v2/models/{name}/versions/{version}/ready", response_class=Response,
            responses={**_HEALTH, **_errors(401, 404)}, dependencies=[Depends(require_read)])
async def model_version_ready(request: Request, name: str, version: str) -> Response:
    """200 when the version is loaded and planned."""
    return await _ready(request, name, version)


# --- inference ------------------------------------------------------------------------------

async def _infer(request: Request, name: str, version: str | None) -> Response:
    settings: Settings = request.app.state.settings
    store: Store = request.app.state.store
    body = await request.body()
    headers = {key: value for key, value in request.headers.items()
               if key in ("content-encoding", HEADER_LENGTH.lower())}

    def work(deadline: float) -> tuple[bytes, dict[str, str]]:
        if time.monotonic() >= deadline:  # waited in the queue past the timeout: skip it
            raise OIPError(504, "the request timed out waiting for a worker")
        document, tail = split_body(body, headers, settings.max_body_bytes)
        model = runtime(request.app).cache.model(store, _model_name(name), _version(version))
        decoded = decode_request(document, tail, model.inputs, settings.max_tensor_elements)
        return run(model, decoded)

    try:
        content, response_headers = await _off_loop(request, work)
    except (OIPError, GraphkitError) as exc:
        return _answer(exc)
    except Exception as exc:  # an op failing outside graphkit's checks (say, MemoryError)
        logger.exception("infer %s failed", name)
        return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"},
                            status_code=500)
    return Response(content, headers=response_headers)


def run(model: Model, request: InferRequest) -> tuple[bytes, dict[str, str]]:
    """Run a decoded request on a model: the encoded response body and its headers."""
    names = [info.name for info in model.outputs]
    if request.wrt is not None:
        clash = [n for n in names if n.startswith(GRAD_PREFIX)]
        if clash:
            raise OIPError(400, f"output {clash[0]!r} looks like a gradient's name; the "
                                "gradient extension cannot be used with this model")
    wanted = request.outputs
    for item in wanted or ():
        if item.name in names:
            continue
        if item.name.startswith(GRAD_PREFIX) and request.wrt is not None:
            value = item.name[len(GRAD_PREFIX):]
            if request.wrt == "all" or value in request.wrt:
                continue
            raise OIPError(400, f"output {item.name!r} is the gradient of {value!r}, which "
                                "parameter graphkit_gradients does not name")
        known = ", ".join(names)
        raise OIPError(400, f"the model has no output {item.name!r} (outputs: {known}; "
                            f"gradients: {GRAD_PREFIX}<input> with parameter graphkit_gradients)")
    with model.running() as plan:
        result = graphkit.execute(plan, request.inputs, wrt=request.wrt, of=request.of,
                                  seed=request.seed)
    values: dict[str, np.ndarray] = dict(result.outputs)
    values.update({GRAD_PREFIX + key: value for key, value in result.gradients.items()})
    if wanted is None:
        chosen = [(key, value, request.binary_default) for key, value in values.items()]
    else:
        missing = [item.name for item in wanted if item.name not in values]
        if missing:  # a gradient of a name "all" did not cover (an int input)
            raise OIPError(400, f"no output {missing[0]!r}: with graphkit_gradients=all, only "
                                "float inputs and constants have gradients")
        chosen = [(item.name, values[item.name], item.binary) for item in wanted]
    header: dict[str, Any] = {"model_name": model.info.name,
                              "model_version": str(model.info.version)}
    if request.id is not None:
        header["id"] = request.id
    return encode_response(header, chosen)


@router.post("/v2/models/{name}/infer", openapi_extra=_INFER_BODY, response_class=Response,
             responses=_INFER_RESPONSES, dependencies=[Depends(require_read)])
async def infer(request: Request, name: str) -> Response:
    """Run the latest version on the request's inputs."""
    return await _infer(request, name, None)


@router.post("/v2/models/{name}/versions/{version}/infer", openapi_extra=_INFER_BODY,
             response_class=Response, responses=_INFER_RESPONSES,
             dependencies=[Depends(require_read)])
async def infer_version(request: Request, name: str, version: str) -> Response:
    """Run one version on the request's inputs."""
    return await _infer(request, name, version)

