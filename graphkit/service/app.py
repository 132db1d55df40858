"""The FastAPI application: settings and store on `app.state`, the body-size limit, optional
CORS, the registry routes, the Open Inference Protocol routes, and one way to answer errors.

Errors on the registry routes are RFC 9457 problem+json (graphkit.service.problems); on the
Open Inference Protocol routes (/v2...) they are `{"error": "..."}` as that protocol says. The
handlers here choose by path, so a route raises one exception either way.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphkit.errors import FormatError, GraphkitError, GraphValidationError
from graphkit.service import oip, registry_routes
from graphkit.service.problems import Problem, ProblemError, problem_response
from graphkit.service.settings import Settings
from graphkit.service.store import NotFound, SchemaOutOfDate, Store, StoreError

OIP_PREFIX = "/v2"


def _version() -> str:
    from graphkit.cli.main import version

    return version()


def create_app(settings: Settings, store: Store | None = None) -> FastAPI:
    """The server's app; `store` defaults to Store(settings.db), closed when the app stops."""
    own_store = store is None
    app_store = Store(settings.db) if store is None else store

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # a worker process must not serve an out-of-date schema either (the CLI checks first)
        await anyio.to_thread.run_sync(app_store.check_schema)
        try:
            yield
        finally:
            if own_store:
                app_store.close()

    app = FastAPI(
        title="graphkit",
        version=_version(),
        summary="A registry of computational graphs that converts and executes them, speaking "
                "the Open Inference Protocol V2.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = app_store

    app.include_router(registry_routes.router)
    app.include_router(oip.router)

    app.add_exception_handler(ProblemError, _problem_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(GraphkitError, _graphkit_error)

    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE", "HEAD", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Accept",
                           "Inference-Header-Content-Length"],
            expose_headers=["ETag", "Location", "Inference-Header-Content-Length"],
        )
    # added last, so it runs first: an oversized body is refused before anything reads it
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def app_from_env() -> FastAPI:
    """The app factory `graphkit serve` hands uvicorn (each worker process calls it)."""
    return create_app(Settings.from_env())


# --- errors ---------------------------------------------------------------------------------

def _is_oip(request: Request | Scope) -> bool:
    path = request["path"] if isinstance(request, dict) else request.url.path
    return path == OIP_PREFIX or path.startswith(OIP_PREFIX + "/")


def _answer(request: Request, status: int, detail: str, kind: str | None = None,
            errors: list[str] | None = None, headers: dict[str, str] | None = None,
            title: str | None = None) -> Response:
    if _is_oip(request):
        return JSONResponse({"error": detail}, status_code=status, headers=headers)
    return problem_response(status, detail, request.url.path, kind, errors, headers, title)


async def _problem_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return _answer(request, exc.status, exc.detail, exc.kind, exc.errors, exc.headers, exc.title)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    return _answer(request, exc.status_code, detail, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [_describe(error) for error in exc.errors()]
    return _answer(request, 422, "the request is not valid: " + "; ".join(errors),
                   kind="invalid-request", errors=errors)


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()))
    return f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg"))


async def _graphkit_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GraphkitError)
    detail = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, NotFound):
        return _answer(request, 404, detail, kind="not-found")
    if isinstance(exc, SchemaOutOfDate):
        return _answer(request, 503, detail, kind="schema-out-of-date")
    if isinstance(exc, GraphValidationError):
        return _answer(request, 422, detail, kind="invalid-graph", errors=exc.problems)
    if isinstance(exc, FormatError):
        return _answer(request, 422, detail, kind="invalid-graph", errors=[detail])
    if isinstance(exc, StoreError):
        if isinstance(exc.__cause__, DBAPIError):  # the database failed, not the request
            return _answer(request, 503, detail, kind="database-unavailable")
        return _answer(request, 400, detail, kind="bad-request")
    return _answer(request, 422, detail, kind="graphkit-error")


# --- body size ------------------------------------------------------------------------------

class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuses request bodies over `max_bytes` with 413: at once when Content-Length says so,
    and, for bodies sent without a length (chunked) or longer than declared, as soon as the
    bytes received pass the limit (the app sees an exception instead of more body)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, send, f"the request body of {declared} bytes is over "
                                            f"this server's limit of {self.max_bytes} bytes")
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except _TooLarge:
            if started:
                raise
            await self._refuse(scope, send, f"the request body is over this server's limit "
                                            f"of {self.max_bytes} bytes")

    async def _refuse(self, scope: Scope, send: Send, detail: str) -> None:
        path = scope["path"]
        if _is_oip(scope):
            response: Response = JSONResponse({"error": detail}, status_code=413,
                                              headers={"Connection": "close"})
        else:
            response = problem_response(413, detail, path, "body-too-large",
                                        headers={"Connection": "close"})

        async def no_body() -> Message:
            return {"type": "http.disconnect"}

        await response(scope, no_body, send)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


# --- OpenAPI --------------------------------------------------------------------------------

def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's spec plus the schemas the raw-body routes refer to (Problem, the graph file
    format), so what the spec declares is what the server answers."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    from graphkit.model import Graph

    spec = get_openapi(title=app.title, version=app.version, summary=app.summary,
                       routes=app.routes)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema()
    graph = Graph.model_json_schema(mode="validation",
                                    ref_template="#/components/schemas/{model}")
    for name, definition in graph.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas["Graph"] = graph
    app.openapi_schema = spec
    return spec


__all__ = ["BodyLimit", "app_from_env", "create_app"]
